"""Atari 100k: ``ALE/<Game>-v5`` under the preprocessing of the original code (ALGORITHM.md §9).

We do not use gymnasium's ``AtariPreprocessing`` because it differs from the original
(DreamerV3's ``embodied/envs/atari.py``, which Hieros runs) on two points: it draws the no-op
count from U{1, ..., noop_max} instead of U{0, ..., noop_max - 1}, and when the game ends inside
the frame skip it returns the frames captured earlier instead of the final screen.
"""

from __future__ import annotations

from typing import Any

import ale_py
import cv2
import gymnasium
import numpy as np

from hieros_pl.config import EnvConfig
from hieros_pl.envs.games import canonical_game

NOOP = ale_py.Action.NOOP


class Atari100k(gymnasium.Wrapper[np.ndarray, int, np.ndarray, int]):
    """Action repeat, max-pooling, no-op starts, resizing and an episode cap around one ALE game.

    One ``step`` emulates ``action_repeat`` frames with the same action (fewer if the game ends),
    sums the raw rewards (no clipping) and returns the elementwise max of the frame after the
    second-to-last repeat and the final frame, resized to ``image_size``² RGB uint8 with area
    interpolation. ``reset`` emulates n ~ U{0, ..., noop_max - 1} single-frame NOOPs (resetting
    the game if it ends during them); its observation has no max-pool partner. Lives are not
    signalled. ``terminated`` means game over; ``truncated`` means the episode reached
    ``episode_frames`` emulator frames, counted from the end of the no-ops as in the original.
    ``info["frames"]`` holds the emulator frames of the call (0 for ``reset``); ``noops`` holds
    the no-op count of the last reset.
    """

    def __init__(
        self,
        env: gymnasium.Env[np.ndarray, int],
        action_repeat: int,
        image_size: int,
        noop_max: int,
        episode_frames: int,
    ) -> None:
        super().__init__(env)
        ale_env = env.unwrapped
        if ale_env.get_action_meanings()[0] != "NOOP":  # type: ignore[attr-defined]
            raise ValueError(f"{ale_env.spec}: action 0 of the minimal action set is not NOOP")
        self._ale: ale_py.ALEInterface = ale_env.ale  # type: ignore[attr-defined]
        self._action_set = self._ale.getMinimalActionSet()
        self._action_repeat = action_repeat
        self._image_size = image_size
        self._noop_max = noop_max
        self._episode_frame_cap = episode_frames
        self._episode_frames = 0
        self.noops = 0
        height, width = self._ale.getScreenDims()
        # screens[0]: final frame of the step; screens[1]: frame after the second-to-last repeat.
        self._screens = np.zeros((2, height, width, 3), np.uint8)
        self._pooled = np.zeros((height, width, 3), np.uint8)
        self.observation_space = gymnasium.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the game (seeding the ALE and the no-op RNG if ``seed`` is given), then no-ops."""
        self.env.reset(seed=seed, options=options)
        self.noops = int(self.np_random.integers(self._noop_max))
        for _ in range(self.noops):
            self._ale.act(NOOP)
            if self._ale.game_over(with_truncation=False):
                self._ale.reset_game()
        self._episode_frames = 0
        self._ale.getScreenRGB(self._screens[0])
        self._screens[1].fill(0)
        return self._observation(), {"frames": 0}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Repeat ``action`` (index into the minimal action set) for up to action_repeat frames."""
        ale_action = self._action_set[int(action)]
        reward = 0.0
        frames = 0
        game_over = False
        for repeat in range(self._action_repeat):
            reward += self._ale.act(ale_action)
            frames += 1
            # Captured before the game-over check, as in the original: when the game ends earlier
            # in the repeat, the partner is the one captured in a previous step (zero after reset).
            if repeat == self._action_repeat - 2:
                self._ale.getScreenRGB(self._screens[1])
            if self._ale.game_over(with_truncation=False):
                game_over = True
                break
        self._ale.getScreenRGB(self._screens[0])
        self._episode_frames += frames
        truncated = not game_over and self._episode_frames >= self._episode_frame_cap
        return self._observation(), reward, game_over, truncated, {"frames": frames}

    def _observation(self) -> np.ndarray:
        np.maximum(self._screens[0], self._screens[1], out=self._pooled)
        size = (self._image_size, self._image_size)
        return cv2.resize(self._pooled, size, interpolation=cv2.INTER_AREA)


def make_atari100k(cfg: EnvConfig) -> Atari100k:
    """Build one Atari 100k env for ``cfg.game`` (ValueError naming env.game if unknown)."""
    game = canonical_game(cfg.game)
    gymnasium.register_envs(ale_py)
    # frameskip and sticky actions off underneath our own repeat (the v5 defaults are 4 and 0.25);
    # ALE's own frame limit off (0) because ours counts frames after the no-ops, as the original.
    env = gymnasium.make(
        f"ALE/{game}-v5",
        frameskip=1,
        repeat_action_probability=0.0,
        full_action_space=False,
        max_num_frames_per_episode=0,
        disable_env_checker=True,
    )
    return Atari100k(
        env,
        action_repeat=cfg.action_repeat,
        image_size=cfg.image_size,
        noop_max=cfg.noop_max,
        episode_frames=cfg.episode_frames,
    )
