"""Replay timings for hieros-bench: per-draw sampler cost by buffer size, and a full ``sample()``.

The sampler figures time only the choice of key indices (batches of B = 16, as in training), not
gathering the rows, at 1e3 … 1e6 live keys: ETBS should not depend on N, uniform barely does,
and the naive time-balanced reference grows linearly. The ``sample()`` figure gathers a paper-size
[16, 64, 64, 64, 3] uint8 batch from a ring of 64×64×3 frames.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hieros_pl.config import ReplayConfig
from hieros_pl.replay.buffer import SequenceBuffer, Transition, step_spec
from hieros_pl.replay.samplers import SAMPLERS, make_sampler

BATCH_SIZE = 16
KEY_COUNTS = (1_000, 10_000, 100_000, 1_000_000)
DRAW_BUDGET_SECONDS = 0.25
"""Each sampler figure repeats batches until about this much time has passed (min 3 batches)."""
SAMPLE_SHAPE = (64, 64, 3)
SAMPLE_LENGTH = 64
SAMPLE_STORED_STEPS = 2_000
SAMPLE_REPEATS = 10


def _microseconds_per_draw(draw: Callable[[], object], budget: float) -> float:
    """Median cost of one index within a batch of BATCH_SIZE, in microseconds."""
    draw()
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or spent < budget:
        start = time.perf_counter()
        draw()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return 1e6 * statistics.median(times) / BATCH_SIZE


def _sampler_figures() -> list[dict[str, Any]]:
    figures = []
    for name in SAMPLERS:
        cfg = ReplayConfig(sampler=name, batch_size=BATCH_SIZE)
        sampler = make_sampler(cfg)
        for num_keys in KEY_COUNTS:
            rng = np.random.default_rng(0)
            # Visits of a replay that has been sampled for a while (matters for time_balanced).
            visits = rng.integers(0, 50, size=num_keys)
            draw = functools.partial(sampler.indices, rng, visits, BATCH_SIZE)
            cost = _microseconds_per_draw(draw, DRAW_BUDGET_SECONDS)
            figures.append(
                {
                    "name": "replay_sampler_draw",
                    "value": cost,
                    "unit": "us",
                    "sampler": name,
                    "num_keys": num_keys,
                    "batch_size": BATCH_SIZE,
                }
            )
    return figures


def _image_step(counter: int) -> Transition:
    return Transition(
        obs=np.full((1, *SAMPLE_SHAPE), counter % 256, dtype=np.uint8),
        action=np.zeros((1, 18), dtype=np.float32),
        reward=np.zeros(1, dtype=np.float32),
        is_first=np.array([counter == 0]),
        is_last=np.zeros(1, dtype=bool),
        is_terminal=np.zeros(1, dtype=bool),
        subgoal=np.zeros((1, 256), dtype=np.float32),
        subgoal_code=np.zeros((1, 64), dtype=np.float32),
    )


def _sample_figure() -> dict[str, Any]:
    cfg = ReplayConfig(
        sampler="etbs",
        capacity=SAMPLE_STORED_STEPS,
        batch_size=BATCH_SIZE,
        batch_length=SAMPLE_LENGTH,
    )
    spec = step_spec(SAMPLE_SHAPE, np.uint8, action_dim=18, subgoal_dim=256, code_dim=64)
    buffer = SequenceBuffer(cfg, spec, num_envs=1, seed=0, directory=None)
    for counter in range(SAMPLE_STORED_STEPS):
        buffer.add(_image_step(counter))
    buffer.sample()
    times = []
    for _ in range(SAMPLE_REPEATS):
        start = time.perf_counter()
        buffer.sample()
        times.append(time.perf_counter() - start)
    return {
        "name": "replay_sample",
        "value": 1e3 * statistics.median(times),
        "unit": "ms",
        "sampler": "etbs",
        "batch_shape": [BATCH_SIZE, SAMPLE_LENGTH, *SAMPLE_SHAPE],
        "num_keys": buffer.num_sequences(),
    }


def bench_replay() -> list[dict[str, Any]]:
    """One dict per figure: name, value, unit and the configuration it was measured at."""
    return [*_sampler_figures(), _sample_figure()]
