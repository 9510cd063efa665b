"""A real ``hieros-train`` run with TensorBoard, SIGKILLed after a checkpoint and rerun: the event
files, read back as TensorBoard reads them, hold every step once and keep the pre-kill history."""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

import torch
from tensorboard.backend.event_processing import event_accumulator, event_file_loader

from tests.resume.test_preemption import start, wait_for

TENSORBOARD = (
    "logger=tensorboard",
    "logger.wandb=false",
    "logger.video_every=0",
    "env_steps=160",
    "callbacks.checkpoint_every=60",
    "logger.log_every=10",
)

ScalarHistory = dict[str, list[tuple[int, float]]]


def scalar_history(run_dir: Path) -> ScalarHistory:
    """(step, value) of every scalar tag, as TensorBoard shows it (restart purges applied)."""
    accumulator = event_accumulator.EventAccumulator(
        str(run_dir / "tensorboard"), size_guidance={event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def last_logged_step(run_dir: Path) -> int:
    """The largest step of any scalar in the event files so far (raw, nothing purged)."""
    steps = [0]
    for path in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        for event in event_file_loader.EventFileLoader(str(path)).Load():
            if event.summary.value:
                steps.append(event.step)
    return max(steps)


def checkpoint_step(run_dir: Path) -> int:
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)
    return int(saved["state_dict"]["env_steps"])


def test_sigkill_after_a_checkpoint_then_rerun_leaves_no_step_twice(tmp_path: Path) -> None:
    process = start(tmp_path, *TENSORBOARD)
    wait_for(tmp_path / "checkpoints" / "last.ckpt", process)
    # Kill once the event files hold steps the checkpoint does not: the rerun logs them again.
    deadline = time.monotonic() + 120
    while last_logged_step(tmp_path) <= checkpoint_step(tmp_path) + 10:
        assert process.poll() is None and time.monotonic() < deadline, "no steps after checkpoint"
        time.sleep(0.2)
    process.kill()
    process.wait()
    resumed_from = checkpoint_step(tmp_path)
    before = scalar_history(tmp_path)
    assert any(step > resumed_from for history in before.values() for step, _ in history)

    rerun = start(tmp_path, *TENSORBOARD)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr[-2000:]
    after = scalar_history(tmp_path)

    for tag, history in after.items():
        steps = [step for step, _ in history]
        assert all(a < b for a, b in pairwise(steps)), (tag, steps)
    for tag, history in before.items():
        kept = [(step, value) for step, value in history if step <= resumed_from]
        assert [pair for pair in after[tag] if pair[0] <= resumed_from] == kept, tag
    assert max(step for step, _ in after["env_steps"]) == 160
    assert any(step > resumed_from for step, _ in after["env_steps"])
