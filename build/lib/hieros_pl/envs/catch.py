"""Catch: a ball falls down a square board and a paddle on the bottom row has to catch it."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

STAY, LEFT, RIGHT = 0, 1, 2
PADDLE_MOVES = np.array([0, -1, 1])

EMPTY, BALL, PADDLE = 0, 1, 2
CATCH_COLOURS = np.array([[0, 0, 0], [255, 80, 64], [64, 160, 255]], np.uint8)


def render_board(board: np.ndarray, colours: np.ndarray, image_size: int) -> np.ndarray:
    """Paint a board of cell codes as an image: each cell becomes a block of equal colour.

    board: [G, G] int cell codes (index into ``colours``)   colours: [codes, 3] uint8
    -> [image_size, image_size, 3] uint8. Works when image_size is not a multiple of G: a pixel
    shows the cell that contains its top-left corner.
    """
    G = board.shape[0]
    pixel_cells = np.arange(image_size) * G // image_size  # [image_size] cell index of each pixel
    return colours[board[pixel_cells[:, None], pixel_cells[None, :]]]


def board_observation_space(
    vector_obs: bool, vector_size: int, image_size: int
) -> gymnasium.spaces.Box:
    """Observations of a board game: a float32 [vector_size] vector in [0, 1] or an RGB image."""
    if vector_obs:
        return gymnasium.spaces.Box(0.0, 1.0, (vector_size,), np.float32)
    return gymnasium.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)


class Catch(gymnasium.Env[np.ndarray, np.int64]):
    """A ball starts in a random column of the top row and falls one row per step.

    The paddle starts in the middle of the bottom row and moves by action 0 stay, 1 left,
    2 right. When the ball reaches the bottom row the episode terminates with reward +1 if the
    paddle is under it and -1 otherwise, after exactly grid_size - 1 steps. A policy that ignores
    the ball catches it with probability 1/grid_size, so a uniformly random policy returns
    2/grid_size - 1 in expectation: -0.75 on the 8×8 board (measured: -0.747 over 20,000
    episodes).

    Observations: an image_size² RGB uint8 image (black board, red ball, blue paddle), or with
    ``vector_obs`` the float32 vector (ball column, ball row, paddle column) / (grid_size - 1).
    """

    def __init__(self, grid_size: int = 8, image_size: int = 64, vector_obs: bool = False) -> None:
        if grid_size < 2:
            raise ValueError(f"env.grid_size must be >= 2 for catch, got {grid_size}")
        self._grid_size = grid_size
        self._image_size = image_size
        self._vector_obs = vector_obs
        self.action_space = gymnasium.spaces.Discrete(3)
        self.observation_space = board_observation_space(vector_obs, 3, image_size)
        self._ball_column = 0
        self._ball_row = 0
        self._paddle_column = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode; ``seed`` reseeds the env's own RNG."""
        super().reset(seed=seed)
        self._ball_column = int(self.np_random.integers(self._grid_size))
        self._ball_row = 0
        self._paddle_column = self._grid_size // 2
        return self._observation(), {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move the paddle, drop the ball one row; reward ±1 when the ball lands."""
        last_column = self._grid_size - 1
        self._paddle_column = int(
            np.clip(self._paddle_column + PADDLE_MOVES[int(action)], 0, last_column)
        )
        self._ball_row += 1
        landed = self._ball_row == self._grid_size - 1
        reward = 0.0
        if landed:
            reward = 1.0 if self._paddle_column == self._ball_column else -1.0
        return self._observation(), reward, landed, False, {}

    def _observation(self) -> np.ndarray:
        G = self._grid_size
        if self._vector_obs:
            cells = [self._ball_column, self._ball_row, self._paddle_column]
            return np.array(cells, np.float32) / np.float32(G - 1)
        board = np.full((G, G), EMPTY, np.int64)
        board[G - 1, self._paddle_column] = PADDLE
        board[self._ball_row, self._ball_column] = BALL
        return render_board(board, CATCH_COLOURS, self._image_size)
