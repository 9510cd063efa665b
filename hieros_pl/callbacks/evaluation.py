"""Evaluation rollouts in a callback (not Lightning's validation loop: inference mode would
break later autograd); scores are written to the loggers and to ``<run_dir>/eval/*.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from hieros_pl.config import CallbacksConfig, Config
from hieros_pl.evaluate import evaluate, game_of
from hieros_pl.module import HierosModule


class Evaluation(pl.Callback):
    """Periodic greedy evaluation and the final protocol evaluation (ALGORITHM.md §10.2)."""

    def __init__(self, cfg: Config, run_dir: str | Path) -> None:
        self.cfg = cfg
        self.settings: CallbacksConfig = cfg.callbacks
        self.directory = Path(run_dir) / "eval"
        self.next_eval = self.settings.eval_every

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        every = self.settings.eval_every
        if every > 0:
            self.next_eval = (int(pl_module.env_steps) // every + 1) * every

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:
        assert isinstance(pl_module, HierosModule)
        every = self.settings.eval_every
        if every > 0 and int(pl_module.env_steps) >= self.next_eval:
            self.next_eval += every
            self._run(trainer, pl_module, "periodic", self.settings.periodic_eval_episodes, ["greedy"])

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        budget_reached = int(pl_module.env_steps) >= self.cfg.env_steps
        if self.settings.final_eval and budget_reached:
            self._run(trainer, pl_module, "final", self.settings.eval_episodes, ["greedy", "sample"])

    def _run(
        self, trainer: pl.Trainer, module: HierosModule, name: str, episodes: int, modes: list[str]
    ) -> None:
        game = game_of(self.cfg)
        summaries = {}
        for mode in modes:
            summary = evaluate(module, self.cfg, episodes, mode).summary(game)
            summaries[mode] = summary
            metrics = {f"eval/{mode}/return_mean": summary["return_mean"],
                       f"eval/{mode}/return_std": summary["return_std"]}
            if "human_normalized_score" in summary:
                metrics[f"eval/{mode}/hns"] = summary["human_normalized_score"]
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=int(module.env_steps))
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}_{int(module.env_steps)}.json"
        path.write_text(json.dumps(summaries, indent=2))
