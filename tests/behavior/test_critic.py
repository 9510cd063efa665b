"""Critic: zero-initialised two-hot head, slow EMA copy, loss (ALGORITHM.md §4.4, §4.8)."""

from __future__ import annotations

import torch
from torch import Tensor

from hieros_pl.behavior.critic import Critic
from hieros_pl.nn.distributions import TwoHot
from hieros_pl.nn.layers import MLP

IN_DIM = 6


def output_weight(mlp: MLP) -> Tensor:
    """Weight of an MLP's output layer (the head is optional in MLP)."""
    assert mlp.head is not None
    return mlp.head.weight


def make_critic() -> Critic:
    return Critic(IN_DIM, units=16, layers=2)


def perturb_(critic: Critic) -> None:
    with torch.no_grad():
        for parameter in critic.net.parameters():
            parameter.add_(torch.randn_like(parameter))


def test_zero_initialised_output_predicts_zero() -> None:
    critic = make_critic()
    torch.testing.assert_close(critic.value(torch.randn(4, 3, IN_DIM)), torch.zeros(4, 3))


def test_slow_copy_starts_exact_and_is_not_trainable() -> None:
    critic = make_critic()
    for slow, fast in zip(critic.slow.parameters(), critic.net.parameters(), strict=True):
        torch.testing.assert_close(slow, fast)  # hidden layers are random, so this is not trivial
        assert slow is not fast
        assert not slow.requires_grad and fast.requires_grad
    trainable = {id(parameter) for parameter in critic.fast_parameters()}
    assert not trainable & {id(parameter) for parameter in critic.slow.parameters()}
    assert "slow.trunk.0.weight" in critic.state_dict()  # saved in checkpoints


def test_slow_update_is_an_ema_with_the_given_fraction() -> None:
    critic = make_critic()
    old_slow = [parameter.clone() for parameter in critic.slow.parameters()]
    perturb_(critic)
    fast = [parameter.clone() for parameter in critic.net.parameters()]
    critic.update_slow(0.02)
    for new, previous, current in zip(critic.slow.parameters(), old_slow, fast):
        torch.testing.assert_close(new, 0.02 * current + 0.98 * previous)
        assert not torch.allclose(new, current)


def test_loss_matches_formula_and_detaches_inputs() -> None:
    critic = make_critic()
    perturb_(critic)
    critic.update_slow(0.5)
    features = torch.randn(5, 4, IN_DIM, requires_grad=True)
    returns = (3.0 * torch.randn(5, 4)).requires_grad_()
    weights = torch.rand(5, 4)
    loss = critic.loss(features, returns, weights)
    distribution = TwoHot(critic.net(features))
    slow_values = TwoHot(critic.slow(features)).mean()
    expected = weights * (-distribution.log_prob(returns) - distribution.log_prob(slow_values))
    torch.testing.assert_close(loss, expected.mean())
    loss.backward()
    assert features.grad is None and returns.grad is None
    assert all(parameter.grad is None for parameter in critic.slow.parameters())
    gradient = output_weight(critic.net).grad
    assert gradient is not None and gradient.abs().sum() > 0


def test_value_through_features_leaves_weights_alone() -> None:
    critic = make_critic()
    perturb_(critic)
    features = torch.randn(3, IN_DIM, requires_grad=True)
    value = critic.value_through_features(features)
    torch.testing.assert_close(value, critic.value(features))
    value.sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in critic.net.parameters())
