"""S5 state-space layer, the double S5 block and the block stack (ALGORITHM.md §3.4-§3.5).

The maths lives in the free functions `discretize_zoh`, `ssm_inputs` and `ssm_outputs` plus the
recurrences of `nn/scan.py`; the modules own the parameters and the state layout. Every S5 state
is complex64 and the S5 maths runs in float32 even inside an autocast region.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hieros_pl.nn.layers import init_hidden_
from hieros_pl.nn.s5_init import s5_initial_values
from hieros_pl.nn.scan import SCAN_CHOICES, select_scan

# Factories rather than shared instances, so that no module object is a mutable global.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": partial(nn.GELU, approximate="none"),
    "silu": nn.SiLU,
}
LAYER_NORM_EPS = 1e-5


def float32_region(device_type: str) -> AbstractContextManager[object]:
    """Autocast switched off for the S5 maths; a plain context when autocast is not on.

    Entering an autocast context costs tens of microseconds, a visible share of one acting step.
    """
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return nullcontext()


def discretize_zoh(Lambda: Tensor, log_step: Tensor) -> tuple[Tensor, Tensor]:
    """Zero-order hold: Λ̄ = exp(Λ Δ) and the row scale (Λ̄ - 1)/Λ, with Δ = exp(log Δ).

    B̄ = B_scale[:, None] ⊙ B̃ is then the exact integral ∫₀^Δ exp(Λ s) ds B̃ for a diagonal Λ.
    """
    # Lambda: [P] complex64   log_step: [P] float32
    # -> Lambda_bar: [P] complex64, B_scale: [P] complex64
    Lambda_bar = torch.exp(Lambda * torch.exp(log_step))
    return Lambda_bar, (Lambda_bar - 1) / Lambda


def input_rows(input_matrix: Tensor) -> Tensor:
    """B̄ as real rows (Re row p, Im row p, ...), so that B̄ u is one real matmul."""
    # input_matrix: [P, D] complex64 -> [2P, D] float32
    P, D = input_matrix.shape
    return torch.view_as_real(input_matrix).transpose(1, 2).reshape(2 * P, D)


def output_pairs(output_matrix: Tensor) -> Tensor:
    """conj(C̃) as real (Re, Im) column pairs, so that Re(C̃ x) is one real matmul."""
    # output_matrix: [D, P] complex64 -> [D, 2P] float32
    return torch.view_as_real(output_matrix.conj_physical()).flatten(-2)


def apply_input_rows(rows: Tensor, u: Tensor) -> Tensor:
    """B̄ u from the rows of :func:`input_rows`."""
    # rows: [2P, D] float32   u: [..., D] float32 -> [..., P] complex64
    return torch.view_as_complex(F.linear(u, rows).unflatten(-1, (rows.shape[0] // 2, 2)))


def apply_output_pairs(pairs: Tensor, skip_weight: Tensor, states: Tensor, u: Tensor) -> Tensor:
    """y = Re(C̃ x) + D_skip ⊙ u from the pairs of :func:`output_pairs`."""
    # pairs: [D, 2P] float32   skip_weight: [D]   states: [..., P] complex64   u: [..., D]
    # -> y: [..., D] float32
    return F.linear(torch.view_as_real(states).flatten(-2), pairs) + skip_weight * u


def ssm_inputs(input_matrix: Tensor, u: Tensor) -> Tensor:
    """B̄ u for real u, as one real matmul against the stacked real and imaginary rows of B̄."""
    # input_matrix: [P, D] complex64   u: [..., D] float32   -> [..., P] complex64
    return apply_input_rows(input_rows(input_matrix), u)


def ssm_outputs(output_matrix: Tensor, skip_weight: Tensor, states: Tensor, u: Tensor) -> Tensor:
    """y = Re(C̃ x) + D_skip ⊙ u, with Re(C̃ x) = C_re x_re - C_im x_im as one real matmul."""
    # output_matrix: [D, P] complex64   skip_weight: [D] float32   states: [..., P] complex64
    # u: [..., D] float32   -> y: [..., D] float32
    return apply_output_pairs(output_pairs(output_matrix), skip_weight, states, u)


@dataclass(frozen=True)
class FusedHalf:
    """One SSM of a double block with its mixing layer folded in, for no-grad steps:
    W (Re(C̃ x) + D_skip ⊙ u) = [W C_pairs | W diag(D_skip)] [x_pairs; u], one matmul."""

    Lambda_bar: Tensor  # [P] complex64
    input_rows: Tensor  # [2P, D] float32
    mixed_output: Tensor  # [D, 2P + D] float32


@dataclass(frozen=True)
class _FusedMemo:
    """A block's fused halves and what they were built from (see S5Block.fused_halves)."""

    steps: tuple[StepMatrices, StepMatrices]
    key: tuple[tuple[int, int], ...]
    halves: tuple[FusedHalf, FusedHalf]


@dataclass(frozen=True)
class StepMatrices:
    """What one recurrence step needs, in the layout its matmuls use."""

    Lambda_bar: Tensor  # [P] complex64
    input_rows: Tensor  # [2P, D] float32
    output_pairs: Tensor  # [D, 2P] float32
    skip_weight: Tensor  # [D] float32


def _check_sequence(
    x: Tensor, reset: Tensor, state: Tensor | None, width: int, state_shape: tuple[int, ...]
) -> None:
    """Assert the [B, T, width] input, [B, T] bool resets and optional [B, *state_shape] state."""
    assert x.dim() == 3 and x.shape[2] == width, f"x {tuple(x.shape)}, want [B, T, {width}]"
    B, T, _ = x.shape
    assert T >= 1, f"x {tuple(x.shape)} has no time steps"
    assert reset.shape == (B, T), f"reset {tuple(reset.shape)}, want {(B, T)}"
    assert reset.dtype == torch.bool, f"reset dtype {reset.dtype}"
    if state is not None:
        assert state.shape == (B, *state_shape), f"state {tuple(state.shape)}"
        assert state.dtype == torch.complex64, f"state dtype {state.dtype}"


def _check_step(
    x_t: Tensor, reset_t: Tensor, state: Tensor, width: int, state_shape: tuple[int, ...]
) -> None:
    """Assert the [B, width] input, [B] bool resets and the [B, *state_shape] complex64 state."""
    assert x_t.dim() == 2 and x_t.shape[1] == width, f"x_t {tuple(x_t.shape)}, want [B, {width}]"
    B = x_t.shape[0]
    assert reset_t.shape == (B,), f"reset_t {tuple(reset_t.shape)}, want {(B,)}"
    assert reset_t.dtype == torch.bool, f"reset_t dtype {reset_t.dtype}"
    assert state.shape == (B, *state_shape), f"state {tuple(state.shape)}"
    assert state.dtype == torch.complex64, f"state dtype {state.dtype}"


class S5SSM(nn.Module):
    """One S5 SSM: x_t = Λ̄ ⊙ x_{t-1} + B̄ u_t, y_t = Re(C̃ x_t) + D_skip ⊙ u_t (§3.5).

    Complex parameters are stored as real (Re, Im) pairs: `eigenvalues` Λ [P, 2], `input_matrix`
    B̃ [P, D, 2], `output_matrix` C̃ [D, P, 2]; `skip_weight` D_skip [D] and `log_step` log Δ [P]
    are real. Λ is unconstrained (Re Λ may turn positive; see `max_real_lambda`).
    """

    def __init__(self, model_dim: int, state_dim: int, init_blocks: int) -> None:
        super().__init__()
        self.model_dim = model_dim
        self.state_dim = state_dim
        initial = s5_initial_values(model_dim, state_dim, init_blocks)
        self.eigenvalues = nn.Parameter(initial.eigenvalues)
        self.input_matrix = nn.Parameter(initial.input_matrix)
        self.output_matrix = nn.Parameter(initial.output_matrix)
        self.skip_weight = nn.Parameter(initial.skip_weight)
        self.log_step = nn.Parameter(initial.log_step)
        # Memo of the step matrices for no-grad steps (acting, REINFORCE imagination), keyed by
        # the parameters' version counters and storages: an optimiser step, load_state_dict or a
        # device move changes the key, so a stale entry is never used.
        self._step_memo: tuple[tuple[tuple[int, int], ...], StepMatrices] | None = None

    def discretized(self) -> tuple[Tensor, Tensor, Tensor]:
        """(Λ̄, B̄, C̃) from the parameters, computed once per forward or step call."""
        # -> Lambda_bar: [P], input_matrix: [P, D], output_matrix: [D, P], all complex64
        Lambda = torch.view_as_complex(self.eigenvalues.float())
        Lambda_bar, B_scale = discretize_zoh(Lambda, self.log_step.float())
        input_matrix = B_scale[:, None] * torch.view_as_complex(self.input_matrix.float())
        return Lambda_bar, input_matrix, torch.view_as_complex(self.output_matrix.float())

    def step_matrices(self) -> StepMatrices:
        """The step matrices from the parameters; memoised while gradients are off.

        With gradients on the result is built afresh (it must carry the graph); without, it is
        rebuilt only after a parameter changed. ``discretized`` is the slow reference.
        """
        if torch.is_grad_enabled():
            return self._build_step_matrices()
        parameters = (
            self.eigenvalues,
            self.input_matrix,
            self.output_matrix,
            self.skip_weight,
            self.log_step,
        )
        key = tuple((p._version, p.data_ptr()) for p in parameters)
        if self._step_memo is None or self._step_memo[0] != key:
            self._step_memo = (key, self._build_step_matrices())
        return self._step_memo[1]

    def _build_step_matrices(self) -> StepMatrices:
        Lambda_bar, input_matrix, output_matrix = self.discretized()
        return StepMatrices(
            Lambda_bar,
            input_rows(input_matrix),
            output_pairs(output_matrix),
            self.skip_weight.float(),
        )

    def forward(
        self, u: Tensor, reset: Tensor, state: Tensor | None = None, scan: str = "parallel"
    ) -> tuple[Tensor, Tensor]:
        """Run T steps; where reset_t the carried state is dropped. state=None starts from zeros.

        Returns (y, states) where states[:, t] is x_t, so states[:, -1] continues the sequence.
        """
        # u: [B, T, D] float   reset: [B, T] bool   state: [B, P] complex64 | None
        # -> y: [B, T, D] float32, states: [B, T, P] complex64
        _check_sequence(u, reset, state, self.model_dim, (self.state_dim,))
        T = u.shape[1]
        with float32_region(u.device.type):
            u = u.float()
            Lambda_bar, input_matrix, output_matrix = self.discretized()
            inputs = ssm_inputs(input_matrix, u)
            recurrence = select_scan(scan, T, u.device.type)
            states = recurrence(Lambda_bar, inputs, reset, state)
            y = ssm_outputs(output_matrix, self.skip_weight.float(), states, u)
        return y, states

    def step(self, u_t: Tensor, reset_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step of the recurrence; where reset_t the carried state is replaced by zeros."""
        # u_t: [B, D] float   reset_t: [B] bool   state: [B, P] complex64
        # -> y_t: [B, D] float32, state: [B, P] complex64
        _check_step(u_t, reset_t, state, self.model_dim, (self.state_dim,))
        with float32_region(u_t.device.type):
            u_t = u_t.float()
            matrices = self.step_matrices()
            carried = torch.where(reset_t[:, None], 0.0, state)
            state = matrices.Lambda_bar * carried + apply_input_rows(matrices.input_rows, u_t)
            y_t = apply_output_pairs(matrices.output_pairs, matrices.skip_weight, state, u_t)
        return y_t, state

    def initial_state(self, batch_size: int, device: torch.device | str) -> Tensor:
        """Zeros, the state at every episode start (§3.6 `initial: learned` keeps S5 states 0)."""
        # -> state: [B, P] complex64
        return torch.zeros(batch_size, self.state_dim, dtype=torch.complex64, device=device)

    def max_real_lambda(self) -> Tensor:
        """max Re Λ, a diagnostic: positive means a growing mode (nothing constrains Λ)."""
        # -> scalar float32
        return self.eigenvalues[:, 0].detach().max()


class S5Block(nn.Module):
    """The double S5 block of §3.4 with ff_layers = 0:

        y₁ = x + Dropout(act(W₁ S5₁(LN₁ x))),  y₂ = y₁ + Dropout(act(W₂ S5₂(LN₂ y₁))),
        out = y₂ + LN₃(y₂).

    Its state is [x^{S5₁}, x^{S5₂}] concatenated: [B, 2P] complex64.
    """

    def __init__(
        self,
        model_dim: int,
        state_dim: int,
        init_blocks: int,
        dropout: float,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown S5 activation {activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )
        self.model_dim = model_dim
        self.state_dim = state_dim
        self.norm1 = nn.LayerNorm(model_dim, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(model_dim, eps=LAYER_NORM_EPS)
        self.norm3 = nn.LayerNorm(model_dim, eps=LAYER_NORM_EPS)
        self.ssm1 = S5SSM(model_dim, state_dim, init_blocks)
        self.ssm2 = S5SSM(model_dim, state_dim, init_blocks)
        self.mix1 = nn.Linear(model_dim, model_dim, bias=False)
        self.mix2 = nn.Linear(model_dim, model_dim, bias=False)
        # §7.2 applies to W₁, W₂ and the LayerNorms; the SSM parameters keep their §3.5 init.
        init_hidden_(self.mix1)
        init_hidden_(self.mix2)
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        # Memo of the fused step matrices (see fused_halves); never part of the state_dict.
        self._fused_memo: _FusedMemo | None = None

    def _residual(self, x: Tensor, mixed: Tensor) -> Tensor:
        """x + Dropout(act(mixed)), the residual branch shared by both SSMs."""
        # x, mixed: [..., D] -> [..., D]
        return x + self.dropout(self.activation(mixed))

    def forward(
        self, x: Tensor, reset: Tensor, state: Tensor | None = None, scan: str = "parallel"
    ) -> tuple[Tensor, Tensor]:
        """Run T steps of both SSMs; states[:, t] is the block state after step t."""
        # x: [B, T, D] float   reset: [B, T] bool   state: [B, 2P] complex64 | None
        # -> out: [B, T, D], states: [B, T, 2P] complex64
        P = self.state_dim
        _check_sequence(x, reset, state, self.model_dim, (2 * P,))
        state1, state2 = (None, None) if state is None else (state[:, :P], state[:, P:])
        ssm1_out, states1 = self.ssm1(self.norm1(x), reset, state1, scan)
        y1 = self._residual(x, self.mix1(ssm1_out))
        ssm2_out, states2 = self.ssm2(self.norm2(y1), reset, state2, scan)
        y2 = self._residual(y1, self.mix2(ssm2_out))
        return y2 + self.norm3(y2), torch.cat([states1, states2], dim=-1)

    def step(self, x_t: Tensor, reset_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step of both SSMs; where reset_t both carried states are replaced by zeros.

        Without gradients and dropout (acting, evaluation, no-grad imagination) it takes the
        fused path :meth:`step_fused`; otherwise :meth:`step_reference`. Both give the same
        result (tests/nn/test_s5_step_memo.py).
        """
        # x_t: [B, D] float   reset_t: [B] bool   state: [B, 2P] complex64
        # -> out_t: [B, D], state: [B, 2P] complex64
        _check_step(x_t, reset_t, state, self.model_dim, (2 * self.state_dim,))
        dropout_on = self.training and self.dropout.p > 0
        if torch.is_grad_enabled() or dropout_on or torch.is_autocast_enabled(x_t.device.type):
            return self.step_reference(x_t, reset_t, state)
        return self.step_fused(x_t, reset_t, state)

    def step_fused(self, x_t: Tensor, reset_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`step_reference` with each mixing layer folded into its SSM's output matmul
        (memoised while the parameters do not change) and the reset applied once per block.

        Call only without gradients, dropout or autocast (see :meth:`step`).
        """
        # x_t: [B, D] float   reset_t: [B] bool   state: [B, 2P] complex64
        # -> out_t: [B, D], state: [B, 2P] complex64
        P = self.state_dim
        x_t = x_t.float()
        if bool(reset_t.any()):
            state = torch.where(reset_t[:, None], 0.0, state)
        first, second = self.fused_halves()
        state1, y1 = self._fused_half(first, self.norm1, x_t, state[:, :P])
        state2, y2 = self._fused_half(second, self.norm2, y1, state[:, P:])
        return y2 + self.norm3(y2), torch.cat([state1, state2], dim=-1)

    def _fused_half(
        self, half: FusedHalf, norm: nn.LayerNorm, x_t: Tensor, state: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(new SSM state, x_t + act(W SSM(LN x_t))) for one half of the block."""
        # x_t: [B, D] float32   state: [B, P] complex64 -> state: [B, P], y: [B, D] float32
        u = norm(x_t)
        state = half.Lambda_bar * state + apply_input_rows(half.input_rows, u)
        pairs_and_input = torch.cat([torch.view_as_real(state).flatten(-2), u], dim=-1)
        return state, x_t + self.activation(F.linear(pairs_and_input, half.mixed_output))

    def fused_halves(self) -> tuple[FusedHalf, FusedHalf]:
        """Both SSMs' :class:`FusedHalf`, rebuilt only after a parameter changed (the SSMs'
        own step memos and the mixing weights' version counters and storages are the key)."""
        steps = (self.ssm1.step_matrices(), self.ssm2.step_matrices())
        mixes = (self.mix1.weight, self.mix2.weight)
        key = tuple((weight._version, weight.data_ptr()) for weight in mixes)
        memo = self._fused_memo
        # The memo holds the StepMatrices it was built from, so identity is a safe test.
        if memo is None or memo.key != key or any(a is not b for a, b in zip(memo.steps, steps)):
            halves = (_fuse(steps[0], mixes[0]), _fuse(steps[1], mixes[1]))
            memo = self._fused_memo = _FusedMemo(steps, key, halves)
        return memo.halves

    def step_reference(self, x_t: Tensor, reset_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step of both SSMs through the modules, as written in §3.4 (the slow reference)."""
        # x_t: [B, D] float   reset_t: [B] bool   state: [B, 2P] complex64
        # -> out_t: [B, D], state: [B, 2P] complex64
        P = self.state_dim
        ssm1_out, state1 = self.ssm1.step(self.norm1(x_t), reset_t, state[:, :P])
        y1 = self._residual(x_t, self.mix1(ssm1_out))
        ssm2_out, state2 = self.ssm2.step(self.norm2(y1), reset_t, state[:, P:])
        y2 = self._residual(y1, self.mix2(ssm2_out))
        return y2 + self.norm3(y2), torch.cat([state1, state2], dim=-1)

    def initial_state(self, batch_size: int, device: torch.device | str) -> Tensor:
        """Zeros for both SSMs."""
        # -> state: [B, 2P] complex64
        return torch.zeros(batch_size, 2 * self.state_dim, dtype=torch.complex64, device=device)


def _fuse(step: StepMatrices, mix_weight: Tensor) -> FusedHalf:
    """Fold the mixing layer W [D, D] into the SSM's output: [W C_pairs | W diag(D_skip)]."""
    # mix_weight: [D, D] float32 -> FusedHalf with mixed_output [D, 2P + D]
    weight = mix_weight.float()
    mixed = torch.cat([weight @ step.output_pairs, weight * step.skip_weight[None, :]], dim=1)
    return FusedHalf(step.Lambda_bar, step.input_rows, mixed)


class S5Stack(nn.Module):
    """N_b double S5 blocks in sequence (§3.4); the stack state is [B, N_b, 2P] complex64.

    `scan` picks the training-time recurrence: parallel | sequential | auto (by T, see
    `nn/scan.py`). `step` always applies the recurrence once per call.
    """

    def __init__(
        self,
        model_dim: int,
        state_dim: int,
        init_blocks: int,
        num_blocks: int,
        dropout: float,
        activation: str = "gelu",
        scan: str = "auto",
    ) -> None:
        super().__init__()
        if scan not in SCAN_CHOICES:
            raise ValueError(f"unknown S5 scan {scan!r}; valid: {', '.join(SCAN_CHOICES)}")
        self.model_dim = model_dim
        self.state_dim = state_dim
        self.scan = scan
        self.blocks = nn.ModuleList(
            S5Block(model_dim, state_dim, init_blocks, dropout, activation)
            for _ in range(num_blocks)
        )

    def _typed_blocks(self) -> list[S5Block]:
        """The blocks, typed for the checker (ModuleList iterates as plain Modules)."""
        return cast(list[S5Block], list(self.blocks))

    @property
    def state_dim_total(self) -> int:
        """Complex state entries per sample: N_b · 2P."""
        return len(self.blocks) * 2 * self.state_dim

    def forward(
        self, x: Tensor, reset: Tensor, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Run T steps through every block; states[:, t] is the stack state after step t."""
        # x: [B, T, D] float   reset: [B, T] bool   state: [B, Nb, 2P] complex64 | None
        # -> out: [B, T, D], states: [B, T, Nb, 2P] complex64
        _check_sequence(x, reset, state, self.model_dim, (len(self.blocks), 2 * self.state_dim))
        block_states = []
        for index, block in enumerate(self._typed_blocks()):
            block_state = None if state is None else state[:, index]
            x, states = block(x, reset, block_state, self.scan)
            block_states.append(states)
        return x, torch.stack(block_states, dim=2)

    def step(self, x_t: Tensor, reset_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step through every block; where reset_t every carried state is replaced by zeros."""
        # x_t: [B, D] float   reset_t: [B] bool   state: [B, Nb, 2P] complex64
        # -> out_t: [B, D], state: [B, Nb, 2P] complex64
        _check_step(x_t, reset_t, state, self.model_dim, (len(self.blocks), 2 * self.state_dim))
        next_states = []
        for index, block in enumerate(self._typed_blocks()):
            x_t, block_state = block.step(x_t, reset_t, state[:, index])
            next_states.append(block_state)
        return x_t, torch.stack(next_states, dim=1)

    def initial_state(self, batch_size: int, device: torch.device | str) -> Tensor:
        """Zeros for every block."""
        # -> state: [B, Nb, 2P] complex64
        shape = (batch_size, len(self.blocks), 2 * self.state_dim)
        return torch.zeros(shape, dtype=torch.complex64, device=device)
