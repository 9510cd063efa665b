"""Diagonal linear recurrences with resets: x_t = A_t ⊙ x_{t-1} + b_t, restarted where reset_t.

Both implementations compute, for every t,

    x_t = b_t                       where reset_t
    x_t = A_t ⊙ x_{t-1} + b_t       otherwise,          x_{-1} = initial (or 0)

`linear_recurrence_sequential` is the obvious loop and the reference; `linear_recurrence_parallel`
is an associative scan over the §3.5 operator (ALGORITHM.md) that tests hold equal to it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

LinearRecurrence = Callable[[Tensor, Tensor, Tensor, "Tensor | None"], Tensor]

# Shortest T at which select_scan("auto", T, device_type) picks the parallel scan. On CPU both
# scans are memory-bound and the parallel one moves about twice the data; it wins only when its
# large ops spread over threads. Measured with hieros-bench (bench/s5.py) on 2 cores shared with
# other jobs, S5Stack D=256 P=128 N_b=4 B=16 forward+backward, median of paired runs, time of the
# loop / time of the parallel scan: 2 threads T=16 0.85, T=64 1.08, T=128 1.44, T=256 1.19;
# 1 thread T=64 0.99, T=256 0.87. So: the loop below T=64, the parallel scan from T=64 (a tie
# on one thread, ahead on the default two).
CPU_PARALLEL_MIN_STEPS = 64
# Not measured here: on an accelerator the loop launches O(T) kernels, the scan O(log T).
ACCELERATOR_PARALLEL_MIN_STEPS = 2


def linear_recurrence_sequential(
    decay: Tensor, inputs: Tensor, reset: Tensor, initial: Tensor | None
) -> Tensor:
    """Reference loop over time; O(T) steps of O(B·P) work.

    decay broadcasts against inputs ([P], [T, P] or [B, T, P]); reset drops the carried state, so
    the state after a reset is inputs_t alone. initial=None starts from zeros.
    """
    # decay: [P] | [B, T, P] complex64   inputs: [B, T, P] complex64   reset: [B, T] bool
    # initial: [B, P] complex64 | None   -> states: [B, T, P] complex64
    B, T, P = inputs.shape
    state = inputs.new_zeros(B, P) if initial is None else initial
    states = []
    # unbind, not inputs[:, t]: the backward of T index ops would zero-fill T full-size tensors.
    steps = zip(torch.broadcast_to(decay, (B, T, P)).unbind(1), inputs.unbind(1), reset.unbind(1))
    for decay_t, inputs_t, reset_t in steps:
        carried = torch.where(reset_t[:, None], 0.0, state)
        state = decay_t * carried + inputs_t
        states.append(state)
    return torch.stack(states, dim=1)


def compose_resettable(
    earlier: tuple[Tensor, Tensor, Tensor], later: tuple[Tensor, Tensor, Tensor]
) -> tuple[Tensor, Tensor, Tensor]:
    """The associative operator of ALGORITHM.md §3.5 on elements (A, b, d).

    (A_i, b_i, d_i) ∘ (A_j, b_j, d_j) = (A_j, b_j, d_j)                      if d_j
                                      = (A_j ⊙ A_i, A_j ⊙ b_i + b_j, d_i)   otherwise.
    The composed element maps a state x to A ⊙ x + b, or to b alone if d.
    """
    # earlier, later: (A [B, n, P] complex64, b [B, n, P] complex64, d [B, n] bool)
    # -> (A, b, d) of the same shapes
    earlier_decay, earlier_offset, earlier_reset = earlier
    later_decay, later_offset, later_reset = later
    keep_later = later_reset[..., None]
    decay = torch.where(keep_later, later_decay, later_decay * earlier_decay)
    offset = torch.where(keep_later, later_offset, later_decay * earlier_offset + later_offset)
    return decay, offset, later_reset | earlier_reset


def _even_and_odd(sequence: Tensor) -> tuple[Tensor, Tensor]:
    """Split an even-length sequence into its even and odd time steps, as views."""
    # sequence: [B, T, ...] with T even   -> even, odd: [B, T/2, ...]
    even, odd = sequence.unflatten(1, (sequence.shape[1] // 2, 2)).unbind(2)
    return even, odd


def _pad_to_even(decay: Tensor, offset: Tensor, reset: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Append one element if T is odd; trailing elements never change earlier prefixes."""
    # decay, offset: [B, T, P] complex64   reset: [B, T] bool   -> same with T rounded up to even
    if offset.shape[1] % 2 == 0:
        return decay, offset, reset
    return (
        torch.cat([decay, torch.ones_like(decay[:, :1])], dim=1),
        torch.cat([offset, torch.zeros_like(offset[:, :1])], dim=1),
        torch.cat([reset, torch.ones_like(reset[:, :1])], dim=1),
    )


def _odd_even_scan(decay: Tensor, offset: Tensor, reset: Tensor) -> Tensor:
    """Inclusive scan of `compose_resettable`, returning the b-component of each prefix.

    Work-efficient recursion (O(T) work, 2·log2 T depth): compose neighbouring pairs, scan the
    half-length sequence of pairs (its prefixes are the odd-position results), then finish each
    even position with one recurrence step from the odd prefix before it. Only b is ever needed
    from a result, because that step reads the element's own A. Views (unflatten/unbind) instead
    of strided slices keep the backward from zero-filling a full-size tensor per slice.
    """
    # decay: [B, T, P] complex64   offset: [B, T, P] complex64   reset: [B, T] bool
    # -> states: [B, T, P] complex64
    T = offset.shape[1]
    if T == 1:
        return offset
    padded_decay, padded_offset, padded_reset = _pad_to_even(decay, offset, reset)
    even_decay, odd_decay = _even_and_odd(padded_decay)
    even_offset, odd_offset = _even_and_odd(padded_offset)
    even_reset, odd_reset = _even_and_odd(padded_reset)
    even = (even_decay, even_offset, even_reset)
    odd_states = _odd_even_scan(*compose_resettable(even, (odd_decay, odd_offset, odd_reset)))
    # Even position 2i continues from the odd prefix at 2i-1; position 0 from a zero state.
    previous = torch.cat([torch.zeros_like(odd_states[:, :1]), odd_states[:, :-1]], dim=1)
    continued = even_decay * previous + even_offset
    even_states = torch.where(even_reset[..., None], even_offset, continued)
    states = torch.stack([even_states, odd_states], dim=2).flatten(1, 2)
    return states if states.shape[1] == T else states[:, :T]


def linear_recurrence_parallel(
    decay: Tensor, inputs: Tensor, reset: Tensor, initial: Tensor | None
) -> Tensor:
    """Associative scan with the same contract as `linear_recurrence_sequential`.

    No cumulative products or divisions: every A-product spans a window the recurrence itself
    multiplies through, so |Λ̄| > 1 overflows no earlier than the sequential loop does.
    """
    # decay: [P] | [B, T, P] complex64   inputs: [B, T, P] complex64   reset: [B, T] bool
    # initial: [B, P] complex64 | None   -> states: [B, T, P] complex64
    B, T, P = inputs.shape
    decay = torch.broadcast_to(decay, (B, T, P))
    if initial is not None:
        # Folding the carried state into b_0 is exact: x_0 = A_0 ⊙ initial + b_0 unless reset_0.
        first = torch.where(reset[:, 0, None], inputs[:, 0], decay[:, 0] * initial + inputs[:, 0])
        inputs = torch.cat([first[:, None], inputs[:, 1:]], dim=1)
    return _odd_even_scan(decay, inputs, reset)


SCANS: dict[str, LinearRecurrence] = {
    "parallel": linear_recurrence_parallel,
    "sequential": linear_recurrence_sequential,
}
SCAN_CHOICES = (*SCANS, "auto")


def select_scan(name: str, T: int, device_type: str = "cpu") -> LinearRecurrence:
    """The recurrence for a config choice: parallel | sequential | auto (by T and device type)."""
    if name == "auto":
        cpu = device_type == "cpu"
        min_steps = CPU_PARALLEL_MIN_STEPS if cpu else ACCELERATOR_PARALLEL_MIN_STEPS
        return SCANS["parallel" if min_steps <= T else "sequential"]
    if name not in SCANS:
        raise ValueError(f"unknown scan {name!r}; valid: {', '.join(SCAN_CHOICES)}")
    return SCANS[name]
