"""The navigation task: spaces, walls, the goal reward, the step cap and determinism."""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
import pytest

from hieros_pl.config import EnvConfig
from hieros_pl.envs import EnvSpec, env_spec, make_env
from hieros_pl.envs.navigation import MOVES, Navigation, zigzag_walls
from tests.conftest import compose


@pytest.fixture(scope="module")
def navigation_config() -> EnvConfig:
    """The shipped navigation config at the tiny size (16×16 images, 12×12 board)."""
    return compose("env=navigation").env


def test_image_and_vector_spaces(navigation_config: EnvConfig) -> None:
    image_env = make_env(navigation_config, seed=0)
    assert env_spec(image_env) == EnvSpec(
        (16, 16, 3), obs_is_image=True, action_dim=4, discrete=True
    )
    obs, _ = image_env.reset()
    assert image_env.single_observation_space.contains(obs[0])
    vector_env = make_env(dataclasses.replace(navigation_config, vector_obs=True), seed=0)
    assert env_spec(vector_env) == EnvSpec((4,), obs_is_image=False, action_dim=4, discrete=True)
    obs, _ = vector_env.reset()
    assert vector_env.single_observation_space.contains(obs[0])
    agent, goal = obs[0, :2] * 11, obs[0, 2:] * 11
    assert (agent <= 1).all() and (goal >= 10).all(), "start and goal in opposite corners"


def shortest_path(walls: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> list[int]:
    """Breadth-first search over the board; returns the actions of a shortest path."""
    G = walls.shape[0]
    previous: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        cell = queue.popleft()
        for action, (row_move, column_move) in enumerate(MOVES):
            row, column = cell[0] + row_move, cell[1] + column_move
            nxt = (row, column)
            if 0 <= row < G and 0 <= column < G and not walls[nxt] and nxt not in seen:
                seen.add(nxt)
                previous[nxt] = (cell, action)
                queue.append(nxt)
    actions = []
    cell = goal
    while cell != start:
        cell, action = previous[cell]
        actions.append(action)
    return actions[::-1]


def test_shortest_path_reaches_the_goal_with_reward_one() -> None:
    env = Navigation(grid_size=12, vector_obs=True)
    obs, _ = env.reset(seed=0)
    cells = np.rint(obs * 11).astype(int)
    path = shortest_path(zigzag_walls(12), (cells[0], cells[1]), (cells[2], cells[3]))
    assert len(path) > 2 * 12, "the walls make the path longer than the Manhattan distance"
    rewards = []
    for step, action in enumerate(path, start=1):
        _, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        assert terminated == (step == len(path)) and not truncated
    assert rewards[-1] == 1.0 and sum(rewards) == 1.0


def test_walls_and_edges_block_moves() -> None:
    env = Navigation(grid_size=8, vector_obs=True)
    env.reset(seed=0)
    up, down = 0, 1
    for _ in range(3):
        obs = env.step(up)[0]
    assert obs[0] == 0.0, "the top edge stops the agent"
    for _ in range(5):
        obs = env.step(down)[0]
    assert obs[0] * 7 == pytest.approx(1.0), "the wall on row 2 stops the agent on row 1"


def test_step_cap_truncates() -> None:
    env = Navigation(grid_size=7, vector_obs=True)
    env.reset(seed=0)
    up = 0
    for step in range(1, 4 * 7**2 + 1):
        _, reward, terminated, truncated, _ = env.step(up)
        assert reward == 0.0 and not terminated
        assert truncated == (step == 4 * 7**2)


def test_same_seed_same_episodes() -> None:
    def starts(seed: int) -> np.ndarray:
        env = Navigation(grid_size=8, vector_obs=True)
        return np.stack([env.reset(seed=seed)[0]] + [env.reset()[0] for _ in range(8)])

    np.testing.assert_array_equal(starts(4), starts(4))
    assert not np.array_equal(starts(4), starts(5))


def test_small_grid_is_a_named_error(navigation_config: EnvConfig) -> None:
    with pytest.raises(ValueError, match=r"env\.grid_size must be >= 7"):
        make_env(dataclasses.replace(navigation_config, grid_size=6), seed=0)
