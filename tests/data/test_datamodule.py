"""ReplayDataModule: stride schedule, readiness, and exact resume under Lightning's prefetch."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hieros_pl.config import ReplayConfig
from hieros_pl.data.batch import HierarchyBatch
from hieros_pl.data.datamodule import ReplayDataModule
from hieros_pl.replay.buffer import SequenceBuffer, Transition, step_spec
from tests.conftest import compose

STRIDES = [1, 4, 16]
OBS_WIDTHS = [3, 5, 7]
"""Per-level vector observation widths, so a batch's level is visible from its shape."""


@pytest.fixture(scope="module")
def base_replay() -> ReplayConfig:
    cfg = compose("replay=etbs").replay
    return dataclasses.replace(cfg, capacity=40, batch_length=6, batch_size=4, chunk_size=9)


def make_buffers(base: ReplayConfig, directory: Path | None, seed: int = 0) -> list[SequenceBuffer]:
    return [
        SequenceBuffer(
            base,
            step_spec((width,), np.float32, action_dim=2, subgoal_dim=1, code_dim=3),
            num_envs=2,
            seed=seed + level,
            directory=None if directory is None else directory / f"level{level}",
        )
        for level, width in enumerate(OBS_WIDTHS)
    ]


def add_steps(buffers: list[SequenceBuffer], first: int, count: int) -> None:
    """Level i stores a row every 2^i steps (and env 1 skips every third step)."""
    for step in range(first, first + count):
        for level, buffer in enumerate(buffers):
            if step % 2**level:
                continue
            width = OBS_WIDTHS[level]
            value = np.float32(step)
            buffer.add(
                Transition(
                    obs=np.full((2, width), value, dtype=np.float32),
                    action=np.full((2, 2), value, dtype=np.float32),
                    reward=np.full(2, value, dtype=np.float32),
                    is_first=np.array([step % 11 == 0, step % 13 == 0]),
                    is_last=np.array([step % 11 == 10, False]),
                    is_terminal=np.zeros(2, dtype=bool),
                    subgoal=np.full((2, 1), value, dtype=np.float32),
                    subgoal_code=np.full((2, 3), -value, dtype=np.float32),
                ),
                env_mask=np.array([True, step % 3 != 0]),
            )


def batches(datamodule: ReplayDataModule) -> Iterator[HierarchyBatch]:
    return iter(datamodule.train_dataloader())


def assert_equal_batches(left: HierarchyBatch, right: HierarchyBatch) -> None:
    assert left.call_index == right.call_index
    assert [batch is None for batch in left.levels] == [batch is None for batch in right.levels]
    for ours, theirs in zip(left.levels, right.levels):
        if ours is None or theirs is None:
            continue
        for name, value in vars(ours).items():
            torch.testing.assert_close(getattr(theirs, name), value, rtol=0, atol=0)


def test_levels_follow_the_stride_schedule(base_replay: ReplayConfig) -> None:
    buffers = make_buffers(base_replay, None)
    add_steps(buffers, 0, 60)  # level 2 holds 30 and 20 rows: ready
    datamodule = ReplayDataModule(buffers, STRIDES)
    iterator = batches(datamodule)
    for call in range(33):
        batch = next(iterator)
        assert isinstance(batch, HierarchyBatch) and batch.call_index == call
        present = [batch.levels[level] is not None for level in range(3)]
        assert present == [call % stride == 0 for stride in STRIDES]
        for level, level_batch in enumerate(batch.levels):
            if level_batch is not None:
                level_batch.check()
                assert level_batch.obs.shape == (4, 6, OBS_WIDTHS[level])


def test_a_level_that_is_not_ready_is_left_out(base_replay: ReplayConfig) -> None:
    buffers = make_buffers(base_replay, None)
    add_steps(buffers, 0, 24)  # level 1: 12 and 8 rows -> 7 + 3 keys, ready
    buffers[2] = make_buffers(base_replay, None)[2]  # a fresh, empty top level
    batch = next(batches(ReplayDataModule(buffers, STRIDES)))
    assert batch.levels[0] is not None and batch.levels[1] is not None
    assert batch.levels[2] is None


def test_no_ready_level_asks_for_a_prefill(base_replay: ReplayConfig) -> None:
    datamodule = ReplayDataModule(make_buffers(base_replay, None), STRIDES)
    with pytest.raises(RuntimeError, match="prefilled before fit"):
        next(batches(datamodule))


def test_strides_must_match_the_buffers(base_replay: ReplayConfig) -> None:
    with pytest.raises(ValueError, match="one level stride per replay buffer"):
        ReplayDataModule(make_buffers(base_replay, None), [1, 4])


def test_resume_yields_the_batches_of_an_uninterrupted_run(
    base_replay: ReplayConfig, tmp_path: Path
) -> None:
    """Lightning's order: fetch(0), fetch(1), env(0), train(0), fetch(2), env(1), train(1), …

    A checkpoint after train(n) holds the replay after fetch(n+1) and env(n). The resumed run
    realigns with ``set_call_index(n + 1)`` and must yield exactly what the uninterrupted run
    yields from call n+1 on, while env steps keep arriving between fetches.
    """
    checkpoint_after, calls = 6, 14
    original = ReplayDataModule(make_buffers(base_replay, tmp_path / "run"), STRIDES)
    add_steps(original.buffers, 0, 40)
    iterator = batches(original)
    yielded = [next(iterator)]
    state = None
    for call in range(calls):
        yielded.append(next(iterator))  # prefetch of call + 1
        add_steps(original.buffers, 40 + 3 * call, 3)  # env steps of this call
        if call == checkpoint_after:
            torch.save({"datamodule": original.state_dict()}, tmp_path / "last.ckpt")
            shutil.copytree(tmp_path / "run", tmp_path / "resumed")
            state = torch.load(tmp_path / "last.ckpt", weights_only=True)["datamodule"]
    assert state is not None

    resumed = ReplayDataModule(make_buffers(base_replay, tmp_path / "resumed", seed=7), STRIDES)
    resumed.load_state_dict(state)
    resumed.set_call_index(checkpoint_after + 1)
    iterator = batches(resumed)
    replayed = [next(iterator)]
    for call in range(checkpoint_after + 1, calls):
        replayed.append(next(iterator))
        add_steps(resumed.buffers, 40 + 3 * call, 3)
    assert [batch.call_index for batch in replayed] == list(range(checkpoint_after + 1, calls + 1))
    for left, right in zip(yielded[checkpoint_after + 1 :], replayed):
        assert_equal_batches(left, right)


def test_resume_without_rewind_continues_with_fresh_draws(
    base_replay: ReplayConfig, tmp_path: Path
) -> None:
    original = ReplayDataModule(make_buffers(base_replay, tmp_path / "run"), STRIDES)
    add_steps(original.buffers, 0, 40)
    iterator = batches(original)
    for _ in range(5):
        next(iterator)
    state = original.state_dict()
    expected = [next(iterator) for _ in range(4)]
    resumed = ReplayDataModule(make_buffers(base_replay, tmp_path / "run", seed=3), STRIDES)
    resumed.load_state_dict(state)
    iterator = batches(resumed)
    for left in expected:
        assert_equal_batches(left, next(iterator))


def test_rewinding_past_the_remembered_calls_raises(base_replay: ReplayConfig) -> None:
    datamodule = ReplayDataModule(make_buffers(base_replay, None), STRIDES)
    add_steps(datamodule.buffers, 0, 40)
    iterator = batches(datamodule)
    for _ in range(10):
        next(iterator)
    with pytest.raises(ValueError, match=re.escape("rewind the replay dataset to call 2")):
        datamodule.set_call_index(2)
    datamodule.set_call_index(12)  # skipping ahead is allowed
    assert next(iterator).call_index == 12
