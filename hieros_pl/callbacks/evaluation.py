"""Evaluation rollouts in a callback (not Lightning's validation loop: inference mode would
break later autograd); scores are written to the loggers and to ``<run_dir>/eval/*.json``."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from hieros_pl.callbacks.env_loop import EnvLoop
from hieros_pl.callbacks.progress import EnvStepProgressBar
from hieros_pl.config import CallbacksConfig, Config
from hieros_pl.evaluate import describe, evaluate, game_of, has_policy_stats
from hieros_pl.module import HierosModule

log = logging.getLogger(__name__)


class Evaluation(pl.Callback):
    """Periodic greedy evaluation and the final protocol evaluation (ALGORITHM.md §10.2).

    With ``compat.eval_protocol_original`` (D14): a single evaluation of ``eval_episodes`` at
    ``eval_every`` that uses and mutates the training runtime state, and no final evaluation.
    """

    def __init__(self, cfg: Config, run_dir: str | Path, env_loop: EnvLoop | None) -> None:
        self.cfg = cfg
        self.env_loop = env_loop
        self.original = cfg.compat.eval_protocol_original
        self.settings: CallbacksConfig = cfg.callbacks
        self.directory = Path(run_dir) / "eval"
        self.next_eval = self.settings.eval_every
        self.progress_bar: EnvStepProgressBar | None = None
        """The run's bar, which counts the final evaluation's episodes after the env steps."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        bar = trainer.progress_bar_callback
        self.progress_bar = bar if isinstance(bar, EnvStepProgressBar) else None
        every = self._every()
        if every > 0:
            self.next_eval = (int(pl_module.env_steps) // every + 1) * every

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        assert isinstance(pl_module, HierosModule)
        every = self._every()
        if every > 0 and int(pl_module.env_steps) >= self.next_eval:
            if self.original:
                self.next_eval = self.cfg.env_steps + 1  # once, as in the original loop
                self._run(
                    trainer.loggers, pl_module, "original", self.settings.eval_episodes, ["greedy"]
                )
                return
            self.next_eval += every
            self._run(
                trainer.loggers,
                pl_module,
                "periodic",
                self.settings.periodic_eval_episodes,
                ["greedy"],
            )

    def _every(self) -> int:
        if self.original and self.settings.eval_every == 0:
            # The original's loop evaluates once, at half of the Atari 100k budget (eval_every 2e5
            # frames of 4e5).
            return self.cfg.env_steps // 2
        return self.settings.eval_every

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        if self.final_missing(int(pl_module.env_steps)):
            self.run_final(trainer.loggers, pl_module)

    def final_missing(self, env_steps: int) -> bool:
        """Whether a run at ``env_steps`` owes its final evaluation (a rerun runs it)."""
        budget_reached = env_steps >= self.cfg.env_steps
        wanted = self.settings.final_eval and budget_reached and not self.original
        return wanted and not (self.directory / f"final_{env_steps}.json").exists()

    def run_final(self, loggers: list[Any], module: HierosModule) -> None:
        """The final protocol evaluation: greedy and sampled, ``eval_episodes`` each, with level
        0's ``PolicyStats`` in the JSON for discrete actions."""
        self._run(loggers, module, "final", self.settings.eval_episodes, ["greedy", "sample"])

    def _run(
        self, loggers: list[Any], module: HierosModule, name: str, episodes: int, modes: list[str]
    ) -> None:
        game = game_of(self.cfg)
        summaries = {}
        bar = self.progress_bar if name == "final" else None
        # The final JSON says how wide level 0's policy was (greedy below sampled: §Atari).
        with_policy_stats = name == "final" and has_policy_stats(module)
        for mode in modes:
            if bar is not None:
                bar.start_evaluation(f"{name} eval ({mode})", episodes)
            shared = self.env_loop.carry if self.original and self.env_loop else None
            started = time.perf_counter()
            result, carry = evaluate(
                module,
                self.cfg,
                episodes,
                mode,
                shared,
                on_episode=None if bar is None else (lambda _: bar.advance_evaluation(1)),
                with_policy_stats=with_policy_stats,
            )
            if self.original and self.env_loop:
                self.env_loop.carry = carry
            summary = result.summary(game)
            summary["seconds"] = time.perf_counter() - started
            summaries[mode] = summary
            metrics = {
                f"eval/{mode}/return_mean": summary["return_mean"],
                f"eval/{mode}/return_std": summary["return_std"],
            }
            if "human_normalized_score" in summary:
                metrics[f"eval/{mode}/hns"] = summary["human_normalized_score"]
            for logger in loggers:
                logger.log_metrics(metrics, step=int(module.env_steps))
            log.info(
                "%s evaluation, %s: return %.3f ± %.3f (%s)",
                name,
                mode,
                summary["return_mean"],
                summary["return_std"],
                describe(summary, self.cfg.env_steps),
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}_{int(module.env_steps)}.json"
        path.write_text(json.dumps(summaries, indent=2))
