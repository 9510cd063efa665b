"""Which config differences make runs different configurations in a report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hieros_pl.report.runs import RunRecord, label_configurations, with_schema_defaults


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


def test_a_run_that_predates_a_key_ran_with_its_default() -> None:
    # Runs written before world_model.reward_bins existed belong with runs at its default.
    old = with_schema_defaults({"world_model.dynamics": "s5wm"})
    assert old["world_model.reward_bins"] == "symlog" and old["behavior.value_bins"] == "symlog"
    new = with_schema_defaults({"world_model.reward_bins": "symlog"})
    changed = with_schema_defaults({"world_model.reward_bins": "symexp"})
    configs = [{k: v for k, v in c.items() if k != "seed"} for c in (old, new, changed)]
    runs = [_record(seed, **config) for seed, config in enumerate(configs)]
    label_configurations(runs)
    assert [run.configuration for run in runs] == [
        "world_model.reward_bins=symlog",
        "world_model.reward_bins=symlog",
        "world_model.reward_bins=symexp",
    ]
