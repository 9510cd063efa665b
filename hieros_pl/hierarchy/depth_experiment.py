"""Summary table and learning curves of the hierarchy depth experiment (README).

``python -m hieros_pl.hierarchy.depth_experiment <root> [--figure FILE.png]``
reads every run dir ``<root>/<config>_s<seed>`` with a final evaluation, groups the seeds of each
configuration, prints one markdown row per configuration and plots the cumulative number of
training episodes that reached the goal (and, for configurations with subgoals, the level-0 goal
cosine against its baseline) against env steps, means over seeds. Navigation pays +1 on reaching
the goal and nothing else, so a mean return is a success rate.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

RUN_NAME = re.compile(r"^(?P<config>.+)_s(?P<seed>\d+)$")
DIAGNOSTICS = (
    "level0/behavior/actor_entropy",
    "level0/reward/subgoal",
    "level1/subgoal/code_entropy",
    "level1/subgoal/codes_used",
    "level2/subgoal/code_entropy",
    "level2/subgoal/codes_used",
    "level0/subgoal/reach_rate",
    "level0/subgoal/cosine",
    "level0/subgoal/cosine_baseline",
    "level1/subgoal/reach_rate",
    "level1/subgoal/cosine",
    "level1/subgoal/cosine_baseline",
)


@dataclass
class SeedRun:
    """One finished run: final evaluation, training episodes and the last logged diagnostics."""

    config: str
    seed: int
    greedy: float
    sample: float
    train_successes: int
    train_episodes: int
    minutes: float
    metrics: pd.DataFrame
    success_steps: np.ndarray
    """Env steps at which training episodes reached the goal."""
    diagnostics: dict[str, float]


def load_seed_run(run_dir: Path) -> SeedRun | None:
    """The run in ``run_dir`` if its name is ``<config>_s<seed>`` and it has a final evaluation."""
    match = RUN_NAME.match(run_dir.name)
    evaluations = sorted((run_dir / "eval").glob("final_*.json"))
    if match is None or not evaluations:
        return None
    evaluation = json.loads(evaluations[-1].read_text())
    metrics = pd.read_csv(run_dir / "csv" / "metrics.csv").sort_values("step")
    episodes = metrics["episode/score"].dropna()
    success_steps = metrics.loc[episodes.index[episodes > 0], "step"].to_numpy()
    summaries = metrics.dropna(subset=["env_steps"])
    last = summaries.iloc[-1]
    diagnostics = {
        key: float(last[key]) for key in DIAGNOSTICS if key in last and last[key] == last[key]
    }
    seconds = evaluations[-1].stat().st_mtime - (run_dir / "config.yaml").stat().st_mtime
    return SeedRun(
        config=match["config"],
        seed=int(match["seed"]),
        greedy=float(evaluation["greedy"]["return_mean"]),
        sample=float(evaluation["sample"]["return_mean"]),
        train_successes=int((episodes > 0).sum()),
        train_episodes=len(episodes),
        minutes=seconds / 60.0,
        metrics=summaries,
        success_steps=success_steps,
        diagnostics=diagnostics,
    )


def group_runs(root: Path) -> dict[str, list[SeedRun]]:
    """Finished runs under ``root`` by configuration, seeds in order."""
    runs: dict[str, list[SeedRun]] = {}
    for run_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        seed_run = load_seed_run(run_dir)
        if seed_run is not None:
            runs.setdefault(seed_run.config, []).append(seed_run)
    return {config: sorted(seeds, key=lambda run: run.seed) for config, seeds in runs.items()}


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def table(runs: dict[str, list[SeedRun]]) -> str:
    """Markdown rows: configuration, seeds, greedy and sampled success, training successes, time."""
    lines = [
        "| configuration | seeds | greedy success (mean ± std) | sampled success | "
        "training episodes reaching the goal | wall time per run |",
        "|---|---|---|---|---|---|",
    ]
    for config, seeds in runs.items():
        successes = sum(run.train_successes for run in seeds)
        episodes = sum(run.train_episodes for run in seeds)
        minutes = [run.minutes for run in seeds]
        lines.append(
            f"| {config} | {','.join(str(run.seed) for run in seeds)} | "
            f"{_mean_std([run.greedy for run in seeds])} | "
            f"{_mean_std([run.sample for run in seeds])} | {successes} / {episodes} | "
            f"{min(minutes):.1f}-{max(minutes):.1f} min |"
        )
    return "\n".join(lines)


def diagnostics_table(runs: dict[str, list[SeedRun]]) -> str:
    """Markdown rows of the last logged subgoal diagnostics, mean over seeds, per configuration."""
    lines = ["| configuration | " + " | ".join(f"`{key}`" for key in DIAGNOSTICS) + " |"]
    lines.append("|---" * (len(DIAGNOSTICS) + 1) + "|")
    for config, seeds in runs.items():
        cells = []
        for key in DIAGNOSTICS:
            values = [run.diagnostics[key] for run in seeds if key in run.diagnostics]
            cells.append(f"{np.mean(values):.2f}" if values else "—")
        if any(cell != "—" for cell in cells):
            lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs: dict[str, list[SeedRun]], path: Path) -> None:
    """Cumulative training goal reaches and level-0 goal cosine vs its baseline, per config."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (returns_axis, cosine_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for index, (config, seeds) in enumerate(runs.items()):
        colour = f"C{index}"
        steps = np.linspace(0, max(run.metrics["env_steps"].max() for run in seeds), 49)
        reached = [np.searchsorted(np.sort(run.success_steps), steps, "right") for run in seeds]
        label = f"{config} ({len(seeds)} seeds)"
        returns_axis.plot(steps, np.mean(reached, 0), color=colour, label=label)
        cosine_key, baseline_key = "level0/subgoal/cosine", "level0/subgoal/cosine_baseline"
        if cosine_key in seeds[0].metrics:
            for key, style in ((cosine_key, "-"), (baseline_key, ":")):
                series = [run.metrics.set_index("env_steps")[key] for run in seeds]
                values = pd.concat(series, axis=1).mean(axis=1)
                label = f"{config} {'goal' if key == cosine_key else 'baseline'}"
                cosine_axis.plot(values.index, values.values, style, color=colour, label=label)
    returns_axis.set(xlabel="env steps", ylabel="training episodes that reached the goal")
    returns_axis.set_title("cumulative goal reaches in training, mean over seeds")
    cosine_axis.set(xlabel="env steps", ylabel="cosine")
    cosine_axis.set_title("level 0: cos(symlog h, goal) vs unrelated state")
    returns_axis.legend(fontsize=7)
    cosine_axis.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path, help="directory holding <config>_s<seed> run dirs")
    parser.add_argument("--figure", type=Path, help="write the learning curves to this PNG")
    args = parser.parse_args(argv)
    runs = group_runs(args.root)
    if not runs:
        raise SystemExit(f"no finished <config>_s<seed> run dirs under {args.root}")
    print(table(runs))
    print()
    print(diagnostics_table(runs))
    if args.figure is not None:
        plot(runs, args.figure)


if __name__ == "__main__":
    main()
