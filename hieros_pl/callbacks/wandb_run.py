"""Ends the wandb run when a job's training ends.

Hydra's basic launcher runs the jobs of a sweep one after another in one process; without
``wandb.finish()`` every later job's WandbLogger would reuse the first job's run.
"""

from __future__ import annotations

import sys

import lightning.pytorch as pl


class FinishWandbRun(pl.Callback):
    """Calls ``wandb.finish()`` at teardown if a wandb run is active."""

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        wandb = sys.modules.get("wandb")  # never import wandb just to finish nothing
        if wandb is not None and getattr(wandb, "run", None) is not None:
            wandb.finish()
