"""The memoised step matrices of S5SSM: equal to the reference discretisation, rebuilt after
every parameter change (optimiser step, load_state_dict), never used with gradients on."""

from __future__ import annotations

import torch

from hieros_pl.nn.s5 import S5SSM


def _reference_step(ssm: S5SSM, u: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """y_t from `discretized`, the slow reference, with no memo involved."""
    Lambda_bar, input_matrix, output_matrix = ssm.discretized()
    new_state = Lambda_bar * state + (input_matrix @ u.to(torch.complex64).T).T
    return (output_matrix @ new_state.T).T.real + ssm.skip_weight * u


def test_memoised_step_equals_reference_and_follows_optimiser_steps() -> None:
    torch.manual_seed(0)
    ssm = S5SSM(model_dim=8, state_dim=4, init_blocks=1)
    optimizer = torch.optim.AdamW(ssm.parameters(), lr=0.1)
    u = torch.randn(3, 8)
    state = torch.randn(3, 4, dtype=torch.complex64)
    no_reset = torch.zeros(3, dtype=torch.bool)
    for _ in range(3):
        with torch.no_grad():
            memoised, _ = ssm.step(u, no_reset, state)
            again, _ = ssm.step(u, no_reset, state)
            reference = _reference_step(ssm, u, state)
        torch.testing.assert_close(memoised, reference, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(again, memoised, rtol=0, atol=0)
        # A training step changes every parameter: the next no-grad step must see it.
        output, _ = ssm.step(u, no_reset, state)
        output.square().sum().backward()
        optimizer.step()
        optimizer.zero_grad()


def test_memo_follows_load_state_dict() -> None:
    torch.manual_seed(0)
    ssm, other = S5SSM(8, 4, 1), S5SSM(8, 4, 1)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.3)
    u = torch.randn(2, 8)
    state = torch.zeros(2, 4, dtype=torch.complex64)
    no_reset = torch.zeros(2, dtype=torch.bool)
    with torch.no_grad():
        ssm.step(u, no_reset, state)  # fills the memo
        ssm.load_state_dict(other.state_dict())
        loaded, _ = ssm.step(u, no_reset, state)
        expected, _ = other.step(u, no_reset, state)
    torch.testing.assert_close(loaded, expected, rtol=0, atol=0)


def test_step_with_gradients_reaches_the_parameters() -> None:
    ssm = S5SSM(8, 4, 1)
    with torch.no_grad():
        ssm.step(torch.randn(2, 8), torch.zeros(2, dtype=torch.bool), ssm.initial_state(2, "cpu"))
    output, _ = ssm.step(
        torch.randn(2, 8),
        torch.zeros(2, dtype=torch.bool),
        torch.randn(2, 4, dtype=torch.complex64),
    )
    output.sum().backward()
    for name, parameter in ssm.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
