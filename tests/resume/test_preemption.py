"""Real ``hieros-train`` processes killed and signalled: nothing is lost, nothing is doubled."""

from __future__ import annotations

import copy
import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from hieros_pl.module import HierosModule
from hieros_pl.replay.buffer import FIELDS
from hieros_pl.replay.chunks import read_chunk
from hieros_pl.train import run
from tests.conftest import compose

TINY = ("size=tiny", "env=catch", "trainer=cpu", "logger=csv", "hierarchy=depth1", "debug=fast")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "offline"}


def start(run_dir: Path, *overrides: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "hieros_pl.train", *TINY, *overrides]
    command.append(f"hydra.run.dir={run_dir}")
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"exited early: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def chunk_rows(directory: Path, steps: int, chunk_size: int) -> dict[str, np.ndarray]:
    """Rows 0 … steps − 1 of stream 0 as stored in its chunk files."""
    parts = [read_chunk(directory, 0, n) for n in range(-(-steps // chunk_size))]
    return {name: np.concatenate([part[name] for part in parts])[:steps] for name in FIELDS}


class _Restored(pl.Callback):
    """What a resume restored: counters, optimiser states and level 0's replay rows."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        buffer = trainer.datamodule.buffers[0]  # type: ignore[attr-defined]
        written = int(buffer.steps_written[0])
        self.state = {
            "env_steps": int(pl_module.env_steps),
            "train_calls": int(pl_module.train_calls),
            "steps_written": written,
            "rows": {name: buffer.rings[name][0, :written].copy() for name in FIELDS},
            "optimizers": [copy.deepcopy(o.state_dict()) for o in trainer.strategy.optimizers],
        }


def test_sigkill_at_a_random_moment_then_rerun_loses_and_doubles_nothing(tmp_path: Path) -> None:
    overrides = ("env_steps=240", "callbacks.checkpoint_every=40", "logger.log_every=20")
    process = start(tmp_path, *overrides)
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    wait_for(checkpoint, process)
    time.sleep(random.Random(9).uniform(0.2, 2.0))
    process.kill()  # SIGKILL: no handler runs
    process.wait()
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    steps = int(saved["state_dict"]["env_steps"])
    assert 40 <= steps < 240
    chunk_size = 256
    written = int(saved["ReplayDataModule"]["buffers"][0]["steps_written"][0])
    before = chunk_rows(tmp_path / "replay" / "level0", written, chunk_size)
    rows_before_kill = [row for row in csv_rows(tmp_path) if float(row["step"]) <= steps]

    restored = _Restored()
    cfg = compose(*TINY[:-1], "debug=fast", *overrides, f"run_dir={tmp_path}")
    module = run(cfg, extra_callbacks=[restored])
    assert int(module.env_steps) == 240
    state = restored.state
    assert state["env_steps"] == steps
    assert state["train_calls"] == int(saved["state_dict"]["train_calls"])
    assert state["steps_written"] == written
    for name in FIELDS:
        assert np.array_equal(state["rows"][name], before[name]), name
    for ours, theirs in zip(state["optimizers"], saved["optimizer_states"]):
        assert ours["state"].keys() == theirs["state"].keys()
        for key in theirs["state"]:
            for name, value in theirs["state"][key].items():
                assert torch.equal(torch.as_tensor(ours["state"][key][name]), value), name

    rows = csv_rows(tmp_path)
    assert rows[: len(rows_before_kill)] == [
        {key: row.get(key, "") for key in rows[0]} for row in rows_before_kill
    ]
    periodic = [float(row["step"]) for row in rows if row.get("env_steps")]
    episodes = [float(row["step"]) for row in rows if row.get("episode/score")]
    assert periodic == sorted(set(periodic)) and max(periodic) == 240
    assert episodes == sorted(set(episodes))
    assert rows_before_kill and any(float(row["step"]) > steps for row in rows)


def test_usr2_usr1_and_term_each_write_a_checkpoint(tmp_path: Path) -> None:
    signals = (signal.SIGUSR2, signal.SIGUSR1, signal.SIGTERM)
    run_dirs = [tmp_path / signal.Signals(signum).name for signum in signals]
    processes = [
        start(run_dir, "env_steps=2000", "callbacks.checkpoint_every=100000")
        for run_dir in run_dirs
    ]
    for run_dir, process, signum in zip(run_dirs, processes, signals):
        wait_for(run_dir / "config.yaml", process)
        time.sleep(0.5)
        process.send_signal(signum)
    for run_dir, process, signum in zip(run_dirs, processes, signals):
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 128 + signum, stderr[-2000:]
        saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
        assert 0 < int(saved["state_dict"]["env_steps"]) < 2000
        assert not list(run_dir.glob("checkpoints/.*.tmp"))
        assert not (run_dir / ".lock").exists()


def test_signal_during_final_evaluation_then_rerun_writes_the_final_score(tmp_path: Path) -> None:
    final = ("env_steps=40", "callbacks.checkpoint_every=100000", "callbacks.final_eval=true")
    process = start(tmp_path, *final, "callbacks.eval_episodes=2000")
    wait_for(tmp_path / "checkpoints" / "last.ckpt", process)  # the budget checkpoint
    time.sleep(0.5)
    process.send_signal(signal.SIGUSR2)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGUSR2, stderr[-2000:]
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(saved["state_dict"]["env_steps"]) == 40
    assert not (tmp_path / "eval" / "final_40.json").exists()

    # A smaller evaluation is a change the resume accepts (callbacks.* intervals are safe).
    rerun = start(tmp_path, *final, "callbacks.eval_episodes=3")
    _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr[-2000:]
    assert (tmp_path / "eval" / "final_40.json").exists()
    assert any(row.get("eval/greedy/return_mean") for row in csv_rows(tmp_path))
