"""The hierarchy depth experiment (README, "Hierarchy depth experiment"; slow: minutes per run).

Runs seed 0 of depth 1 and depth 3 of sweeps/hierarchy_depth.yaml exactly as the sweep does and
checks what the README reports from them: a final greedy and sampled evaluation of every run,
and at depth 3 the subgoal diagnostics at the end of training. The outcome itself (which depth
wins) is measured and reported, not asserted.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hieros_pl.hierarchy.depth_experiment import diagnostics_table, group_runs, table

ROOT = Path(__file__).resolve().parents[1]


def _sweep_job(run_dir: Path, depth: int, seed: int) -> None:
    command = [sys.executable, "-m", "hieros_pl.train", "--config-dir", str(ROOT / "sweeps")]
    command += ["--config-name", "hierarchy_depth", f"hierarchy=depth{depth}", f"seed={seed}"]
    command += [f"run_dir={run_dir}", "trainer.threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run(command, check=True, cwd=ROOT, env=env, capture_output=True)


@pytest.mark.slow
def test_depth_1_and_3_runs_report_evaluations_and_depth_3_diagnostics(tmp_path: Path) -> None:
    for depth in (1, 3):
        _sweep_job(tmp_path / f"depth{depth}_s0", depth, seed=0)
    runs = group_runs(tmp_path)
    assert sorted(runs) == ["depth1", "depth3"]
    for (seed_run,) in runs.values():
        assert 0.0 <= seed_run.greedy <= 1.0 and 0.0 <= seed_run.sample <= 1.0
        assert seed_run.train_episodes >= 12000 // 576  # truncated at 576 steps at the latest
    diagnostics = runs["depth3"][0].diagnostics
    for level in (1, 2):
        assert 0.0 <= diagnostics[f"level{level}/subgoal/code_entropy"] <= math.log(8)
        assert diagnostics[f"level{level}/subgoal/codes_used"] >= 1
    for level in (0, 1):
        assert 0.0 <= diagnostics[f"level{level}/subgoal/reach_rate"] <= 1.0
    assert "| depth3 | 0 |" in table(runs)
    rows = diagnostics_table(runs).splitlines()
    depth1 = next(row for row in rows if row.startswith("| depth1 |"))
    assert depth1.count("—") == len(rows[0].split("|")) - 4  # only the actor entropy is set


def _fake_run(root: Path, name: str, greedy: float, scores: list[float]) -> None:
    run_dir = root / name
    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "csv").mkdir()
    (run_dir / "config.yaml").write_text("seed: 0\n")
    evaluation = {mode: {"return_mean": greedy} for mode in ("greedy", "sample")}
    (run_dir / "eval" / "final_100.json").write_text(json.dumps(evaluation))
    rows = ["step,env_steps,episodes/return,episode/score,level1/subgoal/codes_used"]
    rows += [f"{10 * i},,,{score}," for i, score in enumerate(scores)]
    rows += ["100,100.0,0.5,,7.0"]
    (run_dir / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")


def test_table_groups_seeds_and_counts_successful_training_episodes(tmp_path: Path) -> None:
    _fake_run(tmp_path, "deep_s0", 1.0, [0.0, 1.0, 1.0])
    _fake_run(tmp_path, "deep_s1", 0.0, [0.0])
    (tmp_path / "unfinished_s0").mkdir()
    runs = group_runs(tmp_path)
    assert list(runs) == ["deep"] and [run.seed for run in runs["deep"]] == [0, 1]
    row = table(runs).splitlines()[2]
    assert row.startswith("| deep | 0,1 | 0.50 ± 0.50 | 0.50 ± 0.50 | 2 / 4 |")
    assert "| deep | — | — | — | 7.00 |" in diagnostics_table(runs)
