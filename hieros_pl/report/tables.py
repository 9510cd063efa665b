"""The report's tables: per-game scores over seeds, aggregates with stratified-bootstrap CIs
(computed with rliable), the reference methods beside them, and what is missing.

Atari 100k runs are scored in human-normalised score (HNS); other envs in raw return.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import pandas as pd

from hieros_pl.metrics import human_normalized_score, reference_scores
from hieros_pl.report.runs import RunRecord

REFERENCE_METHODS = {
    "simple": "SimPLe",
    "spr": "SPR",
    "twm": "TWM",
    "iris": "IRIS",
    "dreamerv3_v1": "DreamerV3 (v1)",
    "storm": "STORM",
    "diamond": "DIAMOND",
}
"""Per-game columns of ``atari100k_reference.csv`` and their rows in the aggregates table."""
AGGREGATE_NAMES = ("mean", "median", "iqm", "optimality_gap")
T = TypeVar("T")


@dataclass
class Matrix:
    """Final scores of one configuration: [R, G] for the seeds present in every game."""

    configuration: str
    games: list[str]
    seeds: list[int]
    scores: np.ndarray
    normalised: bool
    left_out: list[str]


def normalise(run: RunRecord, score: np.ndarray) -> np.ndarray:
    """HNS for Atari runs, the raw return otherwise."""
    # score: [...] float64 -> [...] float64
    return human_normalized_score(run.game, score) if run.atari else score


def per_game_table(runs: list[RunRecord]) -> pd.DataFrame:
    """One row per (configuration, game): mean and std over seeds of the final score, the seeds
    counted, the mean wall time per run, and for Atari the HNS (mean, std and lowest over seeds)
    beside the random and human reference scores and the reference methods' published ones."""
    finished = [run for run in runs if run.finished]
    rows = []
    references = reference_scores()
    for (configuration, game), group in _group(finished).items():
        scores = np.array([run.score for run in group], dtype=np.float64)
        row = {
            "configuration": configuration,
            "game": game,
            "seeds": len(group),
            "score_mean": scores.mean(),
            "score_std": scores.std(ddof=1) if len(scores) > 1 else float("nan"),
            "protocol": _one_protocol(group),
            "train_hours_mean": float(np.mean([run.train_seconds for run in group])) / 3600,
            "eval_minutes_mean": _mean_eval_minutes(group),
        }
        if group[0].atari:
            hns = normalise(group[0], scores)
            row["hns_mean"] = float(np.mean(hns))
            row["hns_std"] = float(np.std(hns, ddof=1)) if len(hns) > 1 else float("nan")
            row["hns_min"] = float(np.min(hns))
            row |= {"random": references[game]["random"], "human": references[game]["human"]}
            row |= {name: references[game][column] for column, name in REFERENCE_METHODS.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_eval_minutes(group: list[RunRecord]) -> float:
    """Mean final-evaluation wall time of the runs that recorded one; NaN if none did."""
    seconds = [run.eval_seconds for run in group if run.eval_seconds is not None]
    return float(np.mean(seconds)) / 60 if seconds else float("nan")


def _group(runs: list[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in sorted(runs, key=lambda run: (run.configuration, run.game, run.seed)):
        groups.setdefault((run.configuration, run.game), []).append(run)
    return groups


def _one_protocol(group: list[RunRecord]) -> str:
    protocols = sorted({run.protocol for run in group})
    return protocols[0] if len(protocols) == 1 else " | ".join(protocols)


def score_matrices(runs: list[RunRecord]) -> list[Matrix]:
    """Per configuration, the [seeds, games] matrix of final (normalised) scores.

    rliable's stratified bootstrap needs the same runs in every game, so a configuration uses
    the seeds that finished in all of its games; every run this leaves out is named in
    ``left_out`` (and in the report), never dropped silently.
    """
    matrices = []
    finished = [run for run in runs if run.finished]
    for configuration in sorted({run.configuration for run in finished}):
        chosen = [run for run in finished if run.configuration == configuration]
        games = sorted({run.game for run in chosen})
        seeds_per_game = [{run.seed for run in chosen if run.game == game} for game in games]
        seeds = sorted(set.intersection(*seeds_per_game))
        by_key = {(run.game, run.seed): run for run in chosen}
        scores = np.array(
            [
                [
                    normalise(by_key[game, seed], np.array(by_key[game, seed].score))
                    for game in games
                ]
                for seed in seeds
            ],
            dtype=np.float64,
        ).reshape(len(seeds), len(games))
        left_out = [
            f"{run.path} (seed {run.seed} did not finish every game of {configuration})"
            for run in chosen
            if run.seed not in seeds
        ]
        atari = chosen[0].atari
        matrices.append(Matrix(configuration, games, seeds, scores, atari, left_out))
    return matrices


def aggregate_functions() -> dict[str, Callable[[np.ndarray], float]]:
    """rliable's aggregate metrics over a [runs, games] matrix, by name."""
    from rliable import metrics

    return {
        "mean": metrics.aggregate_mean,
        "median": metrics.aggregate_median,
        "iqm": metrics.aggregate_iqm,
        "optimality_gap": metrics.aggregate_optimality_gap,
    }


def with_global_seed(seed: int, function: Callable[[], T]) -> T:
    """Run ``function`` with numpy's global RNG seeded, then restore it: rliable's stratified
    bootstrap draws from the global RNG whatever ``random_state`` says."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return function()
    finally:
        np.random.set_state(state)


def aggregate_table(matrices: list[Matrix], reps: int, seed: int = 0) -> pd.DataFrame:
    """Per configuration: mean, median, IQM and optimality gap (γ = 1) of the final scores with
    95 % stratified-bootstrap CIs over ``reps`` resamples (rliable), and the shipped reference
    aggregates beside them when the sweep is Atari."""
    from rliable import library

    functions = aggregate_functions()

    def all_aggregates(matrix: np.ndarray) -> np.ndarray:
        return np.array([function(matrix) for function in functions.values()])

    rows = []
    for matrix in matrices:
        if not len(matrix.seeds):
            continue
        estimate = partial(
            library.get_interval_estimates, {"run": matrix.scores}, all_aggregates, reps=reps
        )
        points, intervals = with_global_seed(seed, estimate)
        row: dict[str, object] = {
            "configuration": matrix.configuration,
            "unit": "HNS" if matrix.normalised else "raw return",
            "games": len(matrix.games),
            "seeds": len(matrix.seeds),
        }
        for index, name in enumerate(functions):
            row[name] = float(points["run"][index])
            row[f"{name}_ci_low"] = float(intervals["run"][0, index])
            row[f"{name}_ci_high"] = float(intervals["run"][1, index])
        row["protocol"] = "final greedy evaluation per run (see per-game table); 95 % CIs"
        rows.append(row)
    table = pd.DataFrame(rows)
    if matrices and all(matrix.normalised for matrix in matrices):
        table = pd.concat([table, reference_aggregate_rows()], ignore_index=True)
    return table


def shipped_aggregates() -> pd.DataFrame:
    """``resources/atari100k_aggregates.csv``: published aggregates of the reference methods."""
    resource = importlib.resources.files("hieros_pl").joinpath("resources/atari100k_aggregates.csv")
    rows = list(csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8"))))
    table = pd.DataFrame(rows)
    for column in ("mean_hns", "median_hns", "iqm_hns"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def reference_aggregate_rows() -> pd.DataFrame:
    """The shipped reference aggregates as rows of the aggregates table."""
    shipped = shipped_aggregates()
    return pd.DataFrame(
        {
            "configuration": "reference: " + shipped["method"],
            "unit": "HNS",
            "games": 26,
            "mean": shipped["mean_hns"],
            "median": shipped["median_hns"],
            "iqm": shipped["iqm_hns"],
            "protocol": "published: " + shipped["source_note"],
        }
    )


def reference_game_means() -> pd.DataFrame:
    """Per-game HNS [26 games, methods] of the shipped per-game mean scores."""
    references = reference_scores()
    return pd.DataFrame(
        {
            name: [human_normalized_score(game, references[game][column]) for game in references]
            for column, name in REFERENCE_METHODS.items()
        },
        index=list(references),
    )


def missing_table(runs: list[RunRecord]) -> pd.DataFrame:
    """Runs that did not finish, and (configuration, game, seed) cells absent from the sweep
    although the sweep has that game and that seed elsewhere."""
    rows = [
        {
            "configuration": run.configuration,
            "game": run.game,
            "seed": run.seed,
            "problem": f"did not finish: {run.env_steps}/{run.budget} env steps, {run.protocol}",
            "path": str(run.path),
        }
        for run in runs
        if not run.finished
    ]
    present = {(run.configuration, run.game, run.seed) for run in runs}
    configurations = sorted({run.configuration for run in runs})
    games = sorted({run.game for run in runs})
    seeds = sorted({run.seed for run in runs})
    for configuration in configurations:
        for game in games:
            for seed in seeds:
                if (configuration, game, seed) not in present:
                    rows.append(
                        {
                            "configuration": configuration,
                            "game": game,
                            "seed": seed,
                            "problem": "missing: no run dir",
                            "path": "",
                        }
                    )
    return pd.DataFrame(rows, columns=["configuration", "game", "seed", "problem", "path"])
