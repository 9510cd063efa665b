"""End-to-end runs of hieros-train on CPU with the tiny size: budget, ratio, checkpoint, resume."""

from __future__ import annotations

import copy
import csv
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from hieros_pl.builders import load_run_config, replay_seed, save_run_config
from hieros_pl.config import ConfigError, run_seed
from hieros_pl.module import HierosModule, NonFiniteLossError
from hieros_pl.preemption import Preempted
from hieros_pl.train import run, with_run_dir_as_hydra_dir
from hieros_pl.world_models.world_model import WorldModel
from tests.conftest import compose

FAST = ("debug=fast", "callbacks.checkpoint_every=100000", "train_ratio=32")


def _csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_catch_run_stops_at_budget_and_writes_checkpoint_and_csv(tmp_path: Path) -> None:
    cfg = compose(*FAST, "hierarchy=depth2", "env_steps=160", f"run_dir={tmp_path}")
    module = run(cfg)
    assert int(module.env_steps) == 160
    assert int(module.env_frames) == 160 * cfg.env.action_repeat
    # One training call steps many optimisers; the budget never depends on global_step.
    assert module.trainer.global_step > int(module.train_calls)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    rows = _csv_rows(tmp_path)
    assert any(row.get("level0/wm/decoder") for row in rows)
    episodes = [row for row in rows if row.get("episode/length")]
    assert len(episodes) >= 10
    for row in episodes:  # every catch episode: G - 1 steps, then +1 or -1
        assert float(row["episode/length"]) == cfg.env.grid_size - 1
        assert float(row["episode/score"]) in (-1.0, 1.0)
    assert max(float(row["env_steps"]) for row in rows if row.get("env_steps")) == 160


def test_measured_replay_ratio_matches_train_ratio(tmp_path: Path) -> None:
    cfg = compose(*FAST, "hierarchy=depth1", "env_steps=200", f"run_dir={tmp_path}")
    module = run(cfg)
    assert module.replay_ratio() == pytest.approx(cfg.train_ratio, rel=0.05)


def test_pong_tiny_run(tmp_path: Path) -> None:
    cfg = compose(
        *FAST,
        "env=atari100k",
        "env.game=pong",
        "hierarchy=depth1",
        "env_steps=120",
        f"run_dir={tmp_path}",
    )
    module = run(cfg)
    assert int(module.env_steps) == 120 and int(module.env_frames) == 480
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert _csv_rows(tmp_path)


def test_nan_loss_stops_with_the_level_and_term(tmp_path: Path, monkeypatch: Any) -> None:
    original = WorldModel.loss

    def poisoned(self: WorldModel, batch: Any) -> Any:
        losses, posterior, metrics = original(self, batch)
        losses["reward"] = losses["reward"] * float("nan")
        return losses, posterior, metrics

    monkeypatch.setattr(WorldModel, "loss", poisoned)
    cfg = compose(*FAST, "hierarchy=depth1", "env_steps=100", f"run_dir={tmp_path}")
    with pytest.raises(NonFiniteLossError, match=r"level 0: wm/reward"):
        run(cfg)


class _Snapshot(pl.Callback):
    """Records counters, replay cursors and optimiser states right after a resume restores them."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.kill_at = kill_at
        self.restored: dict[str, Any] = {}
        self.module: Any = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning restores optimiser states after on_fit_start, before on_train_start.
        assert isinstance(pl_module, HierosModule)
        self.restored = {
            "env_steps": int(pl_module.env_steps),
            "train_calls": int(pl_module.train_calls),
            "updates": pl_module.updates.tolist(),
            "replay": [b.total_steps() for b in trainer.datamodule.buffers],  # type: ignore[attr-defined]
            # deepcopy: state_dict() returns the live tensors, which later steps update in place
            "optimizer": copy.deepcopy(trainer.strategy.optimizers[0].state_dict()),
        }

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        self.module = pl_module
        if self.kill_at is not None and int(pl_module.env_steps) >= self.kill_at:
            self.kill_at = None
            os.kill(os.getpid(), signal.SIGTERM)


def test_killed_run_resumes_with_counters_replay_and_optimizer_state(tmp_path: Path) -> None:
    cfg = compose(*FAST, "hierarchy=depth2", "env_steps=300", f"run_dir={tmp_path}")
    killer = _Snapshot(kill_at=120)
    with pytest.raises(Preempted):
        run(cfg, extra_callbacks=[killer])
    first = killer.module
    stopped_at = int(first.env_steps)
    assert 120 <= stopped_at < 300
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    saved_replay = [b.total_steps() for b in first.trainer.datamodule.buffers]

    snapshot = _Snapshot()
    second = run(cfg, extra_callbacks=[snapshot])
    assert snapshot.restored["env_steps"] == stopped_at
    assert snapshot.restored["train_calls"] == int(saved["state_dict"]["train_calls"])
    assert snapshot.restored["updates"] == saved["state_dict"]["updates"].tolist()
    assert snapshot.restored["replay"] == saved_replay
    restored_state = snapshot.restored["optimizer"]["state"]
    saved_state = saved["optimizer_states"][0]["state"]
    assert restored_state.keys() == saved_state.keys()
    for key in saved_state:
        assert torch.equal(restored_state[key]["exp_avg"], saved_state[key]["exp_avg"])
    assert int(second.env_steps) == 300


def test_cli_prints_config_and_rejects_bad_keys(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "hieros_pl.train"]
    printed = subprocess.run(
        [*command, "experiment=quick", "--cfg", "job"], capture_output=True, text=True, check=True
    )
    assert "sampler: etbs" in printed.stdout
    bad = subprocess.run(
        [*command, "debug=fast", "replay.temperature=2.0", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
    assert "replay.temperature must be in [0, 1]" in bad.stderr


def test_run_config_round_trips_and_a_foreign_key_is_named(tmp_path: Path) -> None:
    cfg = compose("seed=3", f"run_dir={tmp_path}")
    save_run_config(cfg, tmp_path)
    assert load_run_config(tmp_path) == cfg
    path = tmp_path / "config.yaml"
    path.write_text(path.read_text().replace("logger:\n", "logger:\n  videos: true\n", 1))
    with pytest.raises(ConfigError, match=r"config\.yaml: key 'logger\.videos'"):
        load_run_config(tmp_path)


class _ScaledGradientsSpy(pl.Callback):
    """Installs a GradScaler (as 16-mixed has on a GPU) and records, per training call, the norm
    of the world model's unscaled gradients and the norm the module reports for them."""

    def __init__(self) -> None:
        self.seen: list[float] = []
        self.pairs: list[tuple[float, float]] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        precision = trainer.precision_plugin
        assert isinstance(precision, MixedPrecision)
        precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        assert isinstance(pl_module, HierosModule)
        index = next(i for i, known in enumerate(trainer.optimizers) if known is optimizer)
        if pl_module.optimizer_names[index] == "level0/world_model":
            grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
            self.seen.append(float(torch.nn.utils.get_total_norm(grads)))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        reported = pl_module.pending_metrics.get("level0/wm/grad_norm")
        if reported and self.seen:
            self.pairs.append((float(reported[-1]), self.seen[-1]))


def test_gradients_are_clipped_and_reported_after_amp_unscaling(tmp_path: Path) -> None:
    spy = _ScaledGradientsSpy()
    cfg = compose(
        *FAST,
        "hierarchy=depth1",
        "env_steps=60",
        "trainer.precision=16-mixed",
        "logger.log_every=100000",
        f"run_dir={tmp_path}",
    )
    run(cfg, extra_callbacks=[spy])
    assert len(spy.pairs) >= 5
    for reported, unscaled in spy.pairs:
        assert reported == pytest.approx(unscaled, rel=1e-4)


def test_seeding_original_gives_every_replay_sampler_seed_zero() -> None:
    ours = compose("seed=5")
    original = compose("seed=5", "compat=original")
    assert [replay_seed(ours, level) for level in (0, 1)] == [5, 5 + 7919]
    assert [replay_seed(original, level) for level in (0, 1)] == [0, 0]
    assert run_seed(ours) == 5 and run_seed(original) is None


def test_cli_trains_with_symexp_two_hot_bins_and_names_a_bad_one(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "hieros_pl.train", "debug=fast", "hierarchy=depth1"]
    bins = ["world_model.reward_bins=symexp", "behavior.value_bins=symexp"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [*command, *bins, "env_steps=120", f"run_dir={run_dir}"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = load_run_config(run_dir)
    assert recorded.world_model.reward_bins == "symexp" == recorded.behavior.value_bins
    logged = [row for row in _csv_rows(run_dir) if row.get("level0/wm/reward_corr")]
    assert logged and all(-1.0 <= float(row["level0/wm/reward_corr"]) <= 1.0 for row in logged)
    bad = subprocess.run(
        [*command, "world_model.reward_bins=linear", f"run_dir={tmp_path / 'bad'}"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode != 0 and "world_model.reward_bins" in bad.stderr


def test_cli_run_dir_is_the_only_directory_a_run_creates(tmp_path: Path) -> None:
    """``run_dir=run`` (relative to the working directory) is where Hydra and the run write;
    no empty ``runs/<name>/seed<seed>`` of Hydra's default is left beside it."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    command = [sys.executable, "-m", "hieros_pl.train", *FAST, "hierarchy=depth1"]
    command += ["env_steps=40", "run_dir=run"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(path.name for path in workdir.iterdir()) == ["run"]
    assert load_run_config(workdir / "run").env_steps == 40


@pytest.mark.parametrize(
    ("argv", "added"),
    [
        (["seed=1", "run_dir=/x/y"], ["hydra.run.dir=/x/y"]),
        (["++run_dir=r/${seed}"], ["hydra.run.dir=r/${seed}"]),
        (["run_dir=/x/y", "hydra.run.dir=/z"], []),  # Hydra's own dir, named, is kept
        (["-m", "seed=0,1", "run_dir=/x/y"], []),  # a multirun keeps its sweep dirs
        (["seed=1"], []),
    ],
)
def test_a_single_runs_run_dir_becomes_hydras_run_dir(argv: list[str], added: list[str]) -> None:
    assert with_run_dir_as_hydra_dir(argv) == [*argv, *added]
