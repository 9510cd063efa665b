"""Subgoal and novelty rewards, the per-level reward table (ALGORITHM.md §5.7-5.9)."""

from __future__ import annotations

import math

import pytest
import torch

from hieros_pl.config import ConfigError
from hieros_pl.hierarchy.rewards import (
    level_reward_weights,
    novelty_reward,
    subgoal_reward,
)
from hieros_pl.hierarchy.subgoal import SubgoalAutoencoder
from hieros_pl.nn.symlog import symlog

E, S, N = "extrinsic", "subgoal", "novelty"

# --------------------------------------------------------------------------------------------
# subgoal reward


def test_subgoal_reward_is_one_when_state_equals_goal() -> None:
    deter = 3.0 * torch.randn(5, 4, 16)
    goal = symlog(deter)
    torch.testing.assert_close(subgoal_reward(deter, goal, symlog=False), torch.ones(5, 4))
    torch.testing.assert_close(
        subgoal_reward(deter, goal, symlog=True), torch.full((5, 4), math.log(2.0))
    )


def test_subgoal_reward_zero_for_orthogonal_and_opposite() -> None:
    deter = torch.tensor([[2.0, 0.0, 0.0], [1.0, -1.0, 3.0]])
    orthogonal = torch.tensor([[0.0, 1.0, 5.0], [1.0, 1.0, 0.0]])
    torch.testing.assert_close(subgoal_reward(deter, orthogonal, symlog=True), torch.zeros(2))
    opposite = -symlog(deter)
    torch.testing.assert_close(subgoal_reward(deter, opposite, symlog=True), torch.zeros(2))


@pytest.mark.parametrize("goal_scale", [0.5, 2.0])
def test_subgoal_reward_below_one_when_norms_differ(goal_scale: float) -> None:
    deter = torch.randn(8, 16)
    reward = subgoal_reward(deter, goal_scale * symlog(deter), symlog=False)
    # g̃ = c·s: c‖s‖² / max(c, 1)²‖s‖² = 0.5 for c = 0.5 and for c = 2.
    torch.testing.assert_close(reward, torch.full((8,), 0.5))


def test_subgoal_reward_passes_its_gradient_into_the_state() -> None:
    # As the original's _subgoal_reward: the dynamics gradient reaches the imagined h.
    deter = torch.randn(3, 8, requires_grad=True)
    goal = symlog(deter.detach()) + 0.1 * torch.randn(3, 8)
    subgoal_reward(deter, goal, symlog=True).sum().backward()
    assert deter.grad is not None and deter.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# novelty reward


def tiny_autoencoder() -> SubgoalAutoencoder:
    return SubgoalAutoencoder(
        deter_dim=8, groups=2, classes=3, layers=1, kl_scale=0.5, unimix=0.01, output_layers=True
    )


def test_novelty_reward_in_symlog_space() -> None:
    autoencoder = tiny_autoencoder()
    deter = 10.0 * torch.randn(4, 6, 8)
    squared = (symlog(deter) - autoencoder.reconstruct(deter)) ** 2
    expected = symlog(squared.mean(-1)).detach()
    torch.testing.assert_close(novelty_reward(deter, autoencoder, True, False), expected)
    raw = novelty_reward(deter, autoencoder, symlog=False, original_space=False)
    torch.testing.assert_close(raw, squared.mean(-1).detach())


def test_novelty_reward_in_original_space() -> None:
    autoencoder = tiny_autoencoder()
    deter = 10.0 * torch.randn(4, 8)
    squared = (deter - autoencoder.reconstruct(deter)) ** 2
    original = novelty_reward(deter, autoencoder, symlog=True, original_space=True)
    torch.testing.assert_close(original, symlog(squared.mean(-1)).detach())
    default = novelty_reward(deter, autoencoder, symlog=True, original_space=False)
    assert (original > default).all()  # raw h of scale 10 is far from a symlog-space output


@pytest.mark.parametrize("original_space", [False, True])
def test_novelty_reward_passes_its_gradient_into_the_state_only(original_space: bool) -> None:
    # The gradient reaches h (through both terms) but never the autoencoder's weights.
    autoencoder = tiny_autoencoder()
    deter = torch.randn(3, 8, requires_grad=True)
    novelty_reward(deter, autoencoder, True, original_space).sum().backward()
    assert deter.grad is not None and deter.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in autoencoder.parameters())
    assert all(parameter.requires_grad for parameter in autoencoder.parameters())


# --------------------------------------------------------------------------------------------
# reward components per level


def table(cfg) -> list[dict[str, float]]:
    levels = cfg.hierarchy.levels
    return [level_reward_weights(level, levels, cfg.reward) for level in range(levels)]


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (1, [{E: 1.0}]),
        (2, [{E: 1.0, S: 0.3}, {E: 1.0, N: 0.1}]),
        (3, [{E: 1.0, S: 0.3}, {E: 1.0, S: 0.3, N: 0.1}, {E: 1.0, N: 0.1}]),
        (
            4,
            [
                {E: 1.0, S: 0.3},
                {E: 1.0, S: 0.3, N: 0.1},
                {E: 1.0, S: 0.3, N: 0.1},
                {E: 1.0, N: 0.1},
            ],
        ),
    ],
)
def test_paper_reward_table_per_depth(compose_config, depth: int, expected) -> None:
    assert table(compose_config(f"hierarchy=depth{depth}", "reward=hieros")) == expected


def test_depth_one_keeps_novelty_when_not_only_higher_levels(compose_config) -> None:
    cfg = compose_config("hierarchy=depth1", "reward.novelty_only_higher_levels=false")
    assert table(cfg) == [{E: 1.0, N: 0.1}]


def test_novelty_everywhere_when_not_only_higher_levels(compose_config) -> None:
    cfg = compose_config("hierarchy=depth3", "reward.novelty_only_higher_levels=false")
    assert table(cfg) == [{E: 1.0, S: 0.3, N: 0.1}, {E: 1.0, S: 0.3, N: 0.1}, {E: 1.0, N: 0.1}]


def test_novelty_top_only(compose_config) -> None:
    cfg = compose_config("hierarchy=depth3", "reward=novelty_top_only")
    assert table(cfg) == [{E: 1.0, S: 0.3}, {E: 1.0, S: 0.3}, {E: 1.0, N: 0.1}]


def test_extrinsic_top_only(compose_config) -> None:
    cfg = compose_config("hierarchy=depth3", "reward=subgoal_only")
    assert cfg.reward.extrinsic_top_only
    assert table(cfg) == [{S: 0.3}, {S: 0.3, N: 0.1}, {E: 1.0, N: 0.1}]


def test_zero_weights_are_dropped(compose_config) -> None:
    assert table(compose_config("hierarchy=depth3", "reward=no_novelty")) == [
        {E: 1.0, S: 0.3},
        {E: 1.0, S: 0.3},
        {E: 1.0},
    ]
    assert table(compose_config("hierarchy=depth3", "reward=extrinsic_only")) == [{E: 1.0}] * 3


def test_level_without_components_fails_naming_the_key(compose_config) -> None:
    cfg = compose_config(
        "hierarchy=depth2", "reward=extrinsic_only", "reward.extrinsic_top_only=true"
    )
    with pytest.raises(ConfigError, match=r"reward\.weights"):
        level_reward_weights(0, 2, cfg.reward)
