"""λ-returns and discount weights (ALGORITHM.md §4.5, §12 D2, §15)."""

from __future__ import annotations

import pytest
import torch

from hieros_pl.behavior.returns import (
    discount_weights,
    lambda_return,
    lambda_return_reference,
    transition_slices,
)

# One rollout with H = 3: per-state rewards, continue probabilities and values of s_0..s_3.
REWARDS = torch.tensor([[0.5, 1.0, 2.0, 3.0]])
CONTINUES = torch.tensor([[1.0, 1.0, 0.5, 1.0]])
VALUES = torch.tensor([[0.0, 10.0, 20.0, 30.0]])
DISCOUNT, LAMBDA = 0.9, 0.5


@pytest.mark.parametrize("implementation", [lambda_return, lambda_return_reference])
def test_hand_computed_three_steps_default_indexing(implementation) -> None:
    # R_2 = 3 + .9·1·(.5·30 + .5·30) = 30;  R_1 = 2 + .9·.5·(.5·20 + .5·30) = 13.25
    # R_0 = 1 + .9·1·(.5·10 + .5·13.25) = 11.4625
    rewards, continues = transition_slices(REWARDS, CONTINUES, original=False)
    returns = implementation(rewards, continues, VALUES, DISCOUNT, LAMBDA)
    torch.testing.assert_close(returns, torch.tensor([[11.4625, 13.25, 30.0]]))


@pytest.mark.parametrize("implementation", [lambda_return, lambda_return_reference])
def test_hand_computed_three_steps_original_indexing(implementation) -> None:
    # R_2 = 2 + .9·.5·30 = 15.5;  R_1 = 1 + .9·(.5·20 + .5·15.5) = 16.975
    # R_0 = .5 + .9·(.5·10 + .5·16.975) = 12.63875
    rewards, continues = transition_slices(REWARDS, CONTINUES, original=True)
    returns = implementation(rewards, continues, VALUES, DISCOUNT, LAMBDA)
    torch.testing.assert_close(returns, torch.tensor([[12.63875, 16.975, 15.5]]))


def test_hand_computed_weights() -> None:
    not_terminal = torch.tensor([False])
    default = discount_weights(CONTINUES, DISCOUNT, not_terminal, original=False)
    torch.testing.assert_close(default, torch.tensor([[1.0, 0.9, 0.405]]))
    terminal = discount_weights(CONTINUES, DISCOUNT, torch.tensor([True]), original=False)
    torch.testing.assert_close(terminal, torch.zeros(1, 3))
    original = discount_weights(CONTINUES, DISCOUNT, torch.tensor([True]), original=True)
    torch.testing.assert_close(original, torch.tensor([[1.0, 0.9, 0.81]]))


@pytest.mark.parametrize("original", [False, True])
@pytest.mark.parametrize("horizon", [1, 2, 15])
def test_vectorised_equals_reference(original: bool, horizon: int) -> None:
    N = 7
    rewards = torch.randn(N, horizon + 1)
    # Include exact zeros and ones: a terminal state inside the rollout must cut the products.
    continues = torch.rand(N, horizon + 1)
    continues[0, :] = 0.0
    continues[1, :] = 1.0
    continues[2, horizon // 2] = 0.0
    values = 5.0 * torch.randn(N, horizon + 1)
    sliced = transition_slices(rewards, continues, original)
    for lam in (0.0, 0.3, 0.95, 1.0):
        fast = lambda_return(*sliced, values, 0.997, lam)
        slow = lambda_return_reference(*sliced, values, 0.997, lam)
        torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)


def test_lambda_zero_gives_one_step_targets() -> None:
    rewards, continues, values = torch.randn(4, 6), torch.rand(4, 6), torch.randn(4, 7)
    returns = lambda_return(rewards, continues, values, 0.99, 0.0)
    torch.testing.assert_close(returns, rewards + 0.99 * continues * values[:, 1:])


def test_lambda_one_gives_discounted_monte_carlo_with_bootstrap() -> None:
    rewards, continues, values = torch.randn(3, 5), torch.rand(3, 5), torch.randn(3, 6)
    returns = lambda_return(rewards, continues, values, 0.9, 1.0)
    expected = torch.empty(3, 5)
    for n in range(5):
        total, factor = torch.zeros(3), torch.ones(3)
        for k in range(n, 5):
            total = total + factor * rewards[:, k]
            factor = factor * 0.9 * continues[:, k]
        expected[:, n] = total + factor * values[:, 5]
    torch.testing.assert_close(returns, expected)


def test_vectorised_is_differentiable_like_reference() -> None:
    rewards = torch.randn(2, 4, requires_grad=True)
    values = torch.randn(2, 5, requires_grad=True)
    continues = torch.rand(2, 4)
    fast_grads = torch.autograd.grad(
        lambda_return(rewards, continues, values, 0.9, 0.7).sum(), (rewards, values)
    )
    slow_grads = torch.autograd.grad(
        lambda_return_reference(rewards, continues, values, 0.9, 0.7).sum(), (rewards, values)
    )
    for fast, slow in zip(fast_grads, slow_grads):
        torch.testing.assert_close(fast, slow)
