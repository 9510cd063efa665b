"""Checkpoint digests end to end: a real run's checkpoint with bytes flipped mid-tensor stops
``hieros-train`` and ``hieros-eval`` naming it, a good one resumes, and a kill at any step of
the write leaves a loadable ``last.ckpt``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hieros_pl import checkpoint_digest
from hieros_pl.callbacks import checkpoint as checkpoint_module
from hieros_pl.callbacks.checkpoint import load_checkpoint, save_atomically
from hieros_pl.checkpoint_digest import verify
from tests.resume.test_preemption import ENV, TINY
from tests.test_checkpoint_digest import flip_mid_storage

BUDGET = ("callbacks.checkpoint_every=100000", "logger.video_every=0")


def train(run_dir: Path, env_steps: int) -> subprocess.Popen[str]:
    """``hieros-train`` on tiny catch in ``run_dir`` up to ``env_steps``."""
    command = [str(Path(sys.executable).parent / "hieros-train"), *TINY, *BUDGET]
    command += [f"env_steps={env_steps}", f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir whose ``last.ckpt`` a real ``hieros-train`` wrote at its budget of 40 steps."""
    run_dir = tmp_path_factory.mktemp("trained")
    process = train(run_dir, 40)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    return run_dir


def _snapshot(run_dir: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}


def test_bytes_flipped_mid_tensor_stop_train_and_eval_naming_the_file(
    trained: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    flip_mid_storage(checkpoint)
    torch.load(checkpoint, weights_only=True)  # torch itself loads the garbage without a word
    before = _snapshot(run_dir)
    resume = train(run_dir, 60)
    evaluate = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "hieros-eval"),
            str(run_dir),
            "--checkpoint",
            "last.ckpt",
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    reason = (
        f"checkpoint {checkpoint} is truncated or corrupt (its bytes do not match the SHA-256 "
        "digest recorded when it was written); restore it or move it away to start the run afresh"
    )
    for prog, process in (("hieros-train", resume), ("hieros-eval", evaluate)):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode not in (0, None), (prog, stderr[-2000:])
        assert stderr.strip().splitlines() == [f"{prog}: {reason}"], stderr[-2000:]
    assert _snapshot(run_dir) == before  # nothing written, nothing resumed from garbage


def test_a_good_checkpoint_verifies_and_resumes(trained: Path, tmp_path: Path) -> None:
    """... and the half-written temporary file of a writer SIGKILLed mid-save is removed."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    assert verify(checkpoint)
    stale = checkpoint.with_name(".last.ckpt.4194304.tmp")  # a pid no live process has here
    stale.write_bytes(checkpoint.read_bytes()[:1000])
    process = train(run_dir, 60)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    assert "digest" not in stderr
    assert verify(checkpoint)
    assert int(load_checkpoint(checkpoint)["state_dict"]["env_steps"]) == 60
    assert "resuming" in (run_dir / "train.log").read_text()
    assert not stale.exists()
    assert not list(checkpoint.parent.glob("*.tmp"))


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after the kill point runs and no handler catches it."""


class _Trainer:
    """Saves a checkpoint holding ``env_steps``; optionally killed halfway through the write."""

    def __init__(self, env_steps: int, killed_halfway: bool = False) -> None:
        self.env_steps = env_steps
        self.killed_halfway = killed_halfway

    def save_checkpoint(self, path: Path, weights_only: bool = False) -> None:
        weights = torch.full((2048,), float(self.env_steps))
        torch.save({"state_dict": {"env_steps": torch.tensor(self.env_steps), "w": weights}}, path)
        if self.killed_halfway:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            raise _Killed


def _kill_after(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    original = getattr(owner, name)

    def run_then_die(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise _Killed(name)

    monkeypatch.setattr(owner, name, run_then_die)


KILL_POINTS = {
    "during torch.save": 7,
    "after torch.save": 7,
    "after the digest": 7,
    "after the file fsync": 7,
    "after the rename": 8,
    "after the directory fsync": 8,
}
"""Where the process dies during the write of checkpoint 8 -> the env steps last.ckpt holds."""


@pytest.mark.parametrize("kill_point", KILL_POINTS)
def test_a_kill_at_any_step_of_the_write_leaves_a_loadable_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_point: str
) -> None:
    final = tmp_path / "checkpoints" / "last.ckpt"
    save_atomically(_Trainer(7), final)  # type: ignore[arg-type]
    trainer = _Trainer(8, killed_halfway=kill_point == "during torch.save")
    patches = {
        "after torch.save": (trainer, "save_checkpoint"),
        "after the digest": (checkpoint_digest, "sign"),
        "after the file fsync": (os, "fsync"),
        "after the rename": (os, "replace"),
        "after the directory fsync": (checkpoint_module, "fsync_directory"),
    }
    if kill_point in patches:
        _kill_after(monkeypatch, *patches[kill_point])
    with pytest.raises(_Killed):
        save_atomically(trainer, final)  # type: ignore[arg-type]
    monkeypatch.undo()
    assert verify(final)  # signed and intact: never a spurious "corrupt"
    state = load_checkpoint(final)
    assert int(state["state_dict"]["env_steps"]) == KILL_POINTS[kill_point]
    assert torch.equal(
        state["state_dict"]["w"], torch.full((2048,), float(KILL_POINTS[kill_point]))
    )
