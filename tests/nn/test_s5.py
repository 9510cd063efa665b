"""S5 layer, double block and stack: maths, init, step equals forward, resets, carried state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from hieros_pl.nn.s5 import S5SSM, S5Block, S5Stack, discretize_zoh, ssm_inputs, ssm_outputs
from hieros_pl.nn.s5_init import (
    dplr_hippo_blocks,
    hippo_legs,
    hippo_legs_normal,
    lecun_normal_original,
    s5_initial_values,
)

TOLERANCE = 1e-4
D, P, J = 16, 8, 2
SequenceModel = S5SSM | S5Block | S5Stack


def build(kind: str, scan: str = "parallel") -> SequenceModel:
    """A small model of each kind, in eval mode so that dropout is off."""
    model: SequenceModel
    if kind == "ssm":
        model = S5SSM(D, P, J)
    elif kind == "block":
        model = S5Block(D, P, J, dropout=0.1)
    else:
        model = S5Stack(D, P, J, num_blocks=2, dropout=0.1, activation="gelu", scan=scan)
    return model.eval()


def run(
    model: SequenceModel, x: Tensor, reset: Tensor, state: Tensor | None
) -> tuple[Tensor, Tensor]:
    """forward() of any kind; the stack takes its scan from its constructor."""
    if isinstance(model, S5Stack):
        return model(x, reset, state)
    return model(x, reset, state, "parallel")


def fold_step(
    model: SequenceModel, x: Tensor, reset: Tensor, state: Tensor
) -> tuple[Tensor, Tensor]:
    """step() folded over time, stacked like forward()'s outputs."""
    outputs, states = [], []
    for x_t, reset_t in zip(x.unbind(1), reset.unbind(1)):
        out_t, state = model.step(x_t, reset_t, state)
        outputs.append(out_t)
        states.append(state)
    return torch.stack(outputs, dim=1), torch.stack(states, dim=1)


def random_sequence(B: int, T: int, reset_rate: float = 0.02) -> tuple[Tensor, Tensor]:
    return torch.randn(B, T, D), torch.rand(B, T) < reset_rate


def random_state(model: SequenceModel, B: int) -> Tensor:
    zeros = model.initial_state(B, "cpu")
    return torch.randn(zeros.shape, dtype=torch.complex64)


def max_error(first: Tensor, second: Tensor) -> float:
    return (first - second).abs().max().item()


# --- pure functions ----------------------------------------------------------------------------


def test_discretize_zoh_matches_matrix_exponential() -> None:
    # ZOH of x' = λx + u over Δ: exp([[λΔ, Δ], [0, 0]]) = [[Λ̄, (Λ̄ - 1)/λ], [0, 1]].
    Lambda = torch.complex(-torch.rand(5) - 0.1, 3 * torch.randn(5)).to(torch.complex128)
    log_step = torch.empty(5, dtype=torch.float64).uniform_(math.log(1e-3), math.log(0.5))
    Lambda_bar, B_scale = discretize_zoh(Lambda, log_step)
    step = torch.exp(log_step).to(torch.complex128)
    augmented = torch.zeros(5, 2, 2, dtype=torch.complex128)
    augmented[:, 0, 0], augmented[:, 0, 1] = Lambda * step, step
    exponential = torch.linalg.matrix_exp(augmented)
    assert torch.allclose(Lambda_bar, exponential[:, 0, 0], atol=1e-10)
    assert torch.allclose(B_scale, exponential[:, 0, 1], atol=1e-10)


def test_ssm_inputs_and_outputs_match_complex_matmul() -> None:
    input_matrix = torch.randn(P, D, dtype=torch.complex64)
    output_matrix = torch.randn(D, P, dtype=torch.complex64)
    skip_weight, u = torch.rand(D), torch.randn(3, 5, D)
    states = torch.randn(3, 5, P, dtype=torch.complex64)
    expected_inputs = u.to(torch.complex64) @ input_matrix.T
    expected_outputs = (states @ output_matrix.T).real + skip_weight * u
    assert max_error(ssm_inputs(input_matrix, u), expected_inputs) <= 1e-5
    assert max_error(ssm_outputs(output_matrix, skip_weight, states, u), expected_outputs) <= 1e-5


# --- initialisation ----------------------------------------------------------------------------


def test_hippo_normal_part() -> None:
    N = 6
    legs, normal = hippo_legs(N), hippo_legs_normal(N)
    assert legs[4, 1] == -math.sqrt(9) * math.sqrt(3) and legs[2, 2] == -3 and legs[1, 4] == 0
    assert torch.allclose(normal.diagonal(), torch.full((N,), -0.5, dtype=torch.float64))
    skew = normal + 0.5 * torch.eye(N, dtype=torch.float64)
    assert torch.allclose(skew, -skew.T)


def test_dplr_blocks_eigendecompose_block_diagonal_normal_part() -> None:
    P_large, J_large = 32, 4
    Lambda, V_blk, V_blk_inverse = dplr_hippo_blocks(P_large, J_large)
    assert torch.equal(Lambda.real, torch.full((P_large,), -0.5))
    period = P_large // J_large
    assert torch.equal(Lambda.imag, Lambda.imag[:period].repeat(J_large))
    assert Lambda.imag[:period].unique().numel() == period
    identity = torch.eye(P_large, dtype=torch.complex64)
    assert max_error(V_blk @ V_blk.conj().T, identity) <= 1e-5
    assert torch.equal(V_blk_inverse, V_blk.conj().T)
    normal_blocks = torch.block_diag(*[hippo_legs_normal(period)] * J_large).to(torch.complex64)
    assert max_error(V_blk @ torch.diag(Lambda) @ V_blk_inverse, normal_blocks) <= 1e-4
    with pytest.raises(ValueError, match="init_blocks J=3"):
        dplr_hippo_blocks(32, 3)


def test_lecun_normal_original_scale() -> None:
    fan_in = 64
    sample = lecun_normal_original((400, 500), fan_in, torch.Generator().manual_seed(0))
    assert sample.std().item() == pytest.approx(0.7737 / math.sqrt(fan_in), rel=0.01)
    assert sample.abs().max().item() <= 2 * 0.87962566 / math.sqrt(fan_in) + 1e-7


def test_initial_values_ranges_and_scales() -> None:
    model_dim, state_dim = 64, 128
    values = s5_initial_values(model_dim, state_dim, 4, torch.Generator().manual_seed(0))
    assert values.log_step.min() >= math.log(1e-3) and values.log_step.max() <= math.log(0.1)
    assert values.skip_weight.min() >= 0 and values.skip_weight.max() < 1
    # Unitary V_blk keeps the norm: |B̃| has the std of B, |C̃| the joint std of (C_re, C_im).
    input_std = torch.view_as_complex(values.input_matrix).abs().square().mean().sqrt()
    output_std = torch.view_as_complex(values.output_matrix).abs().square().mean().sqrt()
    assert input_std.item() == pytest.approx(0.7737 / math.sqrt(state_dim), rel=0.05)
    expected_output = math.sqrt(2) * 0.7737 / math.sqrt(model_dim * state_dim)
    assert output_std.item() == pytest.approx(expected_output, rel=0.05)
    # B̃ = V⁻¹_blk B with a real B, so V_blk B̃ has no imaginary part.
    _, V_blk, _ = dplr_hippo_blocks(state_dim, 4)
    real_input = V_blk @ torch.view_as_complex(values.input_matrix)
    assert real_input.imag.abs().max() <= 1e-5 < real_input.real.abs().max()


def test_block_mixing_layers_use_hidden_init() -> None:
    # §7.2: std √(1/fan_avg)/0.87962566, truncated at ±2 absolute, so effectively untruncated.
    model_dim = 64
    block = S5Block(model_dim, P, J, dropout=0.0)
    for mix in (block.mix1, block.mix2):
        expected_std = 1 / math.sqrt(model_dim) / 0.87962566
        assert mix.weight.std().item() == pytest.approx(expected_std, rel=0.1)
    assert torch.equal(block.norm3.weight, torch.ones(model_dim))


def test_module_starts_from_dplr_init() -> None:
    ssm = S5SSM(D, P, J)
    assert torch.equal(ssm.eigenvalues[:, 0], torch.full((P,), -0.5))
    assert torch.equal(ssm.eigenvalues[:4, 1], ssm.eigenvalues[4:, 1])
    assert ssm.max_real_lambda().item() == -0.5
    assert all(parameter.dtype == torch.float32 for parameter in ssm.parameters())


# --- forward / step equivalence ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "T"), [("ssm", 1024), ("block", 256), ("stack", 1024), ("ssm", 1)]
)
def test_forward_equals_folded_step(kind: str, T: int) -> None:
    model = build(kind)
    x, reset = random_sequence(2, T)
    reset[0, 0] = True
    reset[1, 0] = False
    reset[0, 7:9] = True
    state = random_state(model, 2)
    with torch.no_grad():
        out, states = run(model, x, reset, state)
        stepped_out, stepped_states = fold_step(model, x, reset, state)
    assert max_error(out, stepped_out) <= TOLERANCE
    assert max_error(states, stepped_states) <= TOLERANCE


def test_stack_scans_agree() -> None:
    x, reset = random_sequence(2, 100, reset_rate=0.1)
    outputs = {}
    for scan in ("parallel", "sequential", "auto"):
        torch.manual_seed(1)
        stack = build("stack", scan)
        with torch.no_grad():
            outputs[scan] = stack(x, reset)
    for scan in ("sequential", "auto"):
        assert max_error(outputs[scan][0], outputs["parallel"][0]) <= TOLERANCE
        assert max_error(outputs[scan][1], outputs["parallel"][1]) <= TOLERANCE


@pytest.mark.parametrize("kind", ["ssm", "block", "stack"])
def test_reset_equals_fresh_start(kind: str) -> None:
    model = build(kind)
    T, t = 40, 17
    x, reset = random_sequence(2, T, reset_rate=0.0)
    reset[:, t] = True
    with torch.no_grad():
        out, states = run(model, x, reset, random_state(model, 2))
        fresh_out, fresh_states = run(model, x[:, t:], reset[:, t:], None)
    assert max_error(out[:, t:], fresh_out) <= TOLERANCE
    assert max_error(states[:, t:], fresh_states) <= TOLERANCE


@pytest.mark.parametrize("kind", ["ssm", "block", "stack"])
def test_carried_state_continues_sequence(kind: str) -> None:
    model = build(kind)
    T, t = 50, 21
    x = torch.randn(2, T, D)
    reset = torch.zeros(2, T, dtype=torch.bool)
    with torch.no_grad():
        out, states = run(model, x, reset, None)
        head_out, head_states = run(model, x[:, :t], reset[:, :t], None)
        tail_out, tail_states = run(model, x[:, t:], reset[:, t:], head_states[:, -1])
    assert max_error(torch.cat([head_out, tail_out], dim=1), out) <= TOLERANCE
    assert max_error(torch.cat([head_states, tail_states], dim=1), states) <= TOLERANCE
    # The carried state matters: starting the tail from zeros gives a different output.
    zero_start_out, _ = run(model, x[:, t:], reset[:, t:], None)
    assert max_error(zero_start_out, out[:, t:]) > 1e-3


def test_step_reset_drops_carried_state() -> None:
    stack = build("stack")
    x_t = torch.randn(3, D)
    reset_t = torch.tensor([True, False, True])
    carried = random_state(stack, 3)
    out, state = stack.step(x_t, reset_t, carried)
    fresh_out, fresh_state = stack.step(x_t, reset_t, stack.initial_state(3, "cpu"))
    assert torch.equal(out[reset_t], fresh_out[reset_t])
    assert torch.equal(state[reset_t], fresh_state[reset_t])
    assert max_error(out[1], fresh_out[1]) > 1e-3


# --- gradients, precision, contracts -----------------------------------------------------------


@pytest.mark.parametrize("scan", ["parallel", "sequential"])
def test_gradients_reach_every_parameter(scan: str) -> None:
    stack = build("stack", scan).train()
    x, reset = random_sequence(2, 33, reset_rate=0.1)
    out, states = stack(x, reset, random_state(stack, 2))
    loss = (out * torch.randn_like(out)).sum() + (states.real * torch.randn(states.shape)).sum()
    loss.backward()
    for name, parameter in stack.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().max() > 0, name


def test_autocast_keeps_s5_in_float32() -> None:
    stack, ssm = build("stack"), build("ssm")
    x, reset = random_sequence(2, 20, reset_rate=0.1)
    with torch.no_grad():
        ssm_reference, _ = ssm(x, reset)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ssm_out, ssm_states = ssm(x.bfloat16(), reset)
            stack_out, stack_states = stack(x, reset)
            step_out, step_state = ssm.step(x[:, 0], reset[:, 0], ssm.initial_state(2, "cpu"))
    assert ssm_out.dtype == stack_out.dtype == step_out.dtype == torch.float32
    assert ssm_states.dtype == stack_states.dtype == step_state.dtype == torch.complex64
    # Only the bf16 rounding of the input remains; bf16 matmuls would add ~1e-2 on top.
    assert max_error(ssm_out, ssm_reference) <= 0.05
    assert max_error(ssm(x.bfloat16().float(), reset)[0], ssm_out) <= 1e-6


def test_state_layout() -> None:
    stack = build("stack")
    assert stack.state_dim_total == 2 * 2 * P
    assert stack.initial_state(3, "cpu").shape == (3, 2, 2 * P)
    x, reset = random_sequence(3, 5)
    out, states = stack(x, reset)
    assert out.shape == (3, 5, D) and states.shape == (3, 5, 2, 2 * P)


def test_bad_choices_raise() -> None:
    with pytest.raises(ValueError, match="valid: parallel, sequential, auto"):
        S5Stack(D, P, J, num_blocks=1, dropout=0.0, activation="gelu", scan="fft")
    with pytest.raises(ValueError, match="valid: gelu, silu"):
        S5Block(D, P, J, dropout=0.0, activation="relu")


def test_wrong_shapes_are_named() -> None:
    stack = build("stack")
    x, reset = random_sequence(2, 5)
    with pytest.raises(AssertionError, match="reset"):
        stack(x, reset[:, :4])
    with pytest.raises(AssertionError, match="state"):
        stack(x, reset, torch.zeros(2, 2, P, dtype=torch.complex64))


def test_activation_choice_is_used() -> None:
    torch.manual_seed(2)
    gelu_block = S5Block(D, P, J, dropout=0.0, activation="gelu")
    torch.manual_seed(2)
    silu_block = S5Block(D, P, J, dropout=0.0, activation="silu")
    assert isinstance(gelu_block.activation, nn.GELU)
    assert gelu_block.activation.approximate == "none"
    x, reset = random_sequence(1, 4)
    assert max_error(gelu_block(x, reset)[0], silu_block(x, reset)[0]) > 1e-4
