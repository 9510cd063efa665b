"""PolicyStats: how wide the level-0 policy was and how it repeated actions within episodes."""

from __future__ import annotations

import numpy as np
import pytest

from hieros_pl.policy_stats import PolicyStats


def play(stats: PolicyStats, actions: list[int], firsts: list[bool], probs: np.ndarray) -> None:
    for action, first in zip(actions, firsts):
        stats.update(probs[None], np.array([action]), np.array([first]), np.array([True]))


def test_uniform_policy_has_full_entropy_and_top_probability_one_over_a() -> None:
    stats = PolicyStats(action_dim=4, num_envs=1)
    play(stats, [0, 1, 2, 3], [True, False, False, False], np.full(4, 0.25))
    summary = stats.summary()
    assert summary["entropy_fraction_mean"] == pytest.approx(1.0)
    assert summary["top_probability_median"] == pytest.approx(0.25)
    assert summary["action_change_rate"] == 1.0 and summary["longest_run_of_one_action"] == 1
    assert summary["action_frequencies"] == [0.25, 0.25, 0.25, 0.25]


def test_a_peaked_policy_has_low_entropy() -> None:
    stats = PolicyStats(action_dim=4, num_envs=1)
    play(stats, [2, 2], [True, False], np.array([0.01, 0.01, 0.97, 0.01]))
    summary = stats.summary()
    assert summary["entropy_fraction_mean"] < 0.15
    assert summary["top_probability_mean"] == pytest.approx(0.97)


def test_runs_of_one_action_restart_at_an_episode_start() -> None:
    stats = PolicyStats(action_dim=3, num_envs=1)
    firsts = [True, False, False, True, False, False, False]
    play(stats, [2] * 7, firsts, np.full(3, 1 / 3))
    summary = stats.summary()
    # 3 + 4 steps of action 2: the longest run is 4, not 7; every comparable step repeats.
    assert summary["longest_run_of_one_action"] == 4
    assert summary["action_change_rate"] == 0.0
    assert summary["steps"] == 7


def test_envs_not_counted_leave_no_trace() -> None:
    stats = PolicyStats(action_dim=2, num_envs=2)
    probs = np.array([[0.5, 0.5], [0.9, 0.1]])
    for step in range(4):
        actions = np.array([0, step % 2])
        stats.update(probs, actions, np.array([step == 0] * 2), np.array([True, False]))
    summary = stats.summary()
    assert summary["steps"] == 4 and summary["action_frequencies"] == [1.0, 0.0]
    assert summary["top_probability_mean"] == pytest.approx(0.5)
    assert summary["longest_run_of_one_action"] == 4


def test_mismatched_shapes_and_empty_statistics_are_clear_errors() -> None:
    stats = PolicyStats(action_dim=3, num_envs=1)
    with pytest.raises(ValueError, match="no counted step"):
        stats.summary()
    with pytest.raises(ValueError, match=r"do not match 1 envs x 3 actions"):
        stats.update(np.full((1, 4), 0.25), np.array([0]), np.array([True]), np.array([True]))
    with pytest.raises(ValueError, match="at least 2 actions"):
        PolicyStats(action_dim=1, num_envs=1)
