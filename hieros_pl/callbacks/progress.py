"""One progress bar: env steps towards the budget with ETA (not batches or optimiser steps),
then the episodes of the final evaluation. In a non-interactive log (SLURM, a file) it prints
at most once per NON_TTY_INTERVAL seconds."""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from hieros_pl.module import HierosModule

NON_TTY_INTERVAL = 60.0
"""Seconds between bar lines when stdout is not a terminal."""


class EnvStepProgressBar(TQDMProgressBar):
    """TQDM bar of env steps / budget with ETA; postfix shows train calls. The evaluation
    callback reuses it for evaluation episodes (``start_evaluation``, ``advance_evaluation``)."""

    def __init__(self, budget: int, refresh_rate: int = 1, interactive: bool | None = None) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.budget = budget
        self.interactive = sys.stdout.isatty() if interactive is None else interactive
        self.last_print = 0.0

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(
            desc="env steps",
            total=self.budget,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            mininterval=0.1 if self.interactive else NON_TTY_INTERVAL,
        )

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The run is one endless epoch: no "Epoch 0" bar of batches, the env-step bar instead.
        assert isinstance(pl_module, HierosModule)
        self.train_progress_bar.n = int(pl_module.env_steps)
        self._print(force=True)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        assert isinstance(pl_module, HierosModule)
        bar = self.train_progress_bar
        steps = int(pl_module.env_steps)
        if steps - bar.n >= self.refresh_rate or steps >= self.budget:
            bar.n = steps
            bar.set_postfix(calls=int(pl_module.train_calls), refresh=False)
            self._print(force=steps >= self.budget)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The run is one endless epoch; the bar closes in on_train_end.
        return None

    def start_evaluation(self, name: str, episodes: int) -> None:
        """Close the current bar and count ``episodes`` evaluation episodes called ``name``."""
        self.train_progress_bar.close()
        self.train_progress_bar = Tqdm(
            desc=name,
            total=episodes,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            mininterval=0.1 if self.interactive else NON_TTY_INTERVAL,
        )

    def advance_evaluation(self, episodes: int) -> None:
        """``episodes`` more evaluation episodes finished."""
        bar = self.train_progress_bar
        bar.n += episodes
        self._print(force=bar.n >= (bar.total or 0))

    def _print(self, force: bool) -> None:
        now = time.monotonic()
        if self.interactive or force or now - self.last_print >= NON_TTY_INTERVAL:
            self.train_progress_bar.refresh()
            self.last_print = now
