"""Batch and HierarchyBatch: the shape contract and device moves."""

from __future__ import annotations

import pytest
import torch

from hieros_pl.data.batch import Batch, HierarchyBatch


def make_batch(B: int = 2, T: int = 3) -> Batch:
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    return Batch(
        obs=torch.zeros(B, T, 4, 4, 3, dtype=torch.uint8),
        action=torch.zeros(B, T, 5),
        reward=torch.arange(B * T, dtype=torch.float32).reshape(B, T),
        is_first=is_first,
        is_last=torch.zeros(B, T, dtype=torch.bool),
        is_terminal=torch.zeros(B, T, dtype=torch.bool),
        subgoal=torch.zeros(B, T, 0),
        subgoal_code=torch.zeros(B, T, 16),
    )


def test_check_accepts_the_contract_and_names_violations() -> None:
    batch = make_batch()
    batch.check()
    assert batch.shape == (2, 3)
    batch.action = torch.zeros(2, 4, 5)
    with pytest.raises(AssertionError, match="action"):
        batch.check()
    batch = make_batch()
    batch.is_first[1, 0] = False
    with pytest.raises(AssertionError, match="is_first"):
        batch.check()
    batch = make_batch()
    batch.reward = batch.reward.double()
    with pytest.raises(AssertionError, match="reward"):
        batch.check()


def test_to_moves_every_field_and_keeps_missing_levels() -> None:
    hierarchy = HierarchyBatch(call_index=4, levels=[make_batch(), None])
    moved = hierarchy.to(torch.device("meta"))
    assert moved.call_index == 4 and moved.levels[1] is None
    level = moved.levels[0]
    assert level is not None
    assert all(value.device.type == "meta" for value in vars(level).values())
    assert level.obs.dtype == torch.uint8 and level.obs.shape == (2, 3, 4, 4, 3)
