"""Checkpoints every N env steps, at the end, and on pre-emption; safe loading.

Writes are atomic and durable: the checkpoint goes to a temporary file in the checkpoint
directory, gets its SHA-256 digest appended (:mod:`hieros_pl.checkpoint_digest`), is fsynced,
renamed over ``last.ckpt`` and the directory is fsynced, so the previous ``last.ckpt`` survives any
failure (a failed write removes its temporary file and stops the run naming the path and the
reason). Loads first check the digest, then use ``torch.load(weights_only=True)``: a checkpoint
whose bytes changed since it was written or that carries a pickled object is refused, and a
truncated or corrupt file is named in the error. A checkpoint without a digest (written before
checkpoints carried one) is loaded unverified after a warning.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from hieros_pl import checkpoint_digest
from hieros_pl.errors import CheckpointError
from hieros_pl.module import HierosModule
from hieros_pl.preemption import Preempted, Preemption

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.ckpt"


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint a rerun on ``run_dir`` resumes from, if any."""
    path = Path(run_dir) / "checkpoints" / LAST_CHECKPOINT
    return path if path.exists() else None


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of ``path`` once its digest matches; errors name the file.

    ``mmap=True`` maps the tensors instead of reading them (cheap for a look at the counters).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        if not checkpoint_digest.verify(path):
            log.warning(
                "checkpoint %s carries no SHA-256 digest (written before checkpoints carried "
                "one): loading it unverified",
                path,
            )
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        reason = next(
            (line.strip() for line in str(error).splitlines() if "Unsupported" in line),
            str(error).splitlines()[0] if str(error) else type(error).__name__,
        )
        raise CheckpointError(
            f"refusing checkpoint {path}: it holds a pickled object that loading would have to "
            f"execute ({reason}); only tensors and plain containers are accepted"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({reason}); restore it or move it away "
            "to start the run afresh"
        ) from error
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(f"checkpoint {path} is not a hieros-pl checkpoint (no state_dict)")
    return state


def checkpoint_env_steps(path: str | Path) -> int:
    """The env steps a checkpoint reached; memory-mapped, so the weights are not read."""
    state = load_checkpoint(path, mmap=True)
    try:
        return int(state["state_dict"]["env_steps"])
    except KeyError:
        raise CheckpointError(f"checkpoint {path} has no env_steps counter") from None


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def temporary_path(final: Path) -> Path:
    """Where :func:`save_atomically` writes ``final`` before renaming it: beside it, per process."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary checkpoint files a killed writer left in ``directory``.

    Call it only while holding the run dir's lock: every other writer is gone then, so every
    temporary file not of this process is stale. Returns the deleted paths.
    """
    if not directory.is_dir():
        return []
    ours = {temporary_path(directory / LAST_CHECKPOINT).name}
    stale = [
        path
        for path in sorted(directory.glob(f".{LAST_CHECKPOINT}.*.tmp"))
        if path.name not in ours
    ]
    for path in stale:
        path.unlink(missing_ok=True)
        log.info("removed %s, a temporary checkpoint of a killed process", path)
    return stale


def save_atomically(trainer: pl.Trainer, final: Path) -> None:
    """Write the trainer's checkpoint to ``final`` atomically and durably, with its digest.

    Temporary file beside ``final``, digest appended, fsync, rename over ``final``, fsync of the
    directory: a process killed at any instant leaves ``final`` either as it was or as the new,
    signed and complete file. Raises CheckpointError naming ``final`` and the reason; the
    temporary file is removed and the previous ``final`` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(final)
    try:
        trainer.save_checkpoint(temporary, weights_only=False)  # the full training state
        checkpoint_digest.sign(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        fsync_directory(final.parent)
    except (OSError, RuntimeError, ValueError) as error:
        temporary.unlink(missing_ok=True)
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise CheckpointError(
            f"could not write checkpoint {final}: {reason}; the previous checkpoint is kept"
        ) from error


class EnvStepCheckpoint(pl.Callback):
    """Writes ``<run_dir>/checkpoints/last.ckpt`` every ``every`` env steps and on pre-emption.

    The replay is not in the checkpoint: the datamodule's ``state_dict`` flushes each level's
    chunk files to the run dir and stores only cursors and sampler state (DESIGN.md §4.7). The
    loggers are flushed first, so ``metrics.csv`` holds every row up to the checkpoint.
    """

    def __init__(
        self, run_dir: str | Path, every: int, preemption: Preemption | None = None
    ) -> None:
        self.directory = Path(run_dir) / "checkpoints"
        self.every = every
        self.next_save = every
        self.preemption = preemption or Preemption()
        self.saved_at: int | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        self.next_save = (int(pl_module.env_steps) // self.every + 1) * self.every
        remove_stale_temporaries(self.directory)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        assert isinstance(pl_module, HierosModule)
        if self.preemption.received:
            self.save(trainer)
            self.preemption.check()
        elif int(pl_module.env_steps) >= self.next_save:
            self.save(trainer)
            self.next_save += self.every

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # A pre-emption raised at a safe point (prefill step, final evaluation) or Lightning's
        # own SIGTERMException: the state is consistent, write it unless that is already done.
        if isinstance(exception, Preempted | SIGTERMException) and not self._saved_now(pl_module):
            self.save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)
        # The final evaluation that follows changes nothing this checkpoint holds: a signal may
        # stop it at once (the next start runs it again if its score is missing).
        self.preemption.interrupt_at_once()

    def _saved_now(self, pl_module: pl.LightningModule) -> bool:
        assert isinstance(pl_module, HierosModule)
        return self.saved_at == self._stamp(pl_module)

    @staticmethod
    def _stamp(pl_module: HierosModule) -> int:
        # (env steps, train calls) identify a state: nothing changes between two equal stamps.
        return int(pl_module.env_steps) * 1_000_003 + int(pl_module.train_calls)

    def save(self, trainer: pl.Trainer) -> Path:
        for logger in trainer.loggers:
            logger.save()
        final = self.directory / LAST_CHECKPOINT
        save_atomically(trainer, final)
        module = trainer.lightning_module
        assert isinstance(module, HierosModule)
        self.saved_at = self._stamp(module)
        return final
