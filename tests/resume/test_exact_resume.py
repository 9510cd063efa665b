"""An interrupted and resumed run equals the uninterrupted one (CPU, deterministic, env state)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from hieros_pl.module import HierosModule
from hieros_pl.preemption import Preempted
from hieros_pl.train import run
from tests.conftest import compose

FAST = (
    "debug=fast",
    "callbacks.checkpoint_every=100000",
    "train_ratio=32",
    "logger.log_every=100000",
)


class _Recorder(pl.Callback):
    """Per training call: the world-model losses; at the end: the weights. Optionally SIGTERMs."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.kill_at = kill_at
        self.losses: dict[int, dict[str, float]] = {}
        self.module: HierosModule | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        assert isinstance(pl_module, HierosModule)
        self.module = pl_module
        call = int(pl_module.train_calls)
        self.losses[call] = {
            key: float(values[-1])
            for key, values in pl_module.pending_metrics.items()
            if key.startswith("level0/wm/") and values
        }
        if self.kill_at is not None and int(pl_module.env_steps) >= self.kill_at:
            self.kill_at = None
            os.kill(os.getpid(), signal.SIGTERM)


def _episodes(run_dir: Path) -> list[tuple[str, str, str]]:
    import csv

    with open(run_dir / "csv" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [
        (row["step"], row["episode/score"], row["episode/length"])
        for row in rows
        if row.get("episode/score")
    ]


def _interrupted_equals_uninterrupted(tmp_path: Path, kill_at: int, *overrides: str) -> None:
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    straight = _Recorder()
    run(compose(*FAST, *overrides, f"run_dir={straight_dir}"), extra_callbacks=[straight])

    first = _Recorder(kill_at=kill_at)
    with pytest.raises(Preempted):
        run(compose(*FAST, *overrides, f"run_dir={resumed_dir}"), extra_callbacks=[first])
    assert first.module is not None
    stopped_at = int(first.module.env_steps)
    second = _Recorder()
    run(compose(*FAST, *overrides, f"run_dir={resumed_dir}"), extra_callbacks=[second])

    assert straight.module is not None and second.module is not None
    budget = int(straight.module.env_steps)
    assert kill_at <= stopped_at < budget == int(second.module.env_steps)
    resumed_losses = {**first.losses, **second.losses}
    assert resumed_losses.keys() == straight.losses.keys()
    for call, losses in straight.losses.items():
        assert resumed_losses[call] == losses, f"train call {call}"
    assert _episodes(resumed_dir) == _episodes(straight_dir)
    ours, theirs = second.module.state_dict(), straight.module.state_dict()
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key


def test_interrupted_catch_run_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    _interrupted_equals_uninterrupted(tmp_path, 70, "hierarchy=depth2", "env_steps=130")


def test_interrupted_atari_run_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    _interrupted_equals_uninterrupted(
        tmp_path,
        130,
        "env=atari100k",
        "env.game=pong",
        "hierarchy=depth1",
        "env_steps=200",
        "env.image_size=16",
        "world_model.cnn_minres=4",
    )


def test_a_gym_id_resume_closes_the_interrupted_episode_with_an_is_last_row(
    tmp_path: Path,
) -> None:
    overrides = (*FAST, "env=gym", "env.id=CartPole-v1", "hierarchy=depth1", f"run_dir={tmp_path}")
    first = _Recorder(kill_at=40)
    with pytest.raises(Preempted):
        run(compose(*overrides, "env_steps=90"), extra_callbacks=[first])
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    written = int(saved["ReplayDataModule"]["buffers"][0]["steps_written"][0])
    current = saved["callbacks"]["EnvLoop"]["current"]
    assert saved["callbacks"]["EnvLoop"]["env"] is None  # not saveable
    second = _Recorder()
    run(compose(*overrides, "env_steps=90"), extra_callbacks=[second])
    assert second.module is not None
    rings = second.module.trainer.datamodule.buffers[0].rings  # type: ignore[attr-defined]
    assert torch.equal(torch.from_numpy(rings["obs"][0, written]), current["obs"][0])
    assert rings["is_last"][0, written] and not rings["is_terminal"][0, written]
    assert rings["is_first"][0, written + 1]


def test_a_signal_during_the_prefill_checkpoints_it_and_the_rerun_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hieros_pl.callbacks.env_loop import EnvLoop

    original = EnvLoop._env_step
    calls = []

    def step_then_signal(self: EnvLoop, module: Any, datamodule: Any) -> None:
        original(self, module, datamodule)
        calls.append(1)
        if len(calls) == 10:
            os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(EnvLoop, "_env_step", step_then_signal)
    cfg = compose(*FAST, "hierarchy=depth1", "env_steps=60", f"run_dir={tmp_path}")
    with pytest.raises(Preempted):
        run(cfg)
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(saved["state_dict"]["env_steps"]) == 10  # prefill needs B + T - 1 = 23 steps
    assert int(saved["state_dict"]["train_calls"]) == 0
    module = run(cfg)
    assert int(module.env_steps) == 60 and int(module.train_calls) > 0
