"""Learning checks on a 2-core CPU (slow; `make test-slow`). Figures are reported in the README.

The Atari checks take about an hour per run (README, "Learning check on real Atari games"):
run one game with ``make test-slow ARGS="-k 'atari and krull'"``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hieros_pl.metrics import human_normalized_score
from hieros_pl.train import run
from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[1]
CATCH_TARGET = 0.6
"""Issue #4: experiment=quick lifts catch from the random policy's -0.75 to at least +0.6."""
CARTPOLE_TARGET = 75.0
"""Random CartPole-v1 policy: about 22; measured here: 188.9 (README, Learning checks)."""
ATARI_HNS_TARGET = 0.2
"""Issue #11: experiment=atari_cpu at depth 1, mean final greedy HNS over seeds 0-2, per game."""
ATARI_GAMES = ("assault", "krull", "road_runner")
"""The games of the README's Atari learning check: the one that passed on seed 0 and the two
closest to the bar over the seeds run (every game tried is in the README's table)."""
ATARI_DEPTH3_GAME = "assault"
ATARI_SEEDS = (0, 1, 2)


def _final_greedy_return(run_dir: Path) -> float:
    (path,) = sorted((run_dir / "eval").glob("final_*.json"))
    return float(json.loads(path.read_text())["greedy"]["return_mean"])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_quick_preset_learns_catch(tmp_path: Path, seed: int) -> None:
    cfg = compose("experiment=quick", f"seed={seed}", f"run_dir={tmp_path}", tiny=False)
    run(cfg)
    assert _final_greedy_return(tmp_path) >= CATCH_TARGET


@pytest.mark.slow
def test_quick_preset_learns_cartpole_from_vectors(tmp_path: Path) -> None:
    cfg = compose("experiment=quick_cartpole", f"run_dir={tmp_path}", tiny=False)
    run(cfg)
    assert _final_greedy_return(tmp_path) >= CARTPOLE_TARGET


def _atari_cpu_scores(root: Path, game: str, depth: int) -> list[float]:
    """Final greedy scores of ``experiment=atari_cpu`` on ``game`` for ATARI_SEEDS, each run
    through the ``hieros-train`` command of the README's table (its defaults: 2 threads)."""
    scores = []
    for seed in ATARI_SEEDS:
        run_dir = root / f"{game}_d{depth}_s{seed}"
        command = [sys.executable, "-m", "hieros_pl.train", "experiment=atari_cpu"]
        command += [f"env.game={game}", f"seed={seed}", f"hierarchy=depth{depth}"]
        command += ["callbacks.checkpoint_every=5000", f"run_dir={run_dir}"]
        env = {**os.environ, "WANDB_MODE": "offline"}
        log = root / f"{run_dir.name}.log"
        with log.open("w") as output:
            code = subprocess.run(command, cwd=ROOT, env=env, stdout=output, stderr=output)
        assert code.returncode == 0, log.read_text()[-3000:]
        scores.append(_final_greedy_return(run_dir))
    return scores


def _best_constant_scores(game: str) -> list[float]:
    """Per seed of ATARI_SEEDS: the best constant-action score on the evaluation episodes of
    that seed's final evaluation (``hieros-baseline``, 100 episodes)."""
    from hieros_pl.baselines import score_baselines

    best = []
    for seed in ATARI_SEEDS:
        cfg = compose("experiment=atari_cpu", f"env.game={game}", f"seed={seed}", tiny=False)
        summaries = score_baselines(cfg, ["constant"], 100, show_progress=False)
        best.append(max(summary["return_mean"] for summary in summaries))
    return best


@pytest.mark.slow
@pytest.mark.parametrize("game", ATARI_GAMES)
def test_atari_cpu_preset_reaches_a_fifth_of_human_at_depth_1(tmp_path: Path, game: str) -> None:
    """The issue's bar, and a learned policy: the mean greedy score is also above the mean of
    the best constant action's scores on the same evaluation episodes (README: Assault's UP)."""
    scores = _atari_cpu_scores(tmp_path, game, depth=1)
    mean = sum(scores) / len(scores)
    assert float(human_normalized_score(game, mean)) >= ATARI_HNS_TARGET
    constant = _best_constant_scores(game)
    assert mean > sum(constant) / len(constant), (scores, constant)


def _last_logged(run_dir: Path) -> dict[str, float]:
    """The last value logged for every metric of a run (its CSV log)."""
    last: dict[str, float] = {}
    with (run_dir / "csv" / "metrics.csv").open() as file:
        for row in csv.DictReader(file):
            last.update({key: float(value) for key, value in row.items() if value})
    return last


@pytest.mark.slow
def test_atari_cpu_preset_at_depth_3_trains_every_level(tmp_path: Path) -> None:
    """Its score is reported whatever it shows (README); what must hold is that all three levels
    act, train and are evaluated through the protocol: every level's world model and actor were
    updated with finite losses, the upper levels chose codes, and 100 greedy episodes ran."""
    _atari_cpu_scores(tmp_path, ATARI_DEPTH3_GAME, depth=3)
    for seed in ATARI_SEEDS:
        run_dir = tmp_path / f"{ATARI_DEPTH3_GAME}_d3_s{seed}"
        logged = _last_logged(run_dir)
        assert logged["hierarchy/active_levels"] == 3.0
        for level in range(3):
            assert logged[f"updates/level{level}"] > 0, (seed, level)
            for key in (f"level{level}/wm/decoder", f"level{level}/behavior/actor_loss"):
                assert math.isfinite(logged[key]), (seed, key)
        for level in (1, 2):
            assert logged[f"level{level}/subgoal/codes_used"] >= 1, (seed, level)
        (final,) = sorted((run_dir / "eval").glob("final_*.json"))
        greedy = json.loads(final.read_text())["greedy"]
        assert greedy["episodes"] == 100 and math.isfinite(greedy["return_mean"])
