"""Visit histograms: uniform over-visits old sequences; ETBS with τ = 1 flattens the profile."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from hieros_pl.errors import CheckpointError
from hieros_pl.replay.visits import age_histogram, run_visits, simulate_visits
from tests.conftest import compose


def test_uniform_overvisits_old_sequences_and_etbs_balances_them() -> None:
    cfg = compose().replay
    uniform = simulate_visits(replace(cfg, sampler="uniform"), 400, 400 * 16)
    etbs = simulate_visits(replace(cfg, sampler="etbs", temperature=1.0), 400, 400 * 16)
    assert uniform.sum() == etbs.sum() == 400 * 16
    uniform_ages, etbs_ages = age_histogram(uniform), age_histogram(etbs)
    # Uniform: a sequence inserted at n is visited ~ sum_{m>=n} 16/m, so the oldest tenth gets
    # several times the mean and the newest tenth a small fraction of it.
    assert uniform_ages[0] > 2.0 and uniform_ages[-1] < 0.3
    # ETBS (τ = 1) moves visits from old to new sequences: a flatter age profile.
    assert etbs_ages[0] < 0.7 * uniform_ages[0] and etbs_ages[-1] > 3 * uniform_ages[-1]
    assert np.ptp(etbs_ages) < 0.6 * np.ptp(uniform_ages)
    assert age_histogram(np.array([1, 1, 3, 3]), bins=2).tolist() == [0.5, 1.5]


def test_run_visits_refuses_a_checkpoint_that_would_execute_code(tmp_path: Path) -> None:
    """Reading replay statistics goes through the checked, weights-only checkpoint load."""
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir()
    torch.save({"state_dict": {}, "payload": Fraction(1, 3)}, checkpoint)
    with pytest.raises(CheckpointError, match=f"refusing checkpoint {checkpoint}"):
        run_visits(tmp_path)
