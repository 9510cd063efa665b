"""Actor kinds: shapes, group reductions, straight-through samples (ALGORITHM.md §4.2, D8)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from hieros_pl.behavior.actor import Actor, GroupedCategorical
from hieros_pl.nn.distributions import OneHotCategorical
from hieros_pl.nn.layers import MLP

IN_DIM, GROUPS, CLASSES = 10, 3, 4


def output_weight(mlp: MLP) -> Tensor:
    """Weight of an MLP's output layer (the head is optional in MLP)."""
    assert mlp.head is not None
    return mlp.head.weight


def assert_one_hot(action: torch.Tensor) -> None:
    """One 1 per row of the last dim, up to the rounding of straight-through gradients."""
    values = action.detach()
    torch.testing.assert_close(values, values.round(), rtol=0.0, atol=1e-6)
    assert set(values.round().unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(values.sum(-1), torch.ones(values.shape[:-1]))


def make_actor(kind: str, action_dim: int) -> Actor:
    return Actor(
        IN_DIM,
        action_dim,
        kind,
        groups=GROUPS,
        classes=CLASSES,
        units=16,
        layers=2,
        unimix=0.01,
        min_std=0.1,
        max_std=1.0,
    )


def test_onehot_shapes_and_one_hot_values() -> None:
    actor = make_actor("onehot", 5)
    distribution = actor(torch.randn(7, 2, IN_DIM))
    for action in (distribution.sample(), distribution.mode()):
        assert action.shape == (7, 2, 5)
        assert_one_hot(action)
    assert distribution.log_prob(distribution.sample()).shape == (7, 2)
    assert distribution.entropy().shape == (7, 2)


def test_grouped_log_prob_and_entropy_are_means_over_groups() -> None:
    actor = make_actor("grouped", GROUPS * CLASSES)
    features = torch.randn(6, IN_DIM)
    distribution = actor(features)
    assert isinstance(distribution, GroupedCategorical)
    action = distribution.sample()
    assert action.shape == (6, GROUPS * CLASSES)
    assert_one_hot(action.reshape(6, GROUPS, CLASSES))
    per_group = OneHotCategorical(actor.net(features).reshape(6, GROUPS, CLASSES), 0.01)
    expected_log_prob = per_group.log_prob(action.reshape(6, GROUPS, CLASSES)).mean(-1)
    torch.testing.assert_close(distribution.log_prob(action), expected_log_prob)
    torch.testing.assert_close(distribution.entropy(), per_group.entropy().mean(-1))
    # A mean over groups stays within one group's range: below log(V), not G·log(V).
    assert (distribution.entropy() <= torch.log(torch.tensor(float(CLASSES))) + 1e-6).all()


def test_grouped_mode_is_one_hot_per_group_and_soft_mode_is_probabilities() -> None:
    distribution = make_actor("grouped", GROUPS * CLASSES)(torch.randn(4, IN_DIM))
    assert isinstance(distribution, GroupedCategorical)
    mode = distribution.mode().detach().reshape(4, GROUPS, CLASSES)
    assert_one_hot(mode)
    soft = distribution.soft_mode().reshape(4, GROUPS, CLASSES)
    torch.testing.assert_close(soft.sum(-1), torch.ones(4, GROUPS))
    assert (soft >= 0.01 / CLASSES - 1e-7).all()  # unimix'd: no class below u/V
    expected = torch.nn.functional.one_hot(soft.argmax(-1), CLASSES).float()
    torch.testing.assert_close(mode.round(), expected)


@pytest.mark.parametrize(("kind", "action_dim"), [("onehot", 5), ("grouped", GROUPS * CLASSES)])
def test_straight_through_sample_gradient(kind: str, action_dim: int) -> None:
    actor = make_actor(kind, action_dim)
    action = actor(torch.randn(8, IN_DIM)).sample()
    (action * torch.randn(action_dim)).sum().backward()
    gradient = output_weight(actor.net).grad
    assert gradient is not None and gradient.abs().sum() > 0


def test_normal_shapes_and_reductions() -> None:
    actor = make_actor("normal", 3)
    distribution = actor(torch.randn(5, IN_DIM))
    action = distribution.sample()
    assert action.shape == (5, 3)
    assert distribution.log_prob(action).shape == (5,)
    assert distribution.entropy().shape == (5,)
    assert distribution.mode().abs().max() <= 1.0
    assert actor.net.out_dim == 6  # mean and std per action dim


def test_invalid_kind_and_group_size_raise() -> None:
    with pytest.raises(ValueError, match="kind"):
        make_actor("gaussian", 3)
    with pytest.raises(ValueError, match="groups"):
        make_actor("grouped", GROUPS * CLASSES + 1)
