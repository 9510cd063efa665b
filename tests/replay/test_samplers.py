"""Samplers: ETBS against its exact distribution (χ²), the time-balanced reference, and the
growth experiment of ALGORITHM.md §6.2 (visits per stored sequence by insertion time)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from scipy import stats

from hieros_pl.config import SAMPLERS as CONFIG_SAMPLERS
from hieros_pl.config import ReplayConfig
from hieros_pl.replay.samplers import (
    SAMPLERS,
    EfficientTimeBalancedSampler,
    Sampler,
    TimeBalancedSampler,
    UniformSampler,
    etbs_index,
    etbs_index_probabilities,
    make_sampler,
)
from tests.conftest import compose

DRAWS_PER_STEP = 16
CAPACITY = 100_000
"""L_scale of the capacity-scaled ETBS (compat D4) in the χ² test."""


@pytest.fixture(scope="module")
def base_replay() -> ReplayConfig:
    return compose("replay=etbs").replay


def chi_square_p_value(counts: np.ndarray, probabilities: np.ndarray) -> float:
    """Pearson χ² p-value, with neighbouring indices merged until each bin expects ≥ 5 draws."""
    expected = probabilities * counts.sum()
    edges = [0]
    running = 0.0
    for index, value in enumerate(expected):
        running += value
        if running >= 5.0:
            edges.append(index + 1)
            running = 0.0
    edges[-1] = len(expected)  # the remainder joins the last bin
    observed_bins = np.add.reduceat(counts, edges[:-1])
    expected_bins = np.add.reduceat(expected, edges[:-1])
    if len(expected_bins) == 1:
        return 1.0 if observed_bins[0] == counts.sum() else 0.0
    statistic = float(np.sum((observed_bins - expected_bins) ** 2 / expected_bins))
    return float(stats.chi2.sf(statistic, df=len(expected_bins) - 1))


@pytest.mark.parametrize("num_keys", [50, 1000])
@pytest.mark.parametrize("temperature", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("scale_by_capacity", [False, True])
def test_etbs_matches_its_exact_distribution(
    num_keys: int, temperature: float, scale_by_capacity: bool
) -> None:
    """χ² goodness of fit at a fixed seed against P(index = k) obtained by integrating F."""
    sampler = EfficientTimeBalancedSampler(temperature, CAPACITY, scale_by_capacity)
    rng = np.random.default_rng(1234)
    indices = sampler.indices(rng, np.zeros(num_keys, dtype=np.int64), 200_000)
    assert indices.dtype == np.int64
    assert indices.min() >= 0 and indices.max() <= num_keys - 1
    probabilities = etbs_index_probabilities(
        num_keys, temperature, CAPACITY if scale_by_capacity else num_keys
    )
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-12)
    counts = np.bincount(indices, minlength=num_keys)
    assert chi_square_p_value(counts, probabilities) > 1e-3


@pytest.mark.parametrize("num_keys", [1, 2, 50, 1000])
def test_etbs_at_zero_temperature_is_uniform(num_keys: int) -> None:
    for length_scale in (num_keys, CAPACITY):
        probabilities = etbs_index_probabilities(num_keys, 0.0, length_scale)
        np.testing.assert_allclose(probabilities, np.full(num_keys, 1 / num_keys), atol=1e-12)


def test_etbs_probabilities_match_the_spec_table() -> None:
    """ALGORITHM.md §6.2: P(index < 0.3N) and the index quartiles per setting."""
    N = 10_000
    for temperature, length_scale, below, quartiles in [
        (0.3, N, 0.20, (0.35, 0.60, 0.815)),
        (1.0, N, 0.09, (0.60, 0.85, 0.965)),
        (0.3, 1_000_000, 0.001, (0.475, 0.65, 0.82)),
    ]:
        cumulative = np.cumsum(etbs_index_probabilities(N, temperature, length_scale))
        assert cumulative[int(0.3 * N) - 1] == pytest.approx(below, abs=0.01)
        found = np.searchsorted(cumulative, [0.25, 0.5, 0.75]) / N
        np.testing.assert_allclose(found, quartiles, atol=0.01)


def test_etbs_index_stays_in_range_at_the_interval_ends() -> None:
    for num_keys in (1, 2, 7, 1_000_000):
        x = np.array([2.0, np.nextafter(2.0, 3.0), num_keys + 2.0, np.nextafter(num_keys + 2.0, 0)])
        for temperature in (0.0, 0.3, 1.0):
            for length_scale in (num_keys, CAPACITY):
                index = etbs_index(x, num_keys, temperature, length_scale)
                assert index[0] == 0 and index.max() <= num_keys - 1
                if length_scale >= num_keys:
                    assert index[-1] == num_keys - 1


def test_uniform_sampler_is_uniform() -> None:
    indices = UniformSampler().indices(np.random.default_rng(5), np.zeros(40, np.int64), 40_000)
    counts = np.bincount(indices, minlength=40)
    assert chi_square_p_value(counts, np.full(40, 1 / 40)) > 1e-3


def test_time_balanced_draws_follow_the_visit_softmax() -> None:
    visits = np.array([0, 20, 40, 10], dtype=np.int64)
    sampler = TimeBalancedSampler(visit_temperature=20.0)
    rng = np.random.default_rng(7)
    counts = np.bincount([sampler.indices(rng, visits, 1)[0] for _ in range(4000)], minlength=4)
    weights = np.exp(-visits / 20.0)
    assert chi_square_p_value(counts, weights / weights.sum()) > 1e-3


def test_time_balanced_counts_the_draws_of_the_same_batch() -> None:
    """At a tiny temperature each draw takes a least-visited key, so a batch never repeats one."""
    sampler = TimeBalancedSampler(visit_temperature=1e-3)
    visits = np.array([3, 0, 0, 1, 0, 2], dtype=np.int64)
    chosen = sampler.indices(np.random.default_rng(0), visits, 6)
    assert sorted(chosen[:3].tolist()) == [1, 2, 4]
    assert len(set(chosen[3:].tolist())) == 3 and set(chosen[3:].tolist()) <= {1, 2, 3, 4}
    assert visits.tolist() == [3, 0, 0, 1, 0, 2]  # the caller's counts are left alone


def test_sampler_registry_matches_the_config(base_replay: ReplayConfig) -> None:
    assert set(SAMPLERS) == set(CONFIG_SAMPLERS)
    etbs = make_sampler(base_replay, etbs_scale_by_capacity=True)
    assert etbs == EfficientTimeBalancedSampler(base_replay.temperature, base_replay.capacity, True)
    assert make_sampler(dataclasses.replace(base_replay, sampler="uniform")) == UniformSampler()
    with pytest.raises(ValueError, match=r"replay\.sampler"):
        make_sampler(dataclasses.replace(base_replay, sampler="prioritized"))


# ----------------------------------------------------------------------------------------------
# growth experiment


def visits_after_growth(sampler: Sampler, steps: int, seed: int = 0) -> np.ndarray:
    """A buffer that gains one key per step, with a batch of 16 drawn after every insert.

    Returns the total visits of each key, oldest first.
    """
    rng = np.random.default_rng(seed)
    visits = np.zeros(steps, dtype=np.int64)
    for num_keys in range(1, steps + 1):
        drawn = sampler.indices(rng, visits[:num_keys], DRAWS_PER_STEP)
        np.add.at(visits, drawn, 1)
    return visits


def decile_spread(visits: np.ndarray) -> float:
    """Mean visits of the most- over the least-visited tenth by insertion time (newest left out)."""
    means = [part.mean() for part in np.array_split(visits.astype(np.float64), 10)[:9]]
    return max(means) / min(means)


def test_growth_experiment_visit_spread() -> None:
    """Uniform over-samples old data about 20×; ETBS flattens it as τ rises (ALGORITHM.md §6.2)."""
    steps = 20_000
    uniform = decile_spread(visits_after_growth(UniformSampler(), steps))
    assert 10.0 < uniform < 40.0
    etbs = [
        decile_spread(visits_after_growth(EfficientTimeBalancedSampler(tau, CAPACITY), steps))
        for tau in (0.0, 0.3, 0.7, 1.0)
    ]
    assert etbs[0] == pytest.approx(uniform, rel=0.15)  # τ = 0 is uniform
    assert all(later < earlier for earlier, later in itertools.pairwise(etbs)), etbs
    assert etbs[-1] <= uniform / 4


def test_growth_experiment_time_balanced_reference() -> None:
    """The O(N) count-based reference flattens visits too (fewer steps: it is O(N) per draw).

    At the original visit temperature (20) it is flatter than uniform but not than ETBS τ = 1,
    because per-key visit differences of a few tens barely change exp(-visits / 20); at a
    temperature of 1 it is flatter than both.
    """
    steps = 2000
    uniform = decile_spread(visits_after_growth(UniformSampler(), steps))
    etbs = decile_spread(visits_after_growth(EfficientTimeBalancedSampler(1.0, CAPACITY), steps))
    original = decile_spread(visits_after_growth(TimeBalancedSampler(20.0), steps))
    assert original < uniform / 2
    sharp = decile_spread(visits_after_growth(TimeBalancedSampler(1.0), steps))
    assert sharp < etbs / 2
