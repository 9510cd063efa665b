"""The report's figures: learning curves per game, the aggregate IQM curve and the performance
profile, each with 95 % stratified-bootstrap CIs from rliable, saved as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hieros_pl.report.runs import RunRecord
from hieros_pl.report.tables import Matrix, normalise, with_global_seed

CURVE_POINTS = 40


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display
    import matplotlib.pyplot as plt

    return plt


def curves_on_grid(
    runs: list[RunRecord], normalised: bool
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """Curves of runs of one configuration on a shared env-step grid.

    -> steps [P], values [R, G, P] (R = seeds present in every game, HNS for Atari when
    ``normalised``), games; None when a game has no run with a curve. The grid ends at the
    shortest curve, so every point averages the same runs.
    """
    with_curve = [run for run in runs if len(run.curve[0]) > 0]
    games = sorted({run.game for run in with_curve})
    if not games:
        return None
    seeds = sorted(
        set.intersection(*[{run.seed for run in with_curve if run.game == game} for game in games])
    )
    if not seeds:
        return None
    by_key = {(run.game, run.seed): run for run in with_curve}
    start = max(by_key[game, seed].curve[0][0] for game in games for seed in seeds)
    end = min(by_key[game, seed].curve[0][-1] for game in games for seed in seeds)
    steps = np.linspace(start, end, CURVE_POINTS) if end > start else np.array([end])
    values = np.zeros((len(seeds), len(games), len(steps)))
    for i, seed in enumerate(seeds):
        for j, game in enumerate(games):
            run = by_key[game, seed]
            curve = np.interp(steps, *run.curve)
            values[i, j] = normalise(run, curve) if normalised else curve
    return steps, values, games


def interval_curves(
    values: np.ndarray, statistic: str, reps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Point estimate [P] and 95 % CI [2, P] of ``statistic`` (mean | iqm) at each grid point."""
    from rliable import library, metrics

    aggregate = metrics.aggregate_iqm if statistic == "iqm" else metrics.aggregate_mean

    def per_point(scores: np.ndarray) -> np.ndarray:
        # scores: [R, G, P] -> [P]
        return np.array([aggregate(scores[..., point]) for point in range(scores.shape[-1])])

    points, intervals = with_global_seed(
        seed, lambda: library.get_interval_estimates({"run": values}, per_point, reps=reps)
    )
    return points["run"], intervals["run"]


def plot_learning_curves(runs: list[RunRecord], out: Path, reps: int, seed: int = 0) -> list[Path]:
    """One PNG per game: every configuration's mean training return over seeds with its CI
    band against env steps; plus ``aggregate_iqm.png`` (IQM over games, HNS) for Atari."""
    plt = _pyplot()
    configurations = sorted({run.configuration for run in runs})
    games = sorted({run.game for run in runs})
    paths = []
    for game in games:
        figure, axis = plt.subplots(figsize=(6, 3.5))
        for configuration in configurations:
            chosen = [r for r in runs if r.configuration == configuration and r.game == game]
            grid = curves_on_grid(chosen, normalised=False)
            if grid is None:
                continue
            steps, values, _ = grid
            mean, band = interval_curves(values, "mean", reps, seed)
            label = f"{configuration} ({values.shape[0]} seeds)"
            (line,) = axis.plot(steps, mean, label=label)
            axis.fill_between(steps, band[0], band[1], alpha=0.2)
            _mark_final_scores(axis, chosen, line.get_color())
        if any(run.atari for run in runs if run.game == game):
            _reference_lines(axis, game)
        ylabel = "training episode return\n(x: final greedy score, dot: mean)"
        axis.set(xlabel="env steps", ylabel=ylabel, title=game)
        axis.legend(fontsize=7)
        paths.append(_save(figure, out / f"curve_{_file_name(game)}.png"))
    if runs and all(run.atari for run in runs):
        paths.append(plot_aggregate_iqm(runs, configurations, out, reps, seed))
    return paths


def _mark_final_scores(axis: Any, runs: list[RunRecord], color: str) -> None:
    """The final greedy scores of ``runs`` as crosses at the env step they were evaluated at,
    their mean as a filled dot."""
    finished = [run for run in runs if run.score is not None]
    if not finished:
        return
    steps = [run.env_steps for run in finished]
    scores = [float(run.score) for run in finished if run.score is not None]
    axis.scatter(steps, scores, marker="x", color=color, s=18, linewidths=1)
    axis.scatter([max(steps)], [np.mean(scores)], marker="o", color=color, s=30, zorder=3)


def _reference_lines(axis: Any, game: str) -> None:
    """Random and DreamerV3 (100k) scores of ``game`` from the shipped reference table."""
    from hieros_pl.metrics import reference_scores

    reference = reference_scores()[game]
    axis.axhline(reference["random"], color="grey", linestyle=":", label="random")
    axis.axhline(reference["dreamerv3_v1"], color="black", linestyle="--", label="DreamerV3 (v1)")


def plot_aggregate_iqm(
    runs: list[RunRecord], configurations: list[str], out: Path, reps: int, seed: int
) -> Path:
    """IQM of the training-episode HNS over games and seeds against env steps, with CIs."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for configuration in configurations:
        grid = curves_on_grid([r for r in runs if r.configuration == configuration], True)
        if grid is None:
            continue
        steps, values, games = grid
        iqm, band = interval_curves(values, "iqm", reps, seed)
        axis.plot(steps, iqm, label=f"{configuration} ({len(games)} games)")
        axis.fill_between(steps, band[0], band[1], alpha=0.2)
    axis.set(xlabel="env steps", ylabel="IQM human-normalised score", title="aggregate IQM")
    axis.legend(fontsize=7)
    return _save(figure, out / "aggregate_iqm.png")


def plot_performance_profile(matrices: list[Matrix], out: Path, reps: int, seed: int) -> Path:
    """Fraction of runs with final score > τ, per configuration, with 95 % CIs (rliable)."""
    from rliable import library

    plt = _pyplot()
    usable = [matrix for matrix in matrices if matrix.scores.size]
    scores = {matrix.configuration: matrix.scores for matrix in usable}
    values = np.concatenate([matrix.scores.reshape(-1) for matrix in usable] or [np.zeros(1)])
    low, high = float(values.min()), float(values.max())
    taus = np.linspace(min(low, 0.0), max(high, low + 1e-6), 101)
    profiles, intervals = with_global_seed(
        seed, lambda: library.create_performance_profile(scores, taus, reps=reps)
    )
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for configuration, profile in profiles.items():
        axis.plot(taus, profile, label=configuration)
        axis.fill_between(taus, *intervals[configuration], alpha=0.2)
    unit = "HNS" if usable and usable[0].normalised else "final return"
    axis.set(xlabel=f"{unit} τ", ylabel="fraction of runs with score > τ")
    axis.set_title("performance profile")
    axis.legend(fontsize=7)
    return _save(figure, out / "performance_profile.png")


def _file_name(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in text)


def _save(figure: object, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(figure)
    return path
