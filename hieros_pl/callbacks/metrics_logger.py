"""Writes training, episode, replay and throughput metrics to every logger against env steps."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from hieros_pl.callbacks.env_loop import EnvLoop, replay_datamodule
from hieros_pl.metrics import EpisodeMetrics
from hieros_pl.module import HierosModule

log = logging.getLogger(__name__)

PROJECTION_CALLS = 20
"""Training calls after which a CPU run projects its wall time for the whole budget."""


class MetricsLogger(pl.Callback):
    """Every ``log_every`` env steps: means of the collected metrics, episodes and throughput.

    All metrics go through ``logger.log_metrics(..., step=env_steps)``: Lightning's
    ``global_step`` counts optimiser steps (several per training call) and is not a step unit.
    """

    def __init__(self, env_loop: EnvLoop, log_every: int, budget: int) -> None:
        self.env_loop = env_loop
        self.log_every = log_every
        self.budget = budget
        self.episodes = EpisodeMetrics()
        self.next_log = 0
        self.last_time = time.perf_counter()
        self.last_counts = (0, 0)
        self.calls_this_run = 0
        self.start_time = time.perf_counter()
        self.start_steps = 0
        self.projected = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        module = _module(pl_module)
        self.next_log = int(module.env_steps) + self.log_every
        self.last_counts = (int(module.env_steps), int(module.train_calls))
        self.start_steps = int(module.env_steps)
        self.start_time = self.last_time = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        module = _module(pl_module)
        self.calls_this_run += 1
        self._log_episodes(trainer, module)
        if self.calls_this_run == PROJECTION_CALLS:
            self._project_wall_time(module)
        if int(module.env_steps) >= self.next_log or trainer.should_stop:
            self.flush(trainer, module)
            self.next_log = int(module.env_steps) + self.log_every

    def flush(self, trainer: pl.Trainer, module: HierosModule) -> None:
        metrics = module.pop_metrics()
        metrics.update(self._throughput(module))
        metrics.update(self._replay_metrics(trainer))
        if self.episodes.episodes.update_called:
            summary = self.episodes.compute()
            for key in ("return", "length", "return_max", "episodes"):
                metrics[f"episodes/{key}"] = float(summary[key])
            self.episodes.reset()
        score = self.env_loop.last_window_score()
        if score is not None:
            metrics["score/train_last10k"] = score
        metrics["policy/exception_count"] = float(self.env_loop.policy_exceptions)
        _log(trainer, metrics, int(module.env_steps))

    def _log_episodes(self, trainer: pl.Trainer, module: HierosModule) -> None:
        for end_step, episode_return, length in self.env_loop.pop_finished_episodes():
            self.episodes.update(torch.tensor([episode_return]), torch.tensor([float(length)]))
            _log(trainer, {"episode/score": episode_return, "episode/length": length}, end_step)

    def _throughput(self, module: HierosModule) -> dict[str, float]:
        now = time.perf_counter()
        steps, calls = int(module.env_steps), int(module.train_calls)
        elapsed = max(now - self.last_time, 1e-9)
        rates = {
            "perf/env_steps_per_second": (steps - self.last_counts[0]) / elapsed,
            "perf/train_calls_per_second": (calls - self.last_counts[1]) / elapsed,
            "perf/interval_seconds": elapsed,
        }
        self.last_time, self.last_counts = now, (steps, calls)
        return rates

    def _replay_metrics(self, trainer: pl.Trainer) -> dict[str, float]:
        datamodule = replay_datamodule(trainer)
        metrics: dict[str, float] = {}
        for level, buffer in enumerate(datamodule.buffers):
            metrics[f"replay/level{level}/sequences"] = float(buffer.num_sequences())
            deciles = buffer.visit_deciles()
            if np.all(np.isfinite(deciles)):
                for index, value in enumerate(deciles):
                    metrics[f"replay/level{level}/visits_decile_{index}"] = float(value)
        return metrics

    def _project_wall_time(self, module: HierosModule) -> None:
        steps = int(module.env_steps) - self.start_steps
        if steps <= 0 or module.device.type != "cpu":
            return
        seconds_per_step = (time.perf_counter() - self.start_time) / steps
        remaining = (self.budget - int(module.env_steps)) * seconds_per_step
        if remaining > 3600:
            log.warning(
                "No GPU: at %.2f s per env step this run needs about %.1f hours for the remaining "
                "%d env steps. For a CPU run that finishes in minutes use experiment=quick.",
                seconds_per_step,
                remaining / 3600,
                self.budget - int(module.env_steps),
            )


def _module(pl_module: pl.LightningModule) -> HierosModule:
    assert isinstance(pl_module, HierosModule), type(pl_module)
    return pl_module


def _log(trainer: pl.Trainer, metrics: dict[str, float], step: int) -> None:
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=step)
