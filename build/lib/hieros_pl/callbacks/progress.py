"""A progress bar that counts env steps towards the budget (not batches or optimiser steps)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar

from hieros_pl.module import HierosModule


class EnvStepProgressBar(TQDMProgressBar):
    """TQDM bar of env steps / budget with ETA; postfix shows train calls and updates."""

    def __init__(self, budget: int, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.budget = budget

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        assert isinstance(pl_module, HierosModule)
        self.train_progress_bar.reset(total=self.budget)
        self.train_progress_bar.set_description("env steps")
        self.train_progress_bar.n = int(pl_module.env_steps)
        self.train_progress_bar.refresh()

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
            bar.refresh()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The run is one endless epoch; the bar closes in on_train_end.
        return None
