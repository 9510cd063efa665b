"""Checkpoints every N env steps, at the end, and on SIGTERM/SIGUSR1 (SLURM pre-emption)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.exceptions import SIGTERMException

from hieros_pl.module import HierosModule

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.ckpt"
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint a rerun on ``run_dir`` resumes from, if any."""
    path = Path(run_dir) / "checkpoints" / LAST_CHECKPOINT
    return path if path.exists() else None


class EnvStepCheckpoint(pl.Callback):
    """Writes ``<run_dir>/checkpoints/last.ckpt`` atomically (temp file, then rename).

    The replay is not in the checkpoint: the datamodule's ``state_dict`` flushes each level's
    chunk files to the run dir and stores only cursors and sampler state (DESIGN.md §4.7).
    """

    def __init__(self, run_dir: str | Path, every: int) -> None:
        self.directory = Path(run_dir) / "checkpoints"
        self.every = every
        self.next_save = every
        self.preempted = False
        self.previous_handlers: dict[int, Any] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        self.next_save = (int(pl_module.env_steps) // self.every + 1) * self.every
        for signum in PREEMPTION_SIGNALS:
            # signal.signal raises ValueError outside the main thread (e.g. a notebook executor).
            with contextlib.suppress(ValueError):
                self.previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.warning("signal %d received: checkpointing and stopping", signum)
        self.preempted = True

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        assert isinstance(pl_module, HierosModule)
        if self.preempted:
            self.save(trainer)
            trainer.should_stop = True
        elif int(pl_module.env_steps) >= self.next_save:
            self.save(trainer)
            self.next_save += self.every

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Lightning turns SIGTERM into SIGTERMException at the end of the current batch, which
        # may come before this callback's batch-end hook has seen the signal.
        if self.preempted or isinstance(exception, SIGTERMException):
            self.save(trainer)
        self._restore_handlers()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self.previous_handlers.items():
            signal.signal(signum, handler)
        self.previous_handlers = {}

    def save(self, trainer: pl.Trainer) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / LAST_CHECKPOINT
        temporary = final.with_suffix(".ckpt.tmp")
        try:
            trainer.save_checkpoint(temporary)
            os.replace(temporary, final)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise OSError(
                    error.errno, f"disk full while writing a checkpoint to {self.directory}"
                ) from error
            raise
        return final
