"""Agent-level figures for hieros-bench: behaviour update, full level-0 update, hierarchy train
call at depth 1 and 3, policy step latency, and the Lightning Trainer's overhead over a plain loop.

Synthetic batches (random frames, one-hot actions) stand in for replay: the cost of an update does
not depend on the pixel values.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from hieros_pl.bench.timing import median_ms
from hieros_pl.builders import compose_config
from hieros_pl.config import Config
from hieros_pl.data.batch import Batch, HierarchyBatch
from hieros_pl.module import HierosModule
from hieros_pl.nn.modes import evaluation_mode

ATARI_ACTIONS = 18
"""The largest minimal action set of the 26 games (full Atari set)."""


def synthetic_batch(module: HierosModule, level: int, batch: int, length: int) -> Batch:
    """A [B, T] batch shaped like level ``level``'s replay rows."""
    spec = module.specs[level]
    if spec.obs_is_image:
        obs = torch.randint(0, 256, (batch, length, *spec.obs_shape), dtype=torch.uint8)
    else:
        obs = torch.randn(batch, length, *spec.obs_shape)
    actions = torch.randint(0, spec.action_dim, (batch, length))
    is_first = torch.zeros(batch, length, dtype=torch.bool)
    is_first[:, 0] = True
    goal_dim = module.cfg.world_model.deter if spec.goal_code_dim else 0
    return Batch(
        obs=obs,
        action=torch.nn.functional.one_hot(actions, spec.action_dim).float(),
        reward=torch.randn(batch, length),
        is_first=is_first,
        is_last=torch.zeros(batch, length, dtype=torch.bool),
        is_terminal=torch.zeros(batch, length, dtype=torch.bool),
        subgoal=torch.randn(batch, length, goal_dim),
        subgoal_code=torch.zeros(batch, length, spec.goal_code_dim),
    )


def build(overrides: list[str]) -> tuple[Config, HierosModule]:
    cfg = compose_config(["trainer=cpu", "logger=csv", *overrides])
    shape = (cfg.env.image_size, cfg.env.image_size, 3)
    module = HierosModule(cfg, shape, True, ATARI_ACTIONS, discrete=True)
    # Past the activation schedule, so that every level trains and acts.
    module.env_steps.fill_(cfg.hierarchy.levels * cfg.hierarchy.activate_every)
    return cfg, module


def plain_optimizers(module: HierosModule) -> dict[str, Any]:
    return dict(zip(module.optimizer_names, module.configure_optimizers(), strict=True))


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    return median_ms(run, repeats) / 1e3


def _max_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def bench_level0_update(size: str, repeats: int) -> list[dict[str, Any]]:
    """World model + imagination + actor + critics of level 0 at ``size``, B×T of that size."""
    cfg, module = build(["hierarchy=depth1", f"size={size}", "env=atari100k"])
    optimizers = plain_optimizers(module)
    batch = synthetic_batch(module, 0, cfg.replay.batch_size, cfg.replay.batch_length)
    calls = HierarchyBatch(0, [batch])
    full = median_seconds(lambda: module.train_call(calls, optimizers), repeats)
    subactor = module.hierarchy.levels[0]
    _, posterior, _ = subactor.world_model_losses(batch)

    def behaviour() -> None:
        output = subactor.behavior_losses(posterior.detach(), batch)
        total = output.actor_loss + sum(output.critic_losses.values())
        total.backward()

    behaviour_time = median_seconds(behaviour, repeats)
    shape = {
        "size": size,
        "B": cfg.replay.batch_size,
        "T": cfg.replay.batch_length,
        "H": cfg.behavior.horizon,
    }
    return [
        {"name": "level0_update", "value": full, "unit": "s", **shape},
        {"name": "behavior_update", "value": behaviour_time, "unit": "s", **shape},
        {
            "name": "process_peak_rss",
            "value": _max_rss_gb(),
            "unit": "GB",
            "note": "peak of the whole bench process so far: an upper bound",
            **shape,
        },
    ]


def bench_train_call(depth: int, size: str, repeats: int) -> dict[str, Any]:
    """One hierarchy training call in which every level trains (call index 0)."""
    cfg, module = build([f"hierarchy=depth{depth}", f"size={size}", "env=atari100k"])
    optimizers = plain_optimizers(module)
    levels = [
        synthetic_batch(module, level, cfg.replay.batch_size, cfg.replay.batch_length)
        for level in range(depth)
    ]
    seconds = median_seconds(
        lambda: module.train_call(HierarchyBatch(0, list(levels)), optimizers), repeats
    )
    return {
        "name": f"train_call_depth{depth}_all_levels",
        "value": seconds,
        "unit": "s",
        "size": size,
    }


def policy_cycle(depth: int, size: str) -> tuple[HierosModule, Callable[[], None], int]:
    """(module, play one cycle, cycle length): the acting loop of one env on random frames.

    Levels above 0 act every K**i steps, so a step's cost depends on where it falls on the grid;
    one cycle is a whole K**(L-1) steps (at least K² = 16). Call the cycle in evaluation mode,
    as the env loop does around the steps of a training call.
    """
    cfg, module = build([f"hierarchy=depth{depth}", f"size={size}", "env=atari100k"])
    carry = module.hierarchy.initial_carry(1, torch.device("cpu"))
    obs = torch.randint(0, 256, (1, cfg.env.image_size, cfg.env.image_size, 3), dtype=torch.uint8)
    flags = torch.zeros(1, dtype=torch.bool)
    cycle = max(cfg.hierarchy.stride ** (depth - 1), cfg.hierarchy.stride**2)

    def one_cycle() -> None:
        nonlocal carry
        for _ in range(cycle):
            _, carry, _ = module.act(obs, torch.zeros(1), flags, flags, flags, carry, "train")

    return module, one_cycle, cycle


def bench_policy_step(depth: int, size: str, cycles: int = 24) -> dict[str, Any]:
    """Latency of one env step of the hierarchy's policy with one environment: the mean over a
    whole cycle (:func:`policy_cycle`), median over ``cycles`` cycles after two warm-up cycles."""
    module, one_cycle, cycle = policy_cycle(depth, size)
    with evaluation_mode(module):
        one_cycle()
        one_cycle()
        seconds = median_seconds(one_cycle, cycles) / cycle
    return {
        "name": f"policy_step_depth{depth}",
        "value": 1e3 * seconds,
        "unit": "ms",
        "size": size,
        "cycle_steps": cycle,
        "threads": torch.get_num_threads(),
    }


class _RepeatedBatches(IterableDataset[HierarchyBatch]):
    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def __iter__(self) -> Iterator[HierarchyBatch]:
        index = 0
        while True:
            yield HierarchyBatch(index, [self.batch])
            index += 1


class _InterleavedTimer(pl.Callback):
    """Times each Trainer training call, then one plain-loop call right after it.

    Interleaving keeps both measurements of a pair under the same machine load; the overhead is
    the median of the per-pair ratios.
    """

    def __init__(self, plain_call: Callable[[], object]) -> None:
        self.plain_call = plain_call
        self.resumed: float | None = None
        self.pairs: list[tuple[float, float]] = []

    def on_train_batch_end(self, *args: Any) -> None:
        ended = time.perf_counter()
        start = time.perf_counter()
        self.plain_call()
        plain = time.perf_counter() - start
        if self.resumed is not None:  # the first call includes the Trainer's start-up
            self.pairs.append((ended - self.resumed, plain))
        self.resumed = time.perf_counter()


def bench_lightning_overhead(size: str, calls: int) -> list[dict[str, Any]]:
    """A training call through Trainer.fit vs the same call in a plain Python loop.

    Each Trainer call (data loader, hooks, optimiser wrappers included) is paired with a plain
    call on a second module right after it; figures are medians over the pairs.
    """
    cfg, plain_module = build(["hierarchy=depth1", f"size={size}", "env=atari100k"])
    batch = synthetic_batch(plain_module, 0, cfg.replay.batch_size, cfg.replay.batch_length)
    optimizers = plain_optimizers(plain_module)
    timer = _InterleavedTimer(
        lambda: plain_module.train_call(HierarchyBatch(0, [batch]), optimizers)
    )
    _, module = build(["hierarchy=depth1", f"size={size}", "env=atari100k"])
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=-1,
        max_epochs=1,
        limit_train_batches=calls + 1,
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(_RepeatedBatches(batch), batch_size=None, num_workers=0)
    trainer.fit(module, train_dataloaders=loader)
    ratio = statistics.median(lightning / plain for lightning, plain in timer.pairs)
    return [
        {
            "name": "plain_loop",
            "value": statistics.median(plain for _, plain in timer.pairs),
            "unit": "s/call",
            "size": size,
        },
        {
            "name": "lightning_fit",
            "value": statistics.median(lightning for lightning, _ in timer.pairs),
            "unit": "s/call",
            "size": size,
        },
        {
            "name": "lightning_overhead",
            "value": 100 * (ratio - 1),
            "unit": "%",
            "size": size,
            "note": "median ratio of interleaved per-call times",
        },
    ]


def bench_policy() -> list[dict[str, Any]]:
    """The policy-step figures alone (``hieros-bench policy``), at the paper size."""
    return [bench_policy_step(1, "paper"), bench_policy_step(3, "paper")]


def bench_agent() -> list[dict[str, Any]]:
    figures = []
    figures += bench_level0_update("tiny", repeats=5)
    figures += bench_level0_update("paper", repeats=2)
    figures.append(bench_train_call(1, "tiny", repeats=5))
    figures.append(bench_train_call(3, "tiny", repeats=5))
    figures.append(bench_train_call(3, "paper", repeats=1))
    figures.append(bench_policy_step(1, "paper"))
    figures.append(bench_policy_step(3, "paper"))
    figures += bench_lightning_overhead("tiny", calls=100)
    return figures
