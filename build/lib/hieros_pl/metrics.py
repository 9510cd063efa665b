"""Scores: human-normalised Atari 100k scores, their aggregates, and running episode metrics.

Aggregates follow ALGORITHM.md §10.2 and rliable (Agarwal et al., NeurIPS 2021): mean and median
over games of the per-game mean HNS, IQM over all pooled run×game HNS values, each with a
stratified-bootstrap confidence interval (runs resampled within each game).
"""

from __future__ import annotations

import csv
import importlib.resources
import io
from collections.abc import Mapping
from typing import TypeVar

import numpy as np
import torch
import torchmetrics
from numpy.typing import ArrayLike
from torch import Tensor

from hieros_pl.envs.games import canonical_game

Score = TypeVar("Score", float, np.ndarray)

AGGREGATES = ("mean", "median", "iqm")


def reference_scores() -> dict[str, dict[str, float]]:
    """Per Atari 100k game (camel case): random, human and published method scores.

    Read from the packaged ``resources/atari100k_reference.csv`` (ALGORITHM.md §14); inner keys
    are its columns (random, human, simple, spr, twm, iris, dreamerv3_v1, storm, diamond).
    """
    resource = importlib.resources.files("hieros_pl").joinpath("resources/atari100k_reference.csv")
    rows = csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8")))
    return {
        row["game"]: {
            key: float(value) for key, value in row.items() if key not in ("game", "ale_id")
        }
        for row in rows
    }


def human_normalized_score(game: str, score: Score) -> Score:
    """HNS = (score - random) / (human - random) with the reference scores of ``game``.

    ``game`` in snake or camel case (ValueError naming it if unknown); ``score`` a float or array.
    0 is the random policy's score, 1 the human's.
    """
    reference = reference_scores()[canonical_game(game, key="game")]
    return (score - reference["random"]) / (reference["human"] - reference["random"])


def aggregate_scores(
    scores: Mapping[str, ArrayLike], reps: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> dict[str, float]:
    """Mean, median and IQM of the human-normalised scores with stratified-bootstrap CIs.

    scores: game (snake or camel case) -> raw scores of R runs, the same R for every game.
    Returns ``{name, name_ci_low, name_ci_high}`` for name in mean, median, iqm: mean and median
    over games of the per-game mean HNS over runs, IQM = 25%-trimmed mean of all R×games values.
    The ``confidence`` interval comes from ``reps`` percentile-bootstrap resamples; the result
    is a function of the inputs and ``seed`` (the global numpy RNG is left as it was).
    """
    from rliable import library as rly
    from rliable import metrics as rly_metrics

    normalized = _normalized_matrix(scores)  # [R, games]

    def aggregates(matrix: np.ndarray) -> np.ndarray:
        return np.array(
            [
                rly_metrics.aggregate_mean(matrix),
                rly_metrics.aggregate_median(matrix),
                rly_metrics.aggregate_iqm(matrix),
            ]
        )

    # rliable's StratifiedBootstrap draws its resamples with np.random.choice (the global RNG),
    # whatever random_state says, so we seed the global RNG for the call and restore it after.
    global_state = np.random.get_state()
    np.random.seed(seed)
    try:
        points, intervals = rly.get_interval_estimates(
            {"run": normalized}, aggregates, reps=reps, confidence_interval_size=confidence
        )
    finally:
        np.random.set_state(global_state)
    result: dict[str, float] = {}
    for index, name in enumerate(AGGREGATES):
        result[name] = float(points["run"][index])
        result[f"{name}_ci_low"] = float(intervals["run"][0, index])
        result[f"{name}_ci_high"] = float(intervals["run"][1, index])
    return result


def _normalized_matrix(scores: Mapping[str, ArrayLike]) -> np.ndarray:
    if not scores:
        raise ValueError("scores must hold at least one game")
    columns: dict[str, np.ndarray] = {}
    for name, runs in scores.items():
        game = canonical_game(name, key="game")
        if game in columns:
            raise ValueError(f"game '{game}' appears twice in scores (as '{name}' and another)")
        columns[game] = human_normalized_score(game, np.asarray(runs, np.float64).reshape(-1))
    run_counts = {game: len(column) for game, column in columns.items()}
    if len(set(run_counts.values())) != 1 or 0 in run_counts.values():
        raise ValueError(f"every game needs the same number (> 0) of runs, got {run_counts}")
    return np.stack(list(columns.values()), axis=1)


class EpisodeMetrics(torch.nn.Module):
    """Running statistics of finished episodes, built from torchmetrics metrics.

    ``update(returns, lengths)`` adds N episodes; ``compute()`` returns ``return`` (mean),
    ``length`` (mean, in agent steps), ``return_max``, ``episodes`` (count) as 0-dim float32
    tensors and ``returns`` [episodes] float32; with no episodes the means and the max are NaN
    and ``returns`` is empty. ``reset()`` clears everything. As a submodule it follows the
    LightningModule's device.
    """

    def __init__(self) -> None:
        super().__init__()
        self.return_mean = torchmetrics.MeanMetric()
        self.length_mean = torchmetrics.MeanMetric()
        self.return_max = torchmetrics.MaxMetric()
        self.returns = torchmetrics.CatMetric()
        self.episodes = torchmetrics.SumMetric()

    def update(self, returns: ArrayLike | Tensor, lengths: ArrayLike | Tensor) -> None:
        """Add finished episodes: their undiscounted returns and lengths."""
        # returns: [N] float   lengths: [N] int
        device = self.return_mean.device
        returns = torch.as_tensor(returns, dtype=torch.float32, device=device).reshape(-1)
        lengths = torch.as_tensor(lengths, dtype=torch.float32, device=device).reshape(-1)
        assert returns.shape == lengths.shape, f"returns {returns.shape} lengths {lengths.shape}"
        if returns.numel() == 0:
            return
        self.return_mean.update(returns)
        self.length_mean.update(lengths)
        self.return_max.update(returns)
        self.returns.update(returns)
        self.episodes.update(torch.tensor(float(returns.numel()), device=device))

    def compute(self) -> dict[str, Tensor]:
        """Statistics of all episodes since the last reset (see the class docstring)."""
        device = self.return_mean.device
        if not self.episodes.update_called:
            nan = torch.tensor(float("nan"), device=device)
            return {
                "return": nan,
                "length": nan.clone(),
                "return_max": nan.clone(),
                "episodes": torch.tensor(0.0, device=device),
                "returns": torch.zeros(0, device=device),
            }
        return {
            "return": self.return_mean.compute(),
            "length": self.length_mean.compute(),
            "return_max": self.return_max.compute(),
            "episodes": self.episodes.compute(),
            "returns": self.returns.compute().reshape(-1),
        }

    def reset(self) -> None:
        """Forget all episodes."""
        for metric in (
            self.return_mean,
            self.length_mean,
            self.return_max,
            self.returns,
            self.episodes,
        ):
            metric.reset()
