"""SequenceBuffer: rings, keys, wrap-around, masks, flags and visit counts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hieros_pl.config import ReplayConfig
from hieros_pl.replay import buffer as buffer_module
from hieros_pl.replay.buffer import SequenceBuffer, SequenceKeys, Transition, step_spec
from tests.conftest import compose

EPISODE = 7
"""Counter-stamped streams start an episode every EPISODE steps."""


@pytest.fixture(scope="module")
def base_replay() -> ReplayConfig:
    return compose("replay=uniform").replay


def counter_spec() -> dict:
    return step_spec((2,), np.float32, action_dim=1, subgoal_dim=0, code_dim=2)


def counter_step(counters: np.ndarray) -> Transition:
    """Step whose every field encodes the per-env step counter, so rows can be checked."""
    E = len(counters)
    count = counters.astype(np.float32)
    return Transition(
        obs=np.stack([np.arange(E, dtype=np.float32), count], axis=1),
        action=count[:, None].copy(),
        reward=count.copy(),
        is_first=counters % EPISODE == 0,
        is_last=counters % EPISODE == EPISODE - 1,
        is_terminal=counters % (2 * EPISODE) == 2 * EPISODE - 1,
        subgoal=np.zeros((E, 0), dtype=np.float32),
        subgoal_code=np.stack([count, -count], axis=1),
    )


def make_buffer(base: ReplayConfig, num_envs: int = 1, **overrides: Any) -> SequenceBuffer:
    cfg = dataclasses.replace(base, **overrides)
    return SequenceBuffer(cfg, counter_spec(), num_envs=num_envs, seed=0, directory=None)


def fill(buffer: SequenceBuffer, masks: np.ndarray) -> np.ndarray:
    """Add one counter step per row of ``masks`` [steps, E]; returns the per-env counters."""
    counters = np.zeros(buffer.num_envs, dtype=np.int64)
    for mask in masks:
        buffer.add(counter_step(counters), env_mask=mask)
        counters += mask
    return counters


def expected_keys(written: np.ndarray, capacity: int, length: int) -> dict[int, list[int]]:
    """Start steps of the sequences each stream must hold, oldest first."""
    return {
        env: list(range(max(0, int(count) - capacity), int(count) - length + 1))
        for env, count in enumerate(written)
    }


def check_rows(batch_values: dict[str, torch.Tensor], env: np.ndarray, start: np.ndarray) -> None:
    """Every row of every sequence holds the counter start + t of its own stream."""
    T = batch_values["reward"].shape[1]
    counters = start[:, None] + np.arange(T)  # [B, T]
    np.testing.assert_array_equal(batch_values["reward"].numpy(), counters)
    np.testing.assert_array_equal(batch_values["obs"][..., 1].numpy(), counters)
    np.testing.assert_array_equal(
        batch_values["obs"][..., 0].numpy(), np.repeat(env[:, None], T, 1)
    )
    np.testing.assert_array_equal(batch_values["action"][..., 0].numpy(), counters)
    np.testing.assert_array_equal(batch_values["subgoal_code"][..., 1].numpy(), -counters)
    is_first = counters % EPISODE == 0
    is_first[:, 0] = True
    np.testing.assert_array_equal(batch_values["is_first"].numpy(), is_first)
    np.testing.assert_array_equal(batch_values["is_last"].numpy(), counters % EPISODE == 6)
    terminal = counters % (2 * EPISODE) == 2 * EPISODE - 1
    np.testing.assert_array_equal(batch_values["is_terminal"].numpy(), terminal)


@given(
    capacity=st.integers(1, 24),
    length=st.integers(1, 6),
    num_envs=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    steps=st.integers(0, 90),
    density=st.floats(0.2, 1.0),
)
def test_keys_and_samples_track_the_write_head(
    base_replay: ReplayConfig,
    capacity: int,
    length: int,
    num_envs: int,
    seed: int,
    steps: int,
    density: float,
) -> None:
    length = min(length, capacity)
    buffer = make_buffer(
        base_replay, num_envs, capacity=capacity, batch_length=length, batch_size=5
    )
    masks = np.random.default_rng(seed).random((steps, num_envs)) < density
    written = np.zeros(num_envs, dtype=np.int64)
    created: list[tuple[int, int]] = []
    for mask in masks:
        buffer.add(counter_step(written), env_mask=mask)
        for stored in np.flatnonzero(mask).tolist():
            written[stored] += 1
            if written[stored] >= length:
                created.append((stored, int(written[stored]) - length))
        live = buffer.keys.live()
        held = expected_keys(written, capacity, length)
        for env in range(num_envs):
            np.testing.assert_array_equal(live["start"][live["env"] == env], held[env])
        # insertion order across streams: the live keys are the created ones that survive
        survivors = [key for key in created if key[1] in held[key[0]]]
        assert list(zip(live["env"].tolist(), live["start"].tolist())) == survivors
        assert buffer.num_sequences() == sum(len(starts) for starts in held.values())
        if buffer.num_sequences():
            keys = buffer.draw()
            batch = buffer.gather(keys)
            assert batch.shape == (5, length)
            assert np.all(keys.start >= written[keys.env] - capacity)
            check_rows(vars(batch), keys.env, keys.start)


def test_wrap_around_keeps_only_the_last_capacity_steps(base_replay: ReplayConfig) -> None:
    buffer = make_buffer(base_replay, capacity=10, batch_length=3, batch_size=64)
    fill(buffer, np.ones((25, 1), dtype=bool))
    assert buffer.keys.live()["start"].tolist() == list(range(15, 23))
    assert buffer.total_steps() == 25
    batch = buffer.sample()
    starts = batch.reward[:, 0].numpy().astype(np.int64)
    assert set(starts.tolist()) == set(range(15, 23))
    check_rows(vars(batch), np.zeros(64, dtype=np.int64), starts)


def test_stream_is_each_envs_stored_rows_in_time_order(base_replay: ReplayConfig) -> None:
    buffer = make_buffer(base_replay, num_envs=2, capacity=10, batch_length=3)
    masks = np.ones((25, 2), dtype=bool)
    masks[:8, 1] = False  # env 1 writes 17 rows: its ring wraps at a different place
    fill(buffer, masks)
    for env, written in ((0, 25), (1, 17)):
        stream = buffer.stream(env)
        assert stream["reward"].tolist() == list(range(written - 10, written))
        assert stream["obs"][:, 0].tolist() == [env] * 10
        assert stream["is_first"].tolist() == [
            step % EPISODE == 0 for step in range(written - 10, written)
        ]
    short = make_buffer(base_replay, capacity=10, batch_length=3)
    fill(short, np.ones((4, 1), dtype=bool))
    assert short.stream(0)["reward"].tolist() == [0, 1, 2, 3]


def test_episode_flags_survive_storage(base_replay: ReplayConfig) -> None:
    buffer = make_buffer(base_replay, num_envs=2, capacity=40, batch_length=16)
    fill(buffer, np.ones((40, 2), dtype=bool))
    keys = SequenceKeys(env=np.array([0, 1, 1]), start=np.array([3, 6, 24]))
    batch = buffer.gather(keys)
    assert batch.is_first[:, 0].all()  # forced on row 0 only
    assert batch.is_first[:, 1:].sum() == 7  # counters 7, 14 | 7, 14, 21 | 28, 35
    check_rows(vars(batch), keys.env, keys.start)


def test_masked_streams_advance_independently(base_replay: ReplayConfig) -> None:
    buffer = make_buffer(base_replay, num_envs=2, capacity=6, batch_length=2)
    masks = np.array([[True, True], [False, True], [True, False], [True, True]])
    fill(buffer, masks)
    live = buffer.keys.live()
    keys = list(zip(live["env"].tolist(), live["start"].tolist()))
    assert keys == [(1, 0), (0, 0), (0, 1), (1, 1)]
    fill(buffer, np.tile([[True, False]], (4, 1)))  # stream 0 wraps, stream 1 keeps its keys
    live = buffer.keys.live()
    keys = list(zip(live["env"].tolist(), live["start"].tolist()))
    # (0, 0) was removed from behind stream 1's older key (1, 0)
    assert keys == [(1, 0), (0, 1), (1, 1), (0, 2), (0, 3), (0, 4), (0, 5)]


def test_visit_counts_and_deciles(base_replay: ReplayConfig) -> None:
    buffer = make_buffer(base_replay, num_envs=2, capacity=50, batch_length=4, batch_size=16)
    fill(buffer, np.ones((50, 2), dtype=bool))
    drawn: dict[tuple[int, int], int] = {}
    for _ in range(30):
        keys = buffer.draw()
        for env, start in zip(keys.env.tolist(), keys.start.tolist()):
            drawn[env, start] = drawn.get((env, start), 0) + 1
    live = buffer.keys.live()
    counted = [drawn.get((e, s), 0) for e, s in zip(live["env"].tolist(), live["start"].tolist())]
    assert live["visits"].tolist() == counted
    assert live["visits"].sum() == 30 * 16
    deciles = buffer.visit_deciles()
    parts = np.array_split(np.array(counted, dtype=np.float64), 10)
    np.testing.assert_allclose(deciles, [part.mean() / np.mean(counted) for part in parts])


def test_visit_deciles_are_nan_before_sampling(base_replay: ReplayConfig) -> None:
    buffer = make_buffer(base_replay, capacity=50, batch_length=4)
    fill(buffer, np.ones((30, 1), dtype=bool))
    assert np.isnan(buffer.visit_deciles()).all()


def test_sampling_is_seeded(base_replay: ReplayConfig) -> None:
    buffers = [make_buffer(base_replay, capacity=30, batch_length=4) for _ in range(2)]
    for buffer in buffers:
        fill(buffer, np.ones((30, 1), dtype=bool))
    torch.testing.assert_close(buffers[0].sample().reward, buffers[1].sample().reward)


def test_image_rows_are_uint8_and_exact(base_replay: ReplayConfig) -> None:
    cfg = dataclasses.replace(base_replay, capacity=12, batch_length=5, batch_size=4)
    spec = step_spec((4, 4, 3), np.uint8, action_dim=3, subgoal_dim=2, code_dim=0)
    buffer = SequenceBuffer(cfg, spec, num_envs=1, seed=1, directory=None)
    for counter in range(20):
        buffer.add(
            Transition(
                obs=np.full((1, 4, 4, 3), counter, dtype=np.uint8),
                action=np.eye(3, dtype=np.float32)[[counter % 3]],
                reward=np.zeros(1, dtype=np.float32),
                is_first=np.array([counter == 0]),
                is_last=np.zeros(1, dtype=bool),
                is_terminal=np.zeros(1, dtype=bool),
                subgoal=np.zeros((1, 2), dtype=np.float32),
                subgoal_code=np.zeros((1, 0), dtype=np.float32),
            )
        )
    batch = buffer.sample()
    batch.check()
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (4, 5, 4, 4, 3)
    first = batch.obs[:, :1, 0, 0, 0].long()
    torch.testing.assert_close(batch.obs[:, :, 0, 0, 0].long(), first + torch.arange(5))
    assert int(first.min()) >= 8


def test_sample_before_any_sequence_raises(base_replay: ReplayConfig) -> None:
    buffer = make_buffer(base_replay, capacity=10, batch_length=4, batch_size=2)
    fill(buffer, np.ones((3, 1), dtype=bool))
    assert not buffer.ready()
    with pytest.raises(RuntimeError, match=r"replay\.batch_length"):
        buffer.sample()
    fill(buffer, np.ones((2, 1), dtype=bool))
    assert buffer.num_sequences() == 2 and buffer.ready()


def test_add_checks_field_shapes(base_replay: ReplayConfig) -> None:
    buffer = make_buffer(base_replay, num_envs=2, capacity=10, batch_length=4)
    step = counter_step(np.zeros(2, dtype=np.int64))
    step.action = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(AssertionError, match="action"):
        buffer.add(step)


def replay_pair(
    base: ReplayConfig, tmp_path: Path, num_envs: int, **overrides: Any
) -> tuple[SequenceBuffer, SequenceBuffer]:
    """Two buffers of the same config on the same directory, seeded differently."""
    cfg = dataclasses.replace(base, **overrides)
    return tuple(  # type: ignore[return-value]
        SequenceBuffer(cfg, counter_spec(), num_envs, seed=seed, directory=tmp_path / "replay")
        for seed in (0, 99)
    )


def assert_same_batches(first: SequenceBuffer, second: SequenceBuffer, batches: int) -> None:
    for _ in range(batches):
        left, right = first.sample(), second.sample()
        for name, value in vars(left).items():
            torch.testing.assert_close(getattr(right, name), value, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("sampler", "capacity", "chunk_size"),
    [("etbs", 16, 5), ("uniform", 6, 10), ("time_balanced", 9, 9)],
)
def test_state_round_trip_samples_the_same_batches(
    base_replay: ReplayConfig, tmp_path: Path, sampler: str, capacity: int, chunk_size: int
) -> None:
    settings = dict(
        sampler=sampler, capacity=capacity, chunk_size=chunk_size, batch_length=4, batch_size=6
    )
    original, restored = replay_pair(base_replay, tmp_path, 2, **settings)
    masks = np.random.default_rng(3).random((41, 2)) < 0.8
    counters = fill(original, masks)
    original.sample()  # visit counts and generator state must travel too
    # Through a file as Lightning resumes: torch.load defaults to weights_only=True.
    torch.save(original.state_dict(), tmp_path / "state.pt")
    restored.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert restored.num_sequences() == original.num_sequences()
    np.testing.assert_array_equal(restored.steps_written, counters)
    for name, value in original.keys.live().items():
        np.testing.assert_array_equal(restored.keys.live()[name], value, err_msg=name)
    assert_same_batches(original, restored, batches=3)
    # Both continue with the same steps: chunks completed after the resume must be whole.
    for buffer in (original, restored):
        more = np.zeros(2, dtype=np.int64) + counters
        for _ in range(13):
            buffer.add(counter_step(more))
            more += 1
    assert_same_batches(original, restored, batches=2)
    again = replay_pair(base_replay, tmp_path, 2, **settings)[1]
    again.load_state_dict(restored.state_dict())
    assert_same_batches(original, again, batches=2)
    live = again.keys.live()
    check_rows(
        vars(again.gather(SequenceKeys(live["env"], live["start"]))), live["env"], live["start"]
    )


def test_load_rejects_a_different_config(base_replay: ReplayConfig, tmp_path: Path) -> None:
    original, _ = replay_pair(base_replay, tmp_path, 1, capacity=8, batch_length=4, chunk_size=4)
    fill(original, np.ones((10, 1), dtype=bool))
    other = replay_pair(base_replay, tmp_path, 1, capacity=9, batch_length=4, chunk_size=4)[1]
    with pytest.raises(ValueError, match="capacity"):
        other.load_state_dict(original.state_dict())


def test_load_without_directory_raises(base_replay: ReplayConfig, tmp_path: Path) -> None:
    original, _ = replay_pair(base_replay, tmp_path, 1, capacity=8, batch_length=4, chunk_size=4)
    fill(original, np.ones((10, 1), dtype=bool))
    memory_only = make_buffer(base_replay, capacity=8, batch_length=4, chunk_size=4)
    with pytest.raises(ValueError, match="no directory"):
        memory_only.load_state_dict(original.state_dict())


def test_rings_grow_on_demand_up_to_capacity(
    base_replay: ReplayConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buffer_module, "INITIAL_ROWS", 2)
    original, restored = replay_pair(base_replay, tmp_path, 2, capacity=37, batch_length=5)
    assert original.rings["obs"].shape[:2] == (2, 2)
    masks = np.random.default_rng(4).random((30, 2)) < 0.7
    fill(original, masks)
    assert original.rings["obs"].shape[1] == 32  # doubled from 2 until it held max(written) rows
    live = original.keys.live()
    keys = SequenceKeys(live["env"], live["start"])
    check_rows(vars(original.gather(keys)), keys.env, keys.start)
    restored.load_state_dict(original.state_dict())
    check_rows(vars(restored.gather(keys)), keys.env, keys.start)
    fill(original, np.ones((60, 2), dtype=bool))  # every stream wraps
    assert original.rings["obs"].shape[1] == 37
    live = original.keys.live()
    assert len(live["start"]) == 2 * (37 - 5 + 1)
