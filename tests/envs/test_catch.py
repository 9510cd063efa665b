"""The catch game: spaces, rules, rendering, determinism and the random-policy return."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hieros_pl.config import EnvConfig
from hieros_pl.envs import EnvSpec, env_spec, make_env
from hieros_pl.envs.catch import BALL, CATCH_COLOURS, LEFT, PADDLE, RIGHT, STAY, Catch
from tests.conftest import compose


@pytest.fixture(scope="module")
def catch_config() -> EnvConfig:
    """The shipped catch config at the tiny size (16×16 images, 8×8 board)."""
    return compose("env=catch").env


def test_image_and_vector_spaces(catch_config: EnvConfig) -> None:
    image_env = make_env(catch_config, seed=0)
    assert env_spec(image_env) == EnvSpec(
        (16, 16, 3), obs_is_image=True, action_dim=3, discrete=True
    )
    obs, _ = image_env.reset()
    assert obs.dtype == np.uint8 and image_env.single_observation_space.contains(obs[0])
    vector_env = make_env(dataclasses.replace(catch_config, vector_obs=True), seed=0)
    assert env_spec(vector_env) == EnvSpec((3,), obs_is_image=False, action_dim=3, discrete=True)
    obs, _ = vector_env.reset()
    assert obs.dtype == np.float32 and vector_env.single_observation_space.contains(obs[0])


def test_image_shows_ball_and_paddle_in_their_cells() -> None:
    env = Catch(grid_size=4, image_size=8)
    env.reset(seed=0)
    ball_column = env._ball_column
    image = env.step(LEFT)[0]  # ball on row 1, paddle from column 2 to column 1
    ball_colour, paddle_colour = CATCH_COLOURS[BALL], CATCH_COLOURS[PADDLE]
    assert (image[2:4, 2 * ball_column : 2 * ball_column + 2] == ball_colour).all()
    assert (image[6:8, 2:4] == paddle_colour).all()
    assert (image == ball_colour).all(axis=-1).sum() == 4
    assert (image == paddle_colour).all(axis=-1).sum() == 4


def test_following_the_ball_always_catches_it() -> None:
    env = Catch(grid_size=8, vector_obs=True)
    env.reset(seed=0)
    for _ in range(20):
        obs, _ = env.reset()
        for step in range(1, 8):
            ball, paddle = obs[0], obs[2]
            action = STAY if ball == paddle else (LEFT if ball < paddle else RIGHT)
            obs, reward, terminated, truncated, _ = env.step(action)
            assert terminated == (step == 7) and not truncated
        assert reward == 1.0


def test_same_seed_same_episodes(catch_config: EnvConfig) -> None:
    def first_observations(seed: int) -> np.ndarray:
        env = Catch(grid_size=8, image_size=16)
        starts = [env.reset(seed=seed)[0]]
        starts += [env.reset()[0] for _ in range(5)]
        return np.stack(starts)

    np.testing.assert_array_equal(first_observations(1), first_observations(1))
    assert not np.array_equal(first_observations(1), first_observations(2))


def test_random_policy_return() -> None:
    # Expected 2/G - 1 = -0.75 for G = 8 (the docstring's measured value is -0.747).
    env = Catch(grid_size=8, vector_obs=True)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    returns = []
    for _ in range(2000):
        env.reset()
        terminated = False
        while not terminated:
            _, reward, terminated, _, _ = env.step(int(rng.integers(3)))
        returns.append(reward)
    assert -0.8 < np.mean(returns) < -0.7
