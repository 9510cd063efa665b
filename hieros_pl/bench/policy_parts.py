"""Where the policy step's time goes (``hieros-bench policy_parts``).

The acting path of ``hieros-bench policy`` (one env, a whole K² = 16-step cycle) with a wall-time
counter around each part of every level: its world-model step (``obs_step``) and, inside it, the
encoder, the S5 stack step and the posterior; the actor features (feat⁺ with the reward and
continue heads) and the actor. Each figure is milliseconds per env step, the cycle's total over
its steps, so a level that acts on every 4th step shows a quarter of its per-call cost. ``other``
is the policy step minus every level's world-model step, actor features and actor: the
hierarchy's bookkeeping (due masks, carries, FIFOs, records, goal decoding).

The counters are instance attributes set for the measurement and removed after it; nothing in
the agent changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from hieros_pl.bench.agent import policy_cycle
from hieros_pl.hierarchy.subactor import Subactor
from hieros_pl.module import HierosModule
from hieros_pl.nn.modes import evaluation_mode

TOP_PARTS = ("world_model_step", "actor_features", "actor")
"""Parts whose sum, over the levels, is subtracted from the step to give ``other``."""


def level_parts(subactor: Subactor) -> dict[str, tuple[Any, str]]:
    """part name -> (object, method) timed for one level; parts its world model lacks are left
    out (an RSSM has no S5 stack)."""
    world_model = subactor.world_model
    dynamics = world_model.dynamics
    parts: dict[str, tuple[Any, str]] = {
        "world_model_step": (world_model, "obs_step"),
        "world_model_step/encoder": (world_model.encoder, "forward"),
        "world_model_step/posterior": (dynamics, "_posterior"),
        "actor_features": (world_model, "actor_features"),
        "actor": (subactor.actor_critic.actor, "forward"),
    }
    sequence = getattr(dynamics, "sequence", None)
    if sequence is not None:
        parts["world_model_step/s5_stack"] = (sequence, "step")
    return {name: target for name, target in parts.items() if hasattr(*target)}


@dataclass
class PartCounters:
    """Seconds spent in, and calls of, each ``level{i}/{part}`` while counting."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)


@contextmanager
def timed_parts(module: HierosModule) -> Iterator[PartCounters]:
    """Count the time and the calls of each level's parts while the block runs."""
    counters = PartCounters()
    patched: list[tuple[Any, str]] = []
    try:
        for index, subactor in enumerate(module.hierarchy.levels):
            if not subactor.owns_world_model and index > 0:
                continue  # level 0's world model, already counted there
            for part, (owner, method) in level_parts(subactor).items():
                name = f"level{index}/{part}"
                counters.seconds[name], counters.calls[name] = 0.0, 0
                setattr(owner, method, _counting(getattr(owner, method), name, counters))
                patched.append((owner, method))
        yield counters
    finally:
        for owner, method in patched:
            delattr(owner, method)  # the class's method shows through again


def _counting(function: Callable[..., Any], name: str, counters: PartCounters) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = function(*args, **kwargs)
        counters.seconds[name] += time.perf_counter() - start
        counters.calls[name] += 1
        return result

    return counted


def bench_policy_parts_at(depth: int, size: str, cycles: int = 24) -> list[dict[str, Any]]:
    """Per-part milliseconds per env step of the policy at ``depth`` (see the module doc), with
    each part's calls per env step."""
    module, one_cycle, cycle = policy_cycle(depth, size)
    with evaluation_mode(module):
        one_cycle()  # warm-up: memos, allocator
        one_cycle()
        with timed_parts(module) as counters:
            start = time.perf_counter()
            for _ in range(cycles):
                one_cycle()
            total = time.perf_counter() - start
    steps = cycles * cycle
    seconds = counters.seconds
    top = sum(value for name, value in seconds.items() if name.split("/", 1)[1] in TOP_PARTS)
    figures = {"policy_step": total, **seconds, "other": total - top}
    common = {"unit": "ms per env step", "size": size, "depth": depth, "cycle_steps": cycle}
    common["threads"] = torch.get_num_threads()
    return [
        {
            "name": f"depth{depth}/{name}",
            "value": 1e3 * value / steps,
            "calls_per_step": counters.calls.get(name, steps) / steps,
            **common,
        }
        for name, value in figures.items()
    ]


def bench_policy_parts() -> list[dict[str, Any]]:
    """``hieros-bench policy_parts``: depth 1 and 3 at the paper size."""
    return bench_policy_parts_at(1, "paper") + bench_policy_parts_at(3, "paper")
