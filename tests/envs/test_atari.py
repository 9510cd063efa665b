"""Atari 100k protocol (ALGORITHM.md §9): repeat, max-pool, no-ops, cap, autoreset, all games."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv, VectorEnv

from hieros_pl.config import EnvConfig
from hieros_pl.envs import ATARI100K_GAMES, env_spec, make_env, to_env_action
from hieros_pl.envs.atari import Atari100k, make_atari100k
from hieros_pl.envs.factory import SeedOnFirstReset
from tests.conftest import compose

FIRE = 1  # index 1 of the minimal action set of Pong and Breakout


@pytest.fixture(scope="module")
def pong() -> EnvConfig:
    """The shipped atari100k env config at the paper's 64×64 (the tiny size shrinks images)."""
    return compose("env=atari100k", "env.game=pong", "env.image_size=64").env


def atari_of(env: VectorEnv) -> Atari100k:
    """The Atari100k wrapper of env 0 (inside the seeding wrapper of make_env)."""
    vector = env.unwrapped
    assert isinstance(vector, SyncVectorEnv)
    seeding = vector.envs[0]
    assert isinstance(seeding, SeedOnFirstReset) and isinstance(seeding.env, Atari100k)
    return seeding.env


def ale_frame(env: Atari100k) -> int:
    return int(env.unwrapped.ale.getEpisodeFrameNumber())  # type: ignore[attr-defined]


def test_observation_is_64x64_rgb_and_a_step_is_four_frames(pong: EnvConfig) -> None:
    env = make_env(pong, seed=0)
    atari = atari_of(env)
    obs, info = env.reset()
    assert obs.shape == (1, 64, 64, 3) and obs.dtype == np.uint8
    assert info["frames"].tolist() == [0]
    assert ale_frame(atari) == atari.noops
    spec = env_spec(env)
    noop = np.zeros((1, spec.action_dim), np.float32)
    noop[:, 0] = 1.0
    for step in range(1, 4):
        obs, _, terminated, truncated, info = env.step(to_env_action(noop, spec))
        assert info["frames"].tolist() == [4]
        assert ale_frame(atari) == atari.noops + 4 * step
        assert obs.shape == (1, 64, 64, 3) and obs.dtype == np.uint8
        assert not terminated[0] and not truncated[0]


def noop_counts(env: Atari100k, seed: int, resets: int) -> list[int]:
    env.reset(seed=seed)
    counts = [env.noops]
    for _ in range(resets):
        env.reset()
        assert ale_frame(env) == env.noops, "the frame counter after reset must equal the no-ops"
        counts.append(env.noops)
    return counts


def test_noop_count_is_uniform_from_zero_to_noop_max_minus_one(pong: EnvConfig) -> None:
    env = make_atari100k(dataclasses.replace(pong, noop_max=4))
    counts = noop_counts(env, seed=3, resets=40)
    assert set(counts) == {0, 1, 2, 3}
    assert noop_counts(env, seed=3, resets=40) == counts, "no-op draws not reproducible"


def test_observation_is_the_max_of_the_last_two_frames(pong: EnvConfig) -> None:
    env = make_atari100k(dataclasses.replace(pong, game="breakout"))
    env.reset(seed=0)
    for _ in range(30):
        env.step(FIRE)
    ale = env.unwrapped.ale  # type: ignore[attr-defined]
    state = ale.cloneState()
    right = 2
    obs = env.step(right)[0]
    ale.restoreState(state)
    frames = []
    for _ in range(4):
        ale.act(ale.getMinimalActionSet()[right])
        frames.append(ale.getScreenRGB())
    expected = cv2.resize(np.maximum(frames[2], frames[3]), (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(obs, expected)
    first = env.reset()[0]
    alone = cv2.resize(ale.getScreenRGB(), (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(first, alone, err_msg="the first observation has no partner")


def test_game_over_ends_the_repeat_early_without_life_signals(pong: EnvConfig) -> None:
    env = make_atari100k(dataclasses.replace(pong, game="breakout"))
    env.reset(seed=0)
    ale = env.unwrapped.ale  # type: ignore[attr-defined]
    frames = 0
    lives_seen = {int(ale.lives())}
    for _ in range(1000):
        _, _, terminated, truncated, info = env.step(FIRE)
        frames += info["frames"]
        lives_seen.add(int(ale.lives()))
        assert not truncated
        if terminated:
            break
    assert terminated and ale.lives() == 0
    assert len(lives_seen) > 2, "lives were lost before game over without ending the episode"
    assert ale_frame(env) == env.noops + frames
    assert info["frames"] < 4, "with this seed the game ends inside the last repeat"


def test_episode_cap_truncates_then_next_step_autoresets(pong: EnvConfig) -> None:
    env = make_env(dataclasses.replace(pong, episode_frames=40), seed=1)
    env.reset()
    noop = np.zeros(1, np.int64)
    for step in range(1, 11):
        _, _, terminated, truncated, _ = env.step(noop)
        assert not terminated[0]
        assert truncated[0] == (step == 10), f"step {step}"
    _, reward, terminated, truncated, info = env.step(noop)
    atari = atari_of(env)
    assert reward[0] == 0.0 and not terminated[0] and not truncated[0]
    assert info["frames"].tolist() == [0]
    assert ale_frame(atari) == atari.noops


def test_all_26_games_construct_reset_and_step(pong: EnvConfig) -> None:
    small = dataclasses.replace(pong, image_size=16)
    for game in ATARI100K_GAMES:
        env = make_atari100k(dataclasses.replace(small, game=game))
        assert env.unwrapped.get_action_meanings()[0] == "NOOP", game  # type: ignore[attr-defined]
        obs, _ = env.reset()
        obs, _, terminated, _, info = env.step(0)
        assert obs.shape == (16, 16, 3) and obs.dtype == np.uint8, game
        assert info["frames"] == 4 and not terminated, game
        env.close()


def test_unknown_game_is_a_named_error(pong: EnvConfig) -> None:
    with pytest.raises(ValueError, match=r"env\.game 'breakot'.*Breakout"):
        make_env(dataclasses.replace(pong, game="breakot"), seed=0)
