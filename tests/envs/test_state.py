"""Saved env state continues episodes step for step; arbitrary gymnasium ids are not saveable."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

from hieros_pl.config import EnvConfig
from hieros_pl.envs import make_env
from hieros_pl.envs.state import EnvStateError, capture_env_state, restore_env_state

KINDS = [
    EnvConfig(kind="catch", action_repeat=1, image_size=16, grid_size=5),
    EnvConfig(kind="navigation", action_repeat=1, image_size=16, grid_size=7, vector_obs=True),
    EnvConfig(kind="atari100k", game="pong", image_size=16, noop_max=30),
]


def _play(env, actions: np.ndarray) -> list[tuple]:
    trace = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        episode = info.get("episode", {})  # return and length; "t" is wall time
        stats = str([episode.get("r"), episode.get("l")])
        trace.append((obs.copy(), reward.copy(), terminated.copy(), truncated.copy(), stats))
    return trace


@pytest.mark.parametrize("cfg", KINDS, ids=lambda cfg: cfg.kind)
def test_restored_env_continues_exactly(cfg: EnvConfig) -> None:
    cfg = dataclasses.replace(cfg, num_envs=2)
    env = make_env(cfg, seed=3)
    env.reset()
    rng = np.random.default_rng(0)
    n = env.single_action_space.n
    _play(env, rng.integers(n, size=(23, 2)))
    buffer = io.BytesIO()
    torch.save(capture_env_state(env), buffer)  # must survive a weights_only round trip
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    actions = rng.integers(n, size=(60, 2))
    expected = _play(env, actions)

    fresh = make_env(cfg, seed=99)  # another seed: everything must come from the state
    fresh.reset()
    restore_env_state(fresh, state)
    got = _play(fresh, actions)
    for step, (ours, theirs) in enumerate(zip(got, expected)):
        for a, b in zip(ours, theirs):
            assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, step


def test_an_arbitrary_gymnasium_id_is_not_saveable() -> None:
    env = make_env(EnvConfig(kind="gym", id="CartPole-v1", action_repeat=1), seed=0)
    env.reset()
    with pytest.raises(EnvStateError, match="cannot save"):
        capture_env_state(env)
