"""Which config differences make runs different configurations in a report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from hieros_pl.report.runs import RunRecord, find_runs, label_configurations, schema_defaults


def _record(seed: int, **config: object) -> RunRecord:
    curve = (np.zeros(0), np.zeros(0))
    return RunRecord(
        Path(f"run{seed}"), dict(config), "Krull", seed, True, 100, 100, 1.0, "", curve
    )


def test_execution_and_logging_settings_do_not_split_a_configuration() -> None:
    # Seeds of one configuration run with 1 or 2 threads, other checkpoint intervals and loggers.
    runs = [
        _record(0, **{"hierarchy.levels": 1, "trainer.threads": 1, "logger.kind": "csv"}),
        _record(1, **{"hierarchy.levels": 1, "trainer.threads": 2, "logger.kind": "wandb"}),
        _record(2, **{"hierarchy.levels": 1, "callbacks.checkpoint_every": 5000}),
        _record(0, **{"hierarchy.levels": 3, "trainer.threads": 2, "logger.video_every": 0}),
    ]
    label_configurations(runs)
    assert [run.configuration for run in runs] == ["hierarchy.levels=1"] * 3 + [
        "hierarchy.levels=3"
    ]


def test_what_is_learned_or_scored_does_split_a_configuration() -> None:
    runs = [
        _record(0, **{"train_ratio": 28, "callbacks.eval_episodes": 100}),
        _record(1, **{"train_ratio": 32, "callbacks.eval_episodes": 100}),
        _record(2, **{"train_ratio": 28, "callbacks.eval_episodes": 10}),
    ]
    label_configurations(runs)
    assert [run.configuration for run in runs] == [
        "callbacks.eval_episodes=100,train_ratio=28",
        "callbacks.eval_episodes=100,train_ratio=32",
        "callbacks.eval_episodes=10,train_ratio=28",
    ]


def test_a_run_that_predates_a_key_ran_with_its_default(tmp_path: Path) -> None:
    # Runs written before world_model.reward_bins existed belong with runs at its default.
    assert schema_defaults()["world_model.reward_bins"] == "symlog"
    recorded = {
        "old": {},
        "new": {"world_model": {"reward_bins": "symlog"}},
        "changed": {"world_model": {"reward_bins": "symexp"}},
    }
    for seed, (name, extra) in enumerate(recorded.items()):
        (tmp_path / name).mkdir()
        config = {"seed": seed, "env_steps": 100, "env": {"kind": "catch"}, **extra}
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump(config))
    runs = {run.path.name: run.configuration for run in find_runs(tmp_path)}
    assert runs == {
        "old": "world_model.reward_bins=symlog",
        "new": "world_model.reward_bins=symlog",
        "changed": "world_model.reward_bins=symexp",
    }
