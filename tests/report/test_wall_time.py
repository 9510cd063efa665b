"""A real run's wall time as the report reads it back: the training loop's time summed from the
logged throughput, and the final evaluation's own seconds; and its late-training diagnostics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from hieros_pl.report import make_report
from hieros_pl.report.runs import LATE_DIAGNOSTICS
from hieros_pl.train import run
from tests.conftest import compose


def test_report_reads_training_and_final_evaluation_time_of_a_real_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "sweep" / "catch_s0"
    overrides = ("debug=fast", "hierarchy=depth1", "env_steps=160", "logger.log_every=40")
    final = ("callbacks.final_eval=true", "callbacks.eval_episodes=2")
    started = time.perf_counter()
    run(compose(*overrides, *final, f"run_dir={run_dir}"))
    wall = time.perf_counter() - started
    (summary,) = (run_dir / "eval").glob("final_*.json")
    parts = json.loads(summary.read_text())
    seconds = {mode: part["seconds"] for mode, part in parts.items()}
    assert sorted(seconds) == ["greedy", "sample"] and all(s > 0 for s in seconds.values())
    for part in parts.values():  # level 0's policy over exactly the counted episode steps
        assert part["policy"]["steps"] == part["length_mean"] * part["episodes"]
    report = make_report(tmp_path / "sweep", tmp_path / "out", reps=20)
    (record,) = report.runs
    assert record.eval_seconds == sum(seconds.values())
    assert 0 < record.train_seconds < wall - record.eval_seconds
    intervals = pd.read_csv(run_dir / "csv" / "metrics.csv")["perf/interval_seconds"]
    assert intervals.count() >= 4 and record.train_seconds == intervals.sum()
    # the late-training diagnostics name metrics a real run logs
    assert sorted(record.late) == sorted(LATE_DIAGNOSTICS)
    assert all(value is not None and value == value for value in record.late.values())
    row = report.per_game.iloc[0]
    assert row["train_hours_mean"] == record.train_seconds / 3600
