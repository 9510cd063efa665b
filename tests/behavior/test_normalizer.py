"""Return normaliser EMA (ALGORITHM.md §4.6)."""

from __future__ import annotations

import torch

from hieros_pl.behavior.normalizer import ReturnNormalizer


def test_ema_after_two_updates() -> None:
    normalizer = ReturnNormalizer(rate=0.01)
    # 0..100: the 5th/95th percentiles with linear interpolation are exactly 5 and 95.
    normalizer.update(torch.arange(101, dtype=torch.float32))
    torch.testing.assert_close(normalizer.low, torch.tensor(0.05))
    torch.testing.assert_close(normalizer.high, torch.tensor(0.95))
    # 0..10 by 0.5: percentiles 0.5 and 9.5.
    normalizer.update(torch.arange(21, dtype=torch.float32).reshape(3, 7) * 0.5)
    torch.testing.assert_close(normalizer.low, torch.tensor(0.99 * 0.05 + 0.01 * 0.5))
    torch.testing.assert_close(normalizer.high, torch.tensor(0.99 * 0.95 + 0.01 * 9.5))
    torch.testing.assert_close(normalizer.scale(), torch.tensor(1.0))


def test_linear_interpolation_between_samples() -> None:
    normalizer = ReturnNormalizer(rate=1.0)
    normalizer.update(torch.tensor([0.0, 10.0, 20.0]))  # q05 = 0.1 * 10, q95 = 10 + 0.9 * 10
    torch.testing.assert_close(normalizer.low, torch.tensor(1.0))
    torch.testing.assert_close(normalizer.high, torch.tensor(19.0))
    torch.testing.assert_close(normalizer.scale(), torch.tensor(18.0))


def test_scale_at_least_one_and_statistics_in_state_dict() -> None:
    normalizer = ReturnNormalizer(rate=0.5)
    torch.testing.assert_close(normalizer.scale(), torch.tensor(1.0))
    normalizer.update(torch.linspace(-100.0, 100.0, 201))
    state = normalizer.state_dict()
    assert set(state) == {"low", "high"}
    restored = ReturnNormalizer(rate=0.5)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.scale(), normalizer.scale())
    # percentiles -90 and 90, halfway from (0, 0): low -45, high 45
    torch.testing.assert_close(restored.scale(), torch.tensor(90.0))
