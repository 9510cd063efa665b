"""Navigation: a sparse-reward walk through a zig-zag corridor from one corner to the other."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from hieros_pl.envs.catch import board_observation_space, render_board

# Actions 0 up, 1 down, 2 left, 3 right as (row, column) moves.
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])

FLOOR, WALL, AGENT, GOAL = 0, 1, 2, 3
NAVIGATION_COLOURS = np.array([[0, 0, 0], [128, 128, 128], [64, 160, 255], [80, 220, 80]], np.uint8)
MIN_GRID_SIZE = 7
"""Smallest board on which the two walls fit between the start and goal corners."""


def zigzag_walls(grid_size: int) -> np.ndarray:
    """Two horizontal walls with gaps at opposite ends: [G, G] bool, True where a wall is.

    The wall on row G//3 leaves the two right-most columns open, the wall on row 2G//3 the two
    left-most, so a path from the top-left to the bottom-right corner is about 3·G steps long
    instead of 2·G.
    """
    G = grid_size
    walls = np.zeros((G, G), bool)
    walls[G // 3, : G - 2] = True
    walls[2 * G // 3, 2:] = True
    return walls


class Navigation(gymnasium.Env[np.ndarray, np.int64]):
    """Reach the goal in the far corner; reward +1 only on arrival, which terminates the episode.

    The agent starts on a random cell of the top-left 2×2 corner and the goal lies on a random cell
    of the bottom-right 2×2 corner, behind the walls of :func:`zigzag_walls`. Actions: 0 up,
    1 down, 2 left, 3 right; a move into a wall or off the board leaves the agent in place. After
    ``4·grid_size²`` steps without reaching the goal the episode is truncated. A uniformly random
    policy reaches the goal in about 4% of the episodes on the 12×12 board (mean return 0.038,
    mean length 571 of 576) and 7% on the 8×8 board (0.069; measured over 2,000 episodes each).

    Observations: an image_size² RGB uint8 image (black floor, grey walls, blue agent, green
    goal), or with ``vector_obs`` the float32 vector (agent row, agent column, goal row,
    goal column) / (grid_size - 1).
    """

    def __init__(self, grid_size: int = 12, image_size: int = 64, vector_obs: bool = False) -> None:
        if grid_size < MIN_GRID_SIZE:
            raise ValueError(
                f"env.grid_size must be >= {MIN_GRID_SIZE} for navigation (the walls need the "
                f"room), got {grid_size}"
            )
        self._grid_size = grid_size
        self._image_size = image_size
        self._vector_obs = vector_obs
        self._walls = zigzag_walls(grid_size)
        self._max_steps = 4 * grid_size**2
        self.action_space = gymnasium.spaces.Discrete(4)
        self.observation_space = board_observation_space(vector_obs, 4, image_size)
        self._agent = np.zeros(2, np.int64)
        self._goal = np.zeros(2, np.int64)
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode; ``seed`` reseeds the env's own RNG."""
        super().reset(seed=seed)
        self._agent = self.np_random.integers(0, 2, size=2)
        self._goal = self.np_random.integers(self._grid_size - 2, self._grid_size, size=2)
        self._steps = 0
        return self._observation(), {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move one cell unless blocked; +1 and terminate on the goal, truncate at the step cap."""
        target = np.clip(self._agent + MOVES[int(action)], 0, self._grid_size - 1)
        if not self._walls[target[0], target[1]]:
            self._agent = target
        self._steps += 1
        reached = bool(np.array_equal(self._agent, self._goal))
        truncated = not reached and self._steps >= self._max_steps
        return self._observation(), float(reached), reached, truncated, {}

    def _observation(self) -> np.ndarray:
        if self._vector_obs:
            cells = np.concatenate([self._agent, self._goal])
            return cells.astype(np.float32) / np.float32(self._grid_size - 1)
        board = np.where(self._walls, WALL, FLOOR)
        board[self._goal[0], self._goal[1]] = GOAL
        board[self._agent[0], self._agent[1]] = AGENT
        return render_board(board, NAVIGATION_COLOURS, self._image_size)
