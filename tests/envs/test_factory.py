"""make_env for gymnasium ids, seeding, NEXT_STEP autoreset, env_spec and to_env_action."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

from hieros_pl.config import EnvConfig
from hieros_pl.envs import EnvSpec, env_spec, make_env, to_env_action
from tests.conftest import compose


@pytest.fixture(scope="module")
def gym_config() -> EnvConfig:
    """The shipped gym env config (env.id must be given)."""
    return compose("env=gym", "env.id=CartPole-v1").env


def test_cartpole_vector_observations_and_discrete_actions(gym_config: EnvConfig) -> None:
    env = make_env(dataclasses.replace(gym_config, max_episode_steps=5), seed=0, num_envs=2)
    assert env_spec(env) == EnvSpec(obs_shape=(4,), obs_is_image=False, action_dim=2, discrete=True)
    obs, _ = env.reset()
    assert obs.shape == (2, 4) and obs.dtype == np.float32
    one_hot = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    for step in range(1, 6):
        obs, reward, terminated, truncated, _ = env.step(to_env_action(one_hot, env_spec(env)))
        assert reward.tolist() == [1.0, 1.0]
        assert not terminated.any()
        assert truncated.tolist() == [step == 5] * 2, f"max_episode_steps=5 at step {step}"


def test_pendulum_actions_in_minus_one_one_are_rescaled(gym_config: EnvConfig) -> None:
    env = make_env(dataclasses.replace(gym_config, id="Pendulum-v1"), seed=0)
    spec = env_spec(env)
    assert spec == EnvSpec(obs_shape=(3,), obs_is_image=False, action_dim=1, discrete=False)
    assert env.single_action_space == gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    env.reset()
    vector = env.unwrapped
    assert isinstance(vector, SyncVectorEnv)
    pendulum = vector.envs[0].unwrapped
    assert pendulum.action_space.high.tolist() == [2.0]  # type: ignore[attr-defined]
    env.step(to_env_action(np.array([[0.5]], np.float32), spec))
    assert pendulum.last_u == pytest.approx(1.0)  # type: ignore[attr-defined]
    env.step(to_env_action(np.array([[-3.0]], np.float32), spec))
    assert pendulum.last_u == pytest.approx(-2.0)  # type: ignore[attr-defined]


def test_image_observations_are_resized(gym_config: EnvConfig) -> None:
    env = make_env(dataclasses.replace(gym_config, id="ALE/Pong-v5", image_size=32), seed=0)
    assert env_spec(env) == EnvSpec((32, 32, 3), obs_is_image=True, action_dim=6, discrete=True)
    obs, _ = env.reset()
    assert obs.shape == (1, 32, 32, 3) and obs.dtype == np.uint8
    assert obs.max() > 0


def test_unknown_id_names_the_key_and_close_matches(gym_config: EnvConfig) -> None:
    with pytest.raises(ValueError, match=r"env\.id 'CartPol-v1'.*CartPole-v1"):
        make_env(dataclasses.replace(gym_config, id="CartPol-v1"), seed=0)


@pytest.mark.parametrize(
    ("env_id", "space"), [("Blackjack-v1", "Tuple"), ("FrozenLake-v1", "Discrete")]
)
def test_unsupported_observation_spaces(gym_config: EnvConfig, env_id: str, space: str) -> None:
    with pytest.raises(ValueError, match=rf"env\.id '{env_id}': observation space {space}"):
        make_env(dataclasses.replace(gym_config, id=env_id), seed=0)


class MultiDiscreteActions(gymnasium.Env[np.ndarray, np.ndarray]):
    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gymnasium.spaces.MultiDiscrete([2, 3])


def make_multi_discrete_actions(**kwargs: Any) -> gymnasium.Env[np.ndarray, np.ndarray]:
    return MultiDiscreteActions()


@pytest.fixture
def multi_discrete_id() -> Iterator[str]:
    env_id = "hieros_test/MultiDiscreteActions-v0"
    gymnasium.register(env_id, entry_point=make_multi_discrete_actions)
    yield env_id
    del gymnasium.registry[env_id]


def test_unsupported_action_space(gym_config: EnvConfig, multi_discrete_id: str) -> None:
    with pytest.raises(ValueError, match=r"action space MultiDiscrete\(\[2 3\]\) is not supported"):
        make_env(dataclasses.replace(gym_config, id=multi_discrete_id), seed=0)


def test_unknown_kind_and_action_repeat_outside_atari(gym_config: EnvConfig) -> None:
    with pytest.raises(ValueError, match=r"env\.kind"):
        make_env(dataclasses.replace(gym_config, kind="snake"), seed=0)
    with pytest.raises(ValueError, match=r"env\.action_repeat applies to env\.kind=atari100k"):
        make_env(dataclasses.replace(gym_config, action_repeat=4), seed=0)


def catch_trajectory(env: gymnasium.vector.VectorEnv, steps: int) -> np.ndarray:
    observations = [env.reset()[0]]
    for step in range(steps):
        observations.append(env.step(np.full(env.num_envs, step % 3))[0])
    return np.stack(observations, axis=1)  # [E, steps + 1, O]


def test_env_i_is_seeded_with_seed_plus_i() -> None:
    config = EnvConfig(kind="catch", action_repeat=1, vector_obs=True, grid_size=5)
    pair = catch_trajectory(make_env(config, seed=10, num_envs=2), steps=30)
    again = catch_trajectory(make_env(config, seed=10, num_envs=2), steps=30)
    second = catch_trajectory(make_env(config, seed=11, num_envs=1), steps=30)
    np.testing.assert_array_equal(pair, again)
    np.testing.assert_array_equal(pair[1], second[0])
    assert not np.array_equal(pair[0], pair[1])


def test_seed_none_leaves_the_envs_unseeded() -> None:
    # compat.seeding_original (D12): two unseeded builds start 8 balls in 8 random columns each;
    # equal starts by chance have probability 8^-8.
    config = EnvConfig(kind="catch", action_repeat=1, vector_obs=True, grid_size=8)
    first = [make_env(config, seed=None, num_envs=8).reset()[0] for _ in range(2)]
    assert not np.array_equal(first[0], first[1])


def test_next_step_autoreset_returns_a_first_observation_with_zero_reward() -> None:
    env = make_env(EnvConfig(kind="catch", action_repeat=1, vector_obs=True, grid_size=4), seed=0)
    env.reset()
    stay = np.zeros(1, np.int64)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(stay)
    assert terminated[0] and reward[0] in (-1.0, 1.0)
    assert obs[0, 1] == 1.0, "the ball is on the bottom row when the episode ends"
    obs, reward, terminated, truncated, _ = env.step(stay)
    assert reward[0] == 0.0 and not terminated[0] and not truncated[0]
    assert obs[0, 1] == 0.0, "the step after the end returns a first observation"


def test_to_env_action() -> None:
    discrete = EnvSpec((4,), obs_is_image=False, action_dim=3, discrete=True)
    one_hot = np.array([[0, 1, 0], [0, 0, 1]], np.float32)
    np.testing.assert_array_equal(to_env_action(one_hot, discrete), [1, 2])
    continuous = EnvSpec((4,), obs_is_image=False, action_dim=2, discrete=False)
    action = np.array([[-2.0, 0.5], [0.25, 7.0]], np.float32)
    np.testing.assert_array_equal(to_env_action(action, continuous), [[-1.0, 0.5], [0.25, 1.0]])
    with pytest.raises(AssertionError, match="action"):
        to_env_action(one_hot, continuous)
