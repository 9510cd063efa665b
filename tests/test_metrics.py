"""Human-normalised scores, their aggregates with bootstrap CIs, and episode metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hieros_pl.envs.games import ATARI100K_GAMES
from hieros_pl.metrics import (
    EpisodeMetrics,
    aggregate_scores,
    human_normalized_score,
    reference_scores,
)


def test_reference_scores_cover_the_26_games() -> None:
    reference = reference_scores()
    assert tuple(reference) == ATARI100K_GAMES
    assert reference["Pong"]["random"] == -20.7 and reference["Pong"]["human"] == 14.6


@pytest.mark.parametrize("game", ["Pong", "ms_pacman", "UpNDown"])
def test_random_scores_zero_and_human_scores_one(game: str) -> None:
    reference = reference_scores()[{"ms_pacman": "MsPacman"}.get(game, game)]
    assert human_normalized_score(game, reference["random"]) == pytest.approx(0.0)
    assert human_normalized_score(game, reference["human"]) == pytest.approx(1.0)
    halfway = (reference["random"] + reference["human"]) / 2
    np.testing.assert_allclose(
        human_normalized_score(game, np.array([reference["random"], halfway])), [0.0, 0.5]
    )


def test_unknown_game_is_a_named_error() -> None:
    with pytest.raises(ValueError, match=r"game 'pongg'.*Pong"):
        human_normalized_score("pongg", 0.0)


def raw_scores(normalized: np.ndarray) -> dict[str, np.ndarray]:
    """Invert the HNS: normalized [R, 26] -> game -> raw scores of R runs."""
    reference = reference_scores()
    return {
        game: reference[game]["random"]
        + normalized[:, index] * (reference[game]["human"] - reference[game]["random"])
        for index, game in enumerate(ATARI100K_GAMES)
    }


def test_aggregates_of_a_known_array() -> None:
    normalized = np.random.default_rng(0).gamma(1.0, 0.8, size=(4, 26))  # [R=4 runs, 26 games]
    result = aggregate_scores(raw_scores(normalized), reps=200, seed=1)
    pooled = np.sort(normalized.reshape(-1))  # 104 values: trimming 25% drops 26 on each side
    assert result["iqm"] == pytest.approx(pooled[26:78].mean())
    per_game = normalized.mean(axis=0)
    assert result["mean"] == pytest.approx(per_game.mean())
    assert result["median"] == pytest.approx(np.median(per_game))
    for name in ("mean", "median", "iqm"):
        assert result[f"{name}_ci_low"] < result[name] < result[f"{name}_ci_high"], name
    assert aggregate_scores(raw_scores(normalized), reps=200, seed=1) == result
    assert aggregate_scores(raw_scores(normalized), reps=200, seed=2) != result


def test_aggregate_leaves_the_global_rng_alone() -> None:
    np.random.seed(5)
    expected = np.random.random_sample(3)
    np.random.seed(5)
    aggregate_scores({"pong": [0.0, 1.0], "breakout": [2.0, 3.0]}, reps=50)
    np.testing.assert_array_equal(np.random.random_sample(3), expected)


def test_aggregate_rejects_unequal_run_counts() -> None:
    with pytest.raises(ValueError, match="same number"):
        aggregate_scores({"pong": [0.0, 1.0], "breakout": [2.0]}, reps=10)


def test_episode_metrics() -> None:
    metrics = EpisodeMetrics()
    empty = metrics.compute()
    assert empty["episodes"] == 0 and torch.isnan(empty["return"]) and empty["returns"].numel() == 0
    metrics.update(np.array([1.0, -3.0]), np.array([10, 30]))
    metrics.update(torch.tensor([6.0]), torch.tensor([20]))
    result = metrics.compute()
    assert result["return"].item() == pytest.approx(4.0 / 3.0)
    assert result["length"].item() == pytest.approx(20.0)
    assert result["return_max"].item() == 6.0
    assert result["episodes"].item() == 3.0
    assert result["returns"].tolist() == [1.0, -3.0, 6.0]
    metrics.reset()
    assert metrics.compute()["episodes"] == 0
