"""Bounded disk: chunk files whose rows the ring overwrote are deleted; corrupt chunks are named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hieros_pl.errors import CheckpointError
from hieros_pl.replay.buffer import FIELDS, SequenceBuffer
from hieros_pl.replay.chunks import chunk_path, read_chunk, write_chunk
from tests.conftest import compose
from tests.replay.test_buffer import counter_spec, counter_step


def test_chunk_files_stay_proportional_to_capacity_over_a_long_run(tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        compose("replay=uniform").replay, capacity=64, chunk_size=8, batch_length=4
    )
    buffer = SequenceBuffer(cfg, counter_spec(), num_envs=2, seed=0, directory=tmp_path)
    every, steps = 40, 3000
    state = {}
    most = 0
    for step in range(steps):
        buffer.add(counter_step(np.full(2, step)))
        if (step + 1) % every == 0:
            state = buffer.state_dict()
            most = max(most, max(len(list(tmp_path.glob(f"env{e}/*.npz"))) for e in (0, 1)))
    # capacity + the steps between two saved states + a partial chunk on each side
    assert most <= (64 + every) // 8 + 2
    assert steps // 8 > 10 * most  # without deletion every chunk ever written would be there
    restored = SequenceBuffer(cfg, counter_spec(), num_envs=2, seed=0, directory=tmp_path)
    restored.load_state_dict(state)
    for name in FIELDS:
        assert np.array_equal(restored.rings[name], buffer.rings[name]), name


def test_a_truncated_chunk_file_is_named(tmp_path: Path) -> None:
    arrays = {"reward": np.arange(100, dtype=np.float32)}
    write_chunk(tmp_path, 0, 3, arrays)
    path = chunk_path(tmp_path, 0, 3)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match=rf"replay chunk file {path} is truncated or corrupt"):
        read_chunk(tmp_path, 0, 3)


def test_a_chunk_holding_a_pickled_object_is_refused(tmp_path: Path) -> None:
    path = chunk_path(tmp_path, 0, 0)
    path.parent.mkdir(parents=True)
    np.savez(path, reward=np.array([{"code": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match=str(path)):
        read_chunk(tmp_path, 0, 0)
