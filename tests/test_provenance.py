"""provenance.json: code version, config diff, identity; wandb's name, group, job type, tags."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from lightning.pytorch.loggers import WandbLogger

from hieros_pl import provenance
from hieros_pl.builders import build_loggers
from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[1]


def test_record_holds_the_checkout_commit_dirty_flag_and_the_diff_against_the_paper_preset(
    tmp_path: Path,
) -> None:
    cfg = compose("replay=uniform", f"run_dir={tmp_path}")
    identity = provenance.run_identity(cfg)
    record = provenance.collect(cfg, provenance.paper_preset(), identity)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert record["code"]["commit"] == head
    assert isinstance(record["code"]["dirty"], bool)
    assert "replay.sampler: 'etbs' -> 'uniform'" in record["config_diff_vs_paper_preset"]
    assert record["config"]["replay"]["sampler"] == "uniform"
    assert set(record["packages"]) == set(provenance.PACKAGES)
    assert record["packages"]["torch"].startswith("2.")
    assert record["machine"]["cpu_count"] >= 1
    # Outside a Hydra app: no sweep, the experiment name as group, no tags.
    assert record["sweep"] == {"dir": None, "job_num": None}
    assert (identity.group, identity.tags) == (cfg.name, [])


def test_slurm_ids_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert provenance.slurm_ids() is None
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    assert provenance.slurm_ids() == {"job_id": "4242", "array_task_id": "7"}


def test_a_resume_appends_its_record_and_keeps_the_first(tmp_path: Path) -> None:
    provenance.write(tmp_path, {"code": {"commit": "a"}, "config": {"seed": 0}})
    provenance.write(tmp_path, {"code": {"commit": "b"}, "config": {"seed": 0}})
    record = json.loads((tmp_path / "provenance.json").read_text())
    assert record["code"]["commit"] == "a"
    assert [entry["code"]["commit"] for entry in record["resumed"]] == ["b"]


def test_ablation_is_the_swept_overrides_other_than_game_and_seed() -> None:
    overrides = ["env.game=krull", "seed=42", "reward=no_novelty", "logger.log_every=10"]
    swept = {"env.game", "seed", "reward"}
    assert provenance.ablation_of(overrides, swept) == "reward=no_novelty"
    assert provenance.ablation_of(overrides, set()) == "logger.log_every=10,reward=no_novelty"
    assert provenance.ablation_of(["seed=1"], {"seed"}) == "default"
    assert provenance.choice_tags(
        {"hierarchy": "depth3", "hydra/launcher": "basic", "debug": None}
    ) == ["hierarchy:depth3"]


def test_wandb_logger_gets_group_job_type_tags_name_and_provenance(tmp_path: Path) -> None:
    cfg = compose("logger=default", "logger.wandb_mode=offline", f"run_dir={tmp_path}")
    identity = provenance.RunIdentity(
        group="ablation_reward",
        job_type="reward=no_novelty",
        name="ablation_reward-3-x-seed42",
        tags=["reward:no_novelty", "world_model:s5wm"],
    )
    record = {"code": {"commit": "abc"}, "config": {}}
    loggers = build_loggers(cfg, tmp_path, identity, record)
    (wandb_logger,) = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    init = wandb_logger._wandb_init
    assert init["group"] == "ablation_reward" and init["job_type"] == "reward=no_novelty"
    assert init["tags"] == ["reward:no_novelty", "world_model:s5wm"]
    assert init["name"] == "ablation_reward-3-x-seed42"
    assert init["config"]["provenance"] == {"code": {"commit": "abc"}}
