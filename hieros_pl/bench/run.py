"""Whole-run throughput for hieros-bench: env steps per second of a real `atari_cpu` run.

Acting, replay writes, training calls, logging and checkpointing together, through the same
``run`` as ``hieros-train``, for a short budget in a temporary run dir. The figure is the median
of the logged ``perf/env_steps_per_second`` after the first log line (which includes start-up and
the prefill); ``projected_100k_hours`` is the budget of the preset at that rate.
"""

from __future__ import annotations

import contextlib
import csv
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from hieros_pl.train import compose_config, run

STEPS = 2_000
LOG_EVERY = 250
GAME = "krull"


def bench_atari_cpu_run(depth: int, steps: int = STEPS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        cfg = compose_config(
            [
                "experiment=atari_cpu",
                f"env.game={GAME}",
                f"hierarchy=depth{depth}",
                "logger=csv",
                f"env_steps={steps}",
                f"logger.log_every={LOG_EVERY}",
                f"callbacks.checkpoint_every={steps}",
                "callbacks.final_eval=false",
                f"run_dir={directory}",
            ]
        )
        # The run's progress bar writes to stdout, which carries the bench's JSON lines.
        with contextlib.redirect_stdout(sys.stderr):
            run(cfg)
        rates = _logged_rates(Path(directory) / "csv" / "metrics.csv")
    rate = statistics.median(rates[1:]) if len(rates) > 1 else float("nan")
    return {
        "name": f"atari_cpu_run_depth{depth}",
        "value": rate,
        "unit": "env_steps/s",
        "game": GAME,
        "steps": steps,
        "threads": cfg.trainer.threads,
        "projected_100k_hours": 100_000 / rate / 3600,
    }


def _logged_rates(path: Path) -> list[float]:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return [
        float(row["perf/env_steps_per_second"])
        for row in rows
        if row.get("perf/env_steps_per_second")
    ]


def bench_run() -> list[dict[str, Any]]:
    return [bench_atari_cpu_run(1), bench_atari_cpu_run(3)]
