"""Refit: would another world model have learned the reward from the same data?

A fresh world model (the run's config plus ``world_model.*`` / ``optim.world_model.*`` overrides)
is trained for a number of updates on the run's replay, on sequences drawn uniformly from the
first part of every stream only, and then scored by the reward probe on the held-out rest (the
same split as ``hieros-probe reward``). Without overrides it retrains the run's own world model
from scratch on the finished run's data: the baseline for the overrides. The behaviour, the data
(collected by the run's policy) and the sampler (uniform, not the run's) are fixed, so a change
that helps here helps the world model's fit, not necessarily the agent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from hieros_pl.config import Config, ConfigError, to_config
from hieros_pl.data.batch import Batch
from hieros_pl.errors import ProbeError
from hieros_pl.probes.reward import probe_reward, test_start
from hieros_pl.replay.buffer import SequenceBuffer, SequenceKeys

REFIT_KEYS = ("world_model.", "optim.world_model.", "replay.batch_size")
"""Overrides a refit accepts: the world model, its optimiser, the batch size (the sequence
length is the replay's own: its buffer gathers the batches)."""


def refit_config(cfg: Config, overrides: list[str]) -> Config:
    """The run's config with ``key=value`` overrides of the refit keys, validated."""
    for override in overrides:
        key = override.split("=", 1)[0]
        if "=" not in override or not key.startswith(REFIT_KEYS):
            raise ConfigError(
                f"refit override {override!r}: only key=value overrides of "
                f"{', '.join(k.rstrip('.') for k in REFIT_KEYS)} change the refitted world model"
            )
    merged = OmegaConf.merge(OmegaConf.structured(cfg), OmegaConf.from_dotlist(overrides))
    return to_config(merged)


def training_batches(
    buffer: SequenceBuffer, batch_size: int, test_fraction: float, seed: int
) -> Iterator[Batch]:
    """Endless [B, T] batches (T = replay.batch_length of the buffer) from the first
    (1 - test_fraction) of every stream, uniformly; gathered by the buffer itself."""
    length = buffer.cfg.batch_length
    stored = np.minimum(buffer.steps_written, buffer.cfg.capacity)
    first = buffer.steps_written - stored  # absolute step of each stream's oldest stored row
    ends = np.array([test_start(int(n), test_fraction) for n in stored])
    usable = np.flatnonzero(ends >= length)
    if len(usable) == 0:
        raise ProbeError(
            f"no replay stream has {length} rows (replay.batch_length) before its test part"
        )
    weights = (ends[usable] - length + 1).astype(np.float64)
    generator = np.random.default_rng(seed)
    while True:
        envs = generator.choice(usable, batch_size, p=weights / weights.sum())
        offsets = np.array([generator.integers(0, ends[env] - length + 1) for env in envs])
        yield buffer.gather(SequenceKeys(env=envs, start=first[envs] + offsets))


def refit_and_probe(
    cfg: Config,
    buffer: SequenceBuffer,
    level: int,
    source: str,
    updates: int,
    probe_steps: int = 2000,
    test_fraction: float = 0.2,
    seed: int = 0,
    log_every: int = 500,
) -> dict[str, Any]:
    """Train a fresh level-``level`` world model of ``cfg`` for ``updates`` updates on the
    training part of ``buffer``; its loss history and the reward probe's scores."""
    from hieros_pl.builders import build_module

    if updates < 1:
        raise ProbeError(f"updates must be >= 1, got {updates}")
    torch.manual_seed(seed)
    module = build_module(cfg)
    subactor = module.hierarchy.levels[level]
    if not subactor.owns_world_model:
        raise ProbeError(f"level {level} shares level 0's world model: refit level 0")
    names = module.optimizer_names
    optimizers = dict(zip(names, module.configure_optimizers(), strict=True))
    batches = training_batches(buffer, cfg.replay.batch_size, test_fraction, seed)
    history = []
    subactor.world_model.train()
    for update in range(updates):
        module.train_world_model(level, next(batches), optimizers, update)
        if (update + 1) % log_every == 0 or update + 1 == updates:
            history.append({"update": update + 1, **_pop_means(module.pending_metrics, level)})
            module.pending_metrics = {}
    scores = probe_reward(
        subactor.world_model,
        buffer,
        source,
        cfg.replay.batch_length,
        steps=probe_steps,
        test_fraction=test_fraction,
        seed=seed,
    )
    return {"updates": updates, "history": history, **scores}


def _pop_means(pending: dict[str, list[torch.Tensor]], level: int) -> dict[str, float]:
    """Means of the world model's logged losses since the last call (``wm/`` keys, short names)."""
    prefix = f"level{level}/wm/"
    return {
        key[len(prefix) :]: float(torch.stack(values).float().mean())
        for key, values in pending.items()
        if key.startswith(prefix)
    }
