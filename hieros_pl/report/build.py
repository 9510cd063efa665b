"""Builds the report of a sweep dir: CSV tables, PNG figures and ``report.md``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hieros_pl.metrics import human_normalized_score
from hieros_pl.report.plots import plot_learning_curves, plot_performance_profile
from hieros_pl.report.runs import CURVE_KEY, LATE_DIAGNOSTICS, RunRecord, find_runs
from hieros_pl.report.tables import (
    aggregate_table,
    missing_table,
    per_game_table,
    score_matrices,
)


@dataclass
class Report:
    """What :func:`make_report` found and wrote (tables as DataFrames, file paths)."""

    runs: list[RunRecord]
    per_game: pd.DataFrame
    aggregates: pd.DataFrame
    missing: pd.DataFrame
    figures: list[Path]
    markdown: Path

    @property
    def configurations(self) -> list[str]:
        return sorted({run.configuration for run in self.runs})


def make_report(
    sweep_dir: str | Path, out: str | Path | None = None, reps: int = 2000, seed: int = 0
) -> Report:
    """Find every run under ``sweep_dir``, group them by (configuration, game, seed) and write
    ``per_game.csv``, ``aggregates.csv``, ``runs.csv``, ``missing.csv``, the figures and
    ``report.md`` into ``out`` (default ``<sweep_dir>/report``). ``reps`` bootstrap resamples
    per CI, drawn from ``seed``."""
    runs = find_runs(sweep_dir)
    if not runs:
        raise FileNotFoundError(f"no run dirs (with config.yaml) under {sweep_dir}")
    directory = Path(out) if out is not None else Path(sweep_dir) / "report"
    directory.mkdir(parents=True, exist_ok=True)
    matrices = score_matrices(runs)
    per_game = per_game_table(runs)
    aggregates = aggregate_table(matrices, reps, seed)
    missing = missing_table(runs)
    left_out = [line for matrix in matrices for line in matrix.left_out]
    figures = plot_learning_curves(runs, directory / "figures", reps, seed)
    if any(matrix.scores.size for matrix in matrices):
        figures.append(plot_performance_profile(matrices, directory / "figures", reps, seed))
    per_game.to_csv(directory / "per_game.csv", index=False)
    aggregates.to_csv(directory / "aggregates.csv", index=False)
    missing.to_csv(directory / "missing.csv", index=False)
    runs_table(runs).to_csv(directory / "runs.csv", index=False)
    markdown = directory / "report.md"
    text = render_markdown(sweep_dir, runs, per_game, aggregates, missing, left_out, figures)
    markdown.write_text(text, encoding="utf-8")
    return Report(runs, per_game, aggregates, missing, figures, markdown)


def runs_table(runs: list[RunRecord]) -> pd.DataFrame:
    """One row per run dir: its configuration, game, seed, progress, final score (greedy), the
    sampled score, how wide the greedy policy was (entropy / log A) and the late-training
    diagnostics (``LATE_DIAGNOSTICS``)."""
    return pd.DataFrame(
        [
            {
                "configuration": run.configuration,
                "game": run.game,
                "seed": run.seed,
                "env_steps": run.env_steps,
                "budget": run.budget,
                "final_score": run.score,
                "hns": _run_hns(run),
                "sampled_score": run.sampled_score,
                "greedy_entropy_fraction": run.greedy_entropy_fraction,
                **{column: run.late.get(column) for column in LATE_DIAGNOSTICS},
                "train_hours": run.train_seconds / 3600,
                "eval_minutes": None if run.eval_seconds is None else run.eval_seconds / 60,
                "protocol": run.protocol,
                "path": str(run.path),
            }
            for run in runs
        ]
    )


def _run_hns(run: RunRecord) -> float | None:
    """A finished Atari run's final score as HNS; None otherwise."""
    if not run.atari or run.score is None:
        return None
    return float(human_normalized_score(run.game, run.score))


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub Markdown table; floats with 3 decimals, NaN as an empty cell."""
    if table.empty:
        return "(none)\n"

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.3f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, table.columns)) + " |"]
    lines.append("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(value) for value in row) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(
    sweep_dir: str | Path,
    runs: list[RunRecord],
    per_game: pd.DataFrame,
    aggregates: pd.DataFrame,
    missing: pd.DataFrame,
    left_out: list[str],
    figures: list[Path],
) -> str:
    """The Markdown report; every number sits beside the protocol it was measured under."""
    finished = sum(run.finished for run in runs)
    seeds = sorted({run.seed for run in runs})
    unit = "human-normalised score (HNS)" if runs[0].atari else "raw return"
    parts = [
        f"# Report of {sweep_dir}\n",
        f"{len(runs)} runs ({finished} finished) in {len(per_game.get('configuration', []))} "
        f"(configuration, game) cells; configurations: "
        f"{', '.join(sorted({run.configuration for run in runs}))}; seeds: {seeds}.\n",
        "Final score = the greedy mean return of each run's final evaluation (protocol column). "
        f"Aggregates are over {unit}, with 95 % stratified-bootstrap confidence intervals "
        "(rliable); optimality gap with γ = 1.\n",
        "## Per game\n",
        markdown_table(per_game),
        "## Aggregates\n",
        markdown_table(aggregates),
        "## Runs left out or missing\n",
        markdown_table(missing),
        "## Runs\n",
        "Wall time: `train_hours` is the training loop's time summed over its logged intervals "
        "(every resumed segment once; start-up and evaluations excluded), `eval_minutes` the "
        "final evaluation's (greedy + sampled; empty where the run did not record it).\n",
        markdown_table(runs_table(runs)),
    ]
    if left_out:
        parts.append("Left out of the aggregates (rliable needs the same seeds in every game):\n")
        parts.extend(f"- {line}\n" for line in left_out)
    parts.append(
        f"## Figures\n\nLearning curves: `{CURVE_KEY}` (mean return of the training episodes "
        "finished in each log interval), mean over seeds with a 95 % bootstrap CI band.\n"
    )
    parts.extend(f"![{path.stem}](figures/{path.name})\n" for path in figures)
    return "\n".join(parts)
