"""Which stored sequences a batch replays: uniform, naive time-balanced, and ETBS (ALGORITHM.md §6).

A sampler only chooses indices into the buffer's live keys in insertion order (0 = oldest); the
buffer owns the keys, their visit counts and the seeded generator. Every sampler draws a whole
batch of indices per call.

ETBS (efficient time-balanced sampling, §6.2) is the O(1) fast path. Its slow companions here are
:func:`etbs_index_probabilities` (the exact index distribution, for the χ² test) and the naive
count-based :class:`TimeBalancedSampler`, which balances visits directly at O(N) per draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hieros_pl.config import ReplayConfig

LOG_2 = math.log(2.0)
BISECTION_STEPS = 100
"""Halvings of [2, N+2] in :func:`etbs_index_probabilities`; 100 reach float64 resolution."""


class Sampler(Protocol):
    """Chooses which live keys a batch replays."""

    def indices(self, rng: np.random.Generator, visits: np.ndarray, count: int) -> np.ndarray:
        """``count`` key indices in [0, N) drawn with replacement; visits: [N] int64, oldest first.

        Does not change ``visits``; the buffer adds the draws afterwards.
        """
        ...

    def state_dict(self) -> dict[str, Any]:
        """The sampler's settings (samplers keep no other state)."""
        ...


@dataclass(frozen=True)
class UniformSampler:
    """index ~ U{0, …, N−1} (ALGORITHM.md §6.3)."""

    def indices(self, rng: np.random.Generator, visits: np.ndarray, count: int) -> np.ndarray:
        return rng.integers(0, len(visits), size=count, dtype=np.int64)

    def state_dict(self) -> dict[str, Any]:
        return {"name": "uniform"}

    @classmethod
    def from_config(cls, cfg: ReplayConfig, etbs_scale_by_capacity: bool) -> UniformSampler:
        return cls()


@dataclass(frozen=True)
class TimeBalancedSampler:
    """Naive reference: each draw picks key k with probability softmax(−visits_k / temperature).

    The visit counts include the earlier draws of the same call, so a batch rarely repeats a key.
    O(N) per draw; original ``TimeBalanced`` selector with temperature 20.
    """

    visit_temperature: float

    def indices(self, rng: np.random.Generator, visits: np.ndarray, count: int) -> np.ndarray:
        counts = visits.copy()
        uniforms = rng.random(count)
        chosen = np.empty(count, dtype=np.int64)
        for draw in range(count):
            # Shifting by the minimum keeps the largest weight at 1: exp(-visits / 20) underflows
            # to all zeros after ~15k visits otherwise.
            cumulative = np.cumsum(np.exp(-(counts - counts.min()) / self.visit_temperature))
            index = int(np.searchsorted(cumulative, uniforms[draw] * cumulative[-1], side="right"))
            index = min(index, len(counts) - 1)  # u·total rounding up to the total itself
            chosen[draw] = index
            counts[index] += 1
        return chosen

    def state_dict(self) -> dict[str, Any]:
        return {"name": "time_balanced", "visit_temperature": self.visit_temperature}

    @classmethod
    def from_config(cls, cfg: ReplayConfig, etbs_scale_by_capacity: bool) -> TimeBalancedSampler:
        return cls(visit_temperature=cfg.visit_temperature)


def etbs_time_balance(x: np.ndarray, num_keys: np.ndarray | int) -> np.ndarray:
    """F(x) = I(x) − I(2) of ALGORITHM.md §6.2: the CDF of a density ∝ ln(n/y) on [2, n], n = N+2.

    I(y) = y (ln y − ln n − 1) / (2 ln n − n − 2 ln 2 + 2). x in [2, N+2] (float64, any shape
    broadcastable with ``num_keys``); returns F in [0, 1], F(2) = 0, F(n) = 1.
    """
    n = np.add(num_keys, 2.0)
    log_n = np.log(n)
    denominator = 2.0 * log_n - n - 2.0 * LOG_2 + 2.0
    # I(x) − I(2) over their common denominator.
    return (x * (np.log(x) - log_n - 1.0) - 2.0 * (LOG_2 - log_n - 1.0)) / denominator


def etbs_position(
    x: np.ndarray, num_keys: np.ndarray | int, temperature: float, length_scale: np.ndarray | float
) -> np.ndarray:
    """τ·min(F(x)·L_scale, N−1) + (1−τ)(x−2): the continuous position whose floor is the index."""
    balanced = np.minimum(etbs_time_balance(x, num_keys) * length_scale, np.subtract(num_keys, 1))
    return temperature * balanced + (1.0 - temperature) * (x - 2.0)


def etbs_index(
    x: np.ndarray, num_keys: np.ndarray | int, temperature: float, length_scale: np.ndarray | float
) -> np.ndarray:
    """ETBS key index (int64, in [0, N−1]) for x ~ U[2, N+2); broadcasts over x and num_keys.

    index = ⌊τ·min(F(x)·L_scale, N−1) + (1−τ)(x−2)⌋ (ALGORITHM.md §6.2, steps 2-4).
    """
    index = np.floor(etbs_position(x, num_keys, temperature, length_scale)).astype(np.int64)
    # The position lies in [0, N) by construction; the bounds only guard float rounding
    # (x drawn as exactly N+2, or F(x) a hair below 0 next to x = 2).
    return np.minimum(np.maximum(index, 0), np.subtract(num_keys, 1))


def etbs_index_probabilities(num_keys: int, temperature: float, length_scale: float) -> np.ndarray:
    """Exact P(index = k) for k = 0 … N−1 of the ETBS draw: [N] float64 summing to 1.

    The slow reference of the sampler, written from ALGORITHM.md §6.2 independently of
    :func:`etbs_index`. The position g(x) is continuous and non-decreasing in x ~ U[2, N+2), so
    P(index < k) = (x_k − 2) / N with x_k = inf{x : g(x) ≥ k}, found by bisection.
    """
    N = num_keys
    n = N + 2

    def integral(y: np.ndarray | float) -> np.ndarray:
        return y * (np.log(y) - math.log(n) - 1) / (2 * math.log(n) - n - 2 * math.log(2) + 2)

    def position(x: np.ndarray) -> np.ndarray:
        balanced = np.minimum((integral(x) - integral(2.0)) * length_scale, N - 1)
        return temperature * balanced + (1 - temperature) * (x - 2)

    thresholds = np.arange(1, N, dtype=np.float64)
    low = np.full(N - 1, 2.0)
    high = np.full(N - 1, n, dtype=np.float64)
    for _ in range(BISECTION_STEPS):
        middle = 0.5 * (low + high)
        reached = position(middle) >= thresholds
        high = np.where(reached, middle, high)
        low = np.where(reached, low, middle)
    edges = np.concatenate([[2.0], high, [n]])
    return np.diff(edges) / N


@dataclass(frozen=True)
class EfficientTimeBalancedSampler:
    """ETBS (ALGORITHM.md §6.2): O(1) per draw; τ = 0 uniform, τ = 1 fully time-balanced.

    ``scale_by_capacity`` restores the original's L_scale = capacity (compat D4); the default
    L_scale is the current number of keys N.
    """

    temperature: float
    capacity: int
    scale_by_capacity: bool = False

    def indices(self, rng: np.random.Generator, visits: np.ndarray, count: int) -> np.ndarray:
        N = len(visits)
        length_scale = self.capacity if self.scale_by_capacity else N
        x = rng.uniform(2.0, N + 2.0, size=count)
        return etbs_index(x, N, self.temperature, length_scale)

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": "etbs",
            "temperature": self.temperature,
            "capacity": self.capacity,
            "scale_by_capacity": self.scale_by_capacity,
        }

    @classmethod
    def from_config(
        cls, cfg: ReplayConfig, etbs_scale_by_capacity: bool
    ) -> EfficientTimeBalancedSampler:
        return cls(cfg.temperature, cfg.capacity, etbs_scale_by_capacity)


SAMPLERS: dict[str, type[UniformSampler | TimeBalancedSampler | EfficientTimeBalancedSampler]] = {
    "uniform": UniformSampler,
    "time_balanced": TimeBalancedSampler,
    "etbs": EfficientTimeBalancedSampler,
}


def make_sampler(cfg: ReplayConfig, etbs_scale_by_capacity: bool = False) -> Sampler:
    """The sampler named by ``cfg.sampler`` (validated against config.SAMPLERS at composition)."""
    if cfg.sampler not in SAMPLERS:
        raise ValueError(f"replay.sampler must be one of {sorted(SAMPLERS)}, got '{cfg.sampler}'")
    return SAMPLERS[cfg.sampler].from_config(cfg, etbs_scale_by_capacity)
