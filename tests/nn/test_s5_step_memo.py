"""The memoised step matrices of S5SSM: equal to the reference discretisation, rebuilt after
every parameter change (optimiser step, load_state_dict), never used with gradients on; and the
double block's fused no-grad step, equal to its reference and rebuilt after every change."""

from __future__ import annotations

import torch

from hieros_pl.nn.s5 import S5SSM, S5Block


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


def _block(dropout: float = 0.0) -> S5Block:
    torch.manual_seed(0)
    block = S5Block(model_dim=8, state_dim=4, init_blocks=1, dropout=dropout)
    with torch.no_grad():  # non-trivial skip weights and norms, so every folded term matters
        for parameter in block.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return block.eval()


def _fused_calls(block: S5Block) -> list[int]:
    calls = [0]
    original = block.step_fused

    def counted(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls[0] += 1
        return original(*args)

    block.step_fused = counted  # type: ignore[method-assign]
    return calls


def test_fused_block_step_equals_the_reference_with_resets_and_follows_optimiser_steps() -> None:
    block = _block()
    calls = _fused_calls(block)
    optimizer = torch.optim.AdamW(block.parameters(), lr=0.1)
    x = torch.randn(3, 8)
    state = torch.randn(3, 8, dtype=torch.complex64)
    for reset in ([False, False, False], [True, False, True]):
        reset_t = torch.tensor(reset)
        for _ in range(3):
            with torch.no_grad():
                fused = block.step(x, reset_t, state)
                reference = block.step_reference(x, reset_t, state)
            for got, want in zip(fused, reference, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            # A training step (through the reference path) changes the mixing weights and the
            # SSM parameters: the next no-grad step must not use the old fused matrices.
            output, _ = block.step(x, reset_t, state)
            output.square().sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    assert calls[0] == 6  # the no-grad steps took the fused path, the training steps did not


def test_fused_block_step_follows_an_in_place_change_of_a_mixing_weight() -> None:
    block = _block()
    x, reset_t = torch.randn(2, 8), torch.zeros(2, dtype=torch.bool)
    state = torch.randn(2, 8, dtype=torch.complex64)
    with torch.no_grad():
        block.step(x, reset_t, state)  # fills the memo
        block.mix2.weight.mul_(-1.0)
        fused = block.step(x, reset_t, state)
        reference = block.step_reference(x, reset_t, state)
    torch.testing.assert_close(fused[0], reference[0], rtol=1e-5, atol=1e-5)


def test_block_step_with_dropout_in_training_mode_takes_the_reference_path() -> None:
    block = _block(dropout=0.5).train()
    calls = _fused_calls(block)
    with torch.no_grad():
        block.step(
            torch.randn(2, 8), torch.zeros(2, dtype=torch.bool), block.initial_state(2, "cpu")
        )
    assert calls[0] == 0
