"""Chunk files: names, contents, atomic writes and the errors a resume can hit."""

from __future__ import annotations

import dataclasses
import errno
import re
from pathlib import Path

import numpy as np
import pytest

from hieros_pl.config import ReplayConfig
from hieros_pl.replay import chunks
from hieros_pl.replay.buffer import SequenceBuffer
from hieros_pl.replay.chunks import chunk_path, read_chunk, write_chunk
from tests.conftest import compose
from tests.replay.test_buffer import counter_spec, fill


@pytest.fixture(scope="module")
def base_replay() -> ReplayConfig:
    return compose("replay=uniform").replay


def disk_buffer(base: ReplayConfig, directory: Path, num_envs: int = 2) -> SequenceBuffer:
    cfg = dataclasses.replace(base, capacity=8, batch_length=3, chunk_size=5)
    return SequenceBuffer(cfg, counter_spec(), num_envs, seed=0, directory=directory)


def test_every_chunk_size_steps_a_chunk_file_is_written(
    base_replay: ReplayConfig, tmp_path: Path
) -> None:
    buffer = disk_buffer(base_replay, tmp_path)
    fill(buffer, np.array([[True, step % 2 == 0] for step in range(12)]))  # 12 and 6 steps
    files = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.npz"))
    assert files == ["env0/chunk_000000.npz", "env0/chunk_000001.npz", "env1/chunk_000000.npz"]
    second = read_chunk(tmp_path, 0, 1)
    np.testing.assert_array_equal(second["reward"], np.arange(5, 10))
    assert second["obs"].shape == (5, 2) and second["is_first"].dtype == np.bool_
    buffer.flush()
    np.testing.assert_array_equal(read_chunk(tmp_path, 0, 2)["reward"], [10, 11])
    np.testing.assert_array_equal(read_chunk(tmp_path, 1, 1)["reward"], [5])
    assert not list(tmp_path.rglob("*.tmp"))


def test_missing_chunk_names_the_file(base_replay: ReplayConfig, tmp_path: Path) -> None:
    buffer = disk_buffer(base_replay, tmp_path)
    fill(buffer, np.ones((12, 2), dtype=bool))
    state = buffer.state_dict()
    missing = chunk_path(tmp_path, 1, 2)
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        disk_buffer(base_replay, tmp_path).load_state_dict(state)


def test_chunks_outside_the_ring_window_are_not_needed(
    base_replay: ReplayConfig, tmp_path: Path
) -> None:
    buffer = disk_buffer(base_replay, tmp_path)
    fill(buffer, np.ones((23, 2), dtype=bool))  # the ring holds steps 15 … 22: chunks 3 and 4
    state = buffer.state_dict()
    for chunk in (0, 1, 2):
        chunk_path(tmp_path, 0, chunk).unlink()
    restored = disk_buffer(base_replay, tmp_path)
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.rings["reward"][0], buffer.rings["reward"][0])


def test_full_disk_names_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(chunks.np, "savez", no_space)
    with pytest.raises(OSError, match=re.escape(str(tmp_path))) as raised:
        write_chunk(tmp_path, 0, 3, {"reward": np.zeros(2, dtype=np.float32)})
    assert raised.value.errno == errno.ENOSPC
    assert not chunk_path(tmp_path, 0, 3).exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_write_replaces_a_partial_chunk(tmp_path: Path) -> None:
    write_chunk(tmp_path, 0, 0, {"reward": np.arange(2, dtype=np.float32)})
    write_chunk(tmp_path, 0, 0, {"reward": np.arange(5, dtype=np.float32)})
    np.testing.assert_array_equal(read_chunk(tmp_path, 0, 0)["reward"], np.arange(5))
