"""The parallel scan equals the sequential reference (ALGORITHM.md §15, S5 scan)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from hieros_pl.nn.scan import (
    CPU_PARALLEL_MIN_STEPS,
    SCANS,
    compose_resettable,
    linear_recurrence_parallel,
    linear_recurrence_sequential,
    select_scan,
)

TOLERANCE = 1e-4


def random_decay(
    shape: tuple[int, ...], generator: torch.Generator, max_abs: float = 1.0
) -> Tensor:
    """Complex decays with modulus in [0.5, max_abs] and any phase."""
    modulus = 0.5 + (max_abs - 0.5) * torch.rand(shape, generator=generator)
    phase = (2 * torch.rand(shape, generator=generator) - 1) * math.pi
    return torch.polar(modulus, phase)


def random_complex(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return torch.randn(shape, dtype=torch.complex64, generator=generator)


def both_scans(
    decay: Tensor, inputs: Tensor, reset: Tensor, initial: Tensor | None
) -> tuple[Tensor, Tensor]:
    return (
        linear_recurrence_parallel(decay, inputs, reset, initial),
        linear_recurrence_sequential(decay, inputs, reset, initial),
    )


@settings(deadline=None, max_examples=25)
@given(
    T=st.integers(1, 80),
    B=st.integers(1, 3),
    reset_rate=st.sampled_from([0.0, 0.05, 0.3, 0.8, 1.0]),
    time_varying=st.booleans(),
    carried=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_parallel_equals_sequential_random(
    T: int, B: int, reset_rate: float, time_varying: bool, carried: bool, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    P = 6
    decay = random_decay((B, T, P) if time_varying else (P,), generator)
    inputs = random_complex((B, T, P), generator)
    reset = torch.rand(B, T, generator=generator) < reset_rate
    initial = random_complex((B, P), generator) if carried else None
    parallel, sequential = both_scans(decay, inputs, reset, initial)
    assert parallel.shape == (B, T, P)
    assert (parallel - sequential).abs().max() <= TOLERANCE


RESET_PATTERNS = {
    "none": [],
    "first_step": [0],
    "middle": [7],
    "two_in_a_row": [5, 6],
    "last_step": [12],
}


@pytest.mark.parametrize("carried", [False, True])
@pytest.mark.parametrize("pattern", [*RESET_PATTERNS, "every_step"])
def test_parallel_equals_sequential_edge_cases(pattern: str, carried: bool) -> None:
    generator = torch.Generator().manual_seed(1)
    B, T, P = 2, 13, 4
    decay = random_decay((P,), generator)
    inputs = random_complex((B, T, P), generator)
    reset = torch.zeros(B, T, dtype=torch.bool)
    if pattern == "every_step":
        reset[:] = True
    else:
        reset[0, RESET_PATTERNS[pattern]] = True
    initial = random_complex((B, P), generator) if carried else None
    parallel, sequential = both_scans(decay, inputs, reset, initial)
    assert (parallel - sequential).abs().max() <= TOLERANCE
    if pattern == "every_step":
        assert torch.equal(parallel, inputs)


@pytest.mark.parametrize("carried", [False, True])
def test_single_step(carried: bool) -> None:
    generator = torch.Generator().manual_seed(2)
    decay, inputs = random_decay((3,), generator), random_complex((2, 1, 3), generator)
    initial = random_complex((2, 3), generator) if carried else None
    reset = torch.tensor([[False], [True]])
    expected = inputs[:, 0].clone()
    if initial is not None:
        expected[0] += decay * initial[0]
    for states in both_scans(decay, inputs, reset, initial):
        assert torch.allclose(states[:, 0], expected)


def test_hand_computed_recurrence() -> None:
    # x_{-1} = 2, A = 0.5, b = 1, reset at t = 2: x = 2, 2, 1 (restart), 1.5.
    decay = torch.full((1,), 0.5, dtype=torch.complex64)
    inputs = torch.ones(1, 4, 1, dtype=torch.complex64)
    reset = torch.tensor([[False, False, True, False]])
    initial = torch.full((1, 1), 2.0, dtype=torch.complex64)
    expected = torch.tensor([2.0, 2.0, 1.0, 1.5], dtype=torch.complex64)
    for name, scan in SCANS.items():
        assert torch.equal(scan(decay, inputs, reset, initial)[0, :, 0], expected), name


def test_growing_decay_stays_finite_and_equal() -> None:
    # |A| > 1 can happen because Λ is unconstrained; both must grow together, without NaN.
    generator = torch.Generator().manual_seed(3)
    B, T, P = 2, 300, 4
    decay = random_decay((P,), generator, max_abs=1.02)
    inputs = random_complex((B, T, P), generator)
    reset = torch.rand(B, T, generator=generator) < 0.01
    parallel, sequential = both_scans(decay, inputs, reset, None)
    assert torch.isfinite(torch.view_as_real(parallel)).all()
    relative = (parallel - sequential).abs().max() / sequential.abs().max()
    assert relative <= 1e-5


def test_gradients_equal_sequential() -> None:
    generator = torch.Generator().manual_seed(4)
    B, T, P = 2, 37, 5
    decay_value = random_decay((P,), generator)
    inputs_value = random_complex((B, T, P), generator)
    initial_value = random_complex((B, P), generator)
    reset = torch.rand(B, T, generator=generator) < 0.1
    weights = random_complex((B, T, P), generator)
    gradients = []
    for scan in (linear_recurrence_parallel, linear_recurrence_sequential):
        decay, inputs, initial = (
            value.clone().requires_grad_() for value in (decay_value, inputs_value, initial_value)
        )
        (scan(decay, inputs, reset, initial) * weights).real.sum().backward()
        gradients.append([decay.grad, inputs.grad, initial.grad])
    for parallel_grad, sequential_grad in zip(*gradients):
        assert parallel_grad is not None and sequential_grad is not None
        assert (parallel_grad - sequential_grad).abs().max() <= TOLERANCE


def test_compose_follows_the_operator_definition() -> None:
    decay = torch.tensor([[[2.0]], [[3.0]]], dtype=torch.complex64)
    offset = torch.tensor([[[5.0]], [[7.0]]], dtype=torch.complex64)
    earlier = (decay[0], offset[0], torch.tensor([[True]]))
    for later_reset, expected in [(True, (3.0, 7.0, True)), (False, (6.0, 22.0, True))]:
        later = (decay[1], offset[1], torch.tensor([[later_reset]]))
        composed_decay, composed_offset, composed_reset = compose_resettable(earlier, later)
        assert (composed_decay.item(), composed_offset.item()) == expected[:2]
        assert composed_reset.item() is expected[2]


def test_compose_is_associative() -> None:
    generator = torch.Generator().manual_seed(5)
    shape = (4, 3, 6)
    elements = [
        (random_decay(shape, generator), random_complex(shape, generator), reset)
        for reset in torch.rand(3, 4, 3, generator=generator) < 0.4
    ]
    first, second, third = elements
    left = compose_resettable(compose_resettable(first, second), third)
    right = compose_resettable(first, compose_resettable(second, third))
    assert torch.equal(left[2], right[2])
    for left_part, right_part in zip(left[:2], right[:2]):
        assert (left_part - right_part).abs().max() <= 1e-6


def test_select_scan() -> None:
    assert select_scan("auto", CPU_PARALLEL_MIN_STEPS) is linear_recurrence_parallel
    assert select_scan("auto", CPU_PARALLEL_MIN_STEPS - 1) is linear_recurrence_sequential
    assert select_scan("auto", 64, "cuda") is linear_recurrence_parallel
    assert select_scan("auto", 1, "cuda") is linear_recurrence_sequential
    assert select_scan("sequential", 1024) is linear_recurrence_sequential
    assert select_scan("parallel", 1) is linear_recurrence_parallel
    with pytest.raises(ValueError, match="valid: parallel, sequential, auto"):
        select_scan("blelloch", 64)
