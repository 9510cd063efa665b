"""ReplayDataModule inside a real Lightning fit: prefetch, checkpoint and exact resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from hieros_pl.config import ReplayConfig
from hieros_pl.data.batch import HierarchyBatch
from hieros_pl.data.datamodule import ReplayDataModule
from hieros_pl.replay.buffer import SequenceBuffer, Transition, step_spec
from tests.conftest import compose

STRIDES = [1, 4]
STEPS_PER_CALL = 2
CALLS = 12
CHECKPOINT_AFTER = 5


class RecordingModule(pl.LightningModule):
    """Counts its own training calls (a resumable buffer) and records what it trained on."""

    train_calls: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.register_buffer("train_calls", torch.zeros((), dtype=torch.int64))
        self.seen: list[tuple[int, list[torch.Tensor | None]]] = []

    def training_step(self, batch: HierarchyBatch, batch_idx: int) -> None:
        assert batch.call_index == int(self.train_calls), (batch.call_index, self.train_calls)
        rewards = [None if level is None else level.reward.clone() for level in batch.levels]
        self.seen.append((batch.call_index, rewards))
        self.train_calls += 1

    def configure_optimizers(self) -> None:
        return None


def add_steps(buffers: list[SequenceBuffer], first: int, count: int) -> None:
    for step in range(first, first + count):
        for level, buffer in enumerate(buffers):
            if step % 2**level == 0:
                value = np.float32(step)
                buffer.add(
                    Transition(
                        obs=np.full((1, 2), value, dtype=np.float32),
                        action=np.zeros((1, 1), dtype=np.float32),
                        reward=np.full(1, value, dtype=np.float32),
                        is_first=np.array([step % 9 == 0]),
                        is_last=np.zeros(1, dtype=bool),
                        is_terminal=np.zeros(1, dtype=bool),
                        subgoal=np.zeros((1, 0), dtype=np.float32),
                        subgoal_code=np.zeros((1, 0), dtype=np.float32),
                    )
                )


class EnvSteps(pl.Callback):
    """Stand-in for the env loop: prefill on fit start, env steps before every training call."""

    def __init__(self, checkpoint: Path, checkpoint_after: int | None, stop_after: int) -> None:
        self.checkpoint = checkpoint
        self.checkpoint_after = checkpoint_after
        self.stop_after = stop_after

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = getattr(trainer, "datamodule", None)  # set by fit, not declared
        assert isinstance(datamodule, ReplayDataModule) and isinstance(pl_module, RecordingModule)
        datamodule.set_call_index(int(pl_module.train_calls))
        if datamodule.buffers[0].total_steps() == 0:
            add_steps(datamodule.buffers, 0, 40)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: Any, batch: Any, idx: int
    ) -> None:
        datamodule = getattr(trainer, "datamodule", None)  # set by fit, not declared
        assert isinstance(datamodule, ReplayDataModule)
        add_steps(
            datamodule.buffers, 40 + STEPS_PER_CALL * int(pl_module.train_calls), STEPS_PER_CALL
        )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int
    ) -> None:
        calls = int(pl_module.train_calls)
        if self.checkpoint_after is not None and calls == self.checkpoint_after + 1:
            trainer.save_checkpoint(self.checkpoint)
        if calls >= self.stop_after:
            trainer.should_stop = True


def fit(
    replay: ReplayConfig,
    directory: Path,
    stop_after: int,
    checkpoint_after: int | None = None,
    resume: bool = False,
) -> RecordingModule:
    buffers = [
        SequenceBuffer(
            replay,
            step_spec((2,), np.float32, action_dim=1, subgoal_dim=0, code_dim=0),
            num_envs=1,
            seed=level,
            directory=directory / "replay" / f"level{level}",
        )
        for level in range(len(STRIDES))
    ]
    module = RecordingModule()
    checkpoint = directory / "last.ckpt"
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=-1,
        max_steps=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EnvSteps(checkpoint, checkpoint_after, stop_after)],
    )
    trainer.fit(
        module,
        datamodule=ReplayDataModule(buffers, STRIDES),
        ckpt_path=checkpoint if resume else None,
    )
    return module


def test_a_resumed_fit_trains_on_the_batches_of_an_uninterrupted_one(tmp_path: Path) -> None:
    replay = dataclasses.replace(
        compose("replay=etbs").replay, capacity=64, batch_length=4, batch_size=3, chunk_size=7
    )
    uninterrupted = fit(replay, tmp_path / "a", stop_after=CALLS)
    fit(replay, tmp_path / "b", stop_after=CHECKPOINT_AFTER + 1, checkpoint_after=CHECKPOINT_AFTER)
    resumed = fit(replay, tmp_path / "b", stop_after=CALLS, resume=True)

    assert [call for call, _ in uninterrupted.seen] == list(range(CALLS))
    assert [call for call, _ in resumed.seen] == list(range(CHECKPOINT_AFTER + 1, CALLS))
    for (call, expected), (_, got) in zip(uninterrupted.seen[CHECKPOINT_AFTER + 1 :], resumed.seen):
        assert [level is None for level in expected] == [level is None for level in got], call
        for ours, theirs in zip(expected, got):
            if ours is not None and theirs is not None:
                torch.testing.assert_close(theirs, ours, rtol=0, atol=0)
