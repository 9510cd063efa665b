"""Build seeded vector envs from an :class:`EnvConfig` and translate agent actions for them."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from hieros_pl.config import EnvConfig
from hieros_pl.envs.atari import make_atari100k
from hieros_pl.envs.catch import Catch
from hieros_pl.envs.navigation import Navigation


@dataclass(frozen=True)
class EnvSpec:
    """What the agent needs to know about one env of a vector env."""

    obs_shape: tuple[int, ...]
    """[Himg, Wimg, C] for images, [O] for vectors."""
    obs_is_image: bool
    """True for uint8 channels-last images, False for float32 vectors."""
    action_dim: int
    """A: number of discrete actions (one-hot size) or continuous action dimensions."""
    discrete: bool
    """Discrete actions (agent emits one-hot) or continuous ones in [-1, 1]."""


class SeedOnFirstReset(gymnasium.Wrapper[Any, Any, Any, Any]):
    """Apply ``seed`` at the first ``reset`` that brings no seed of its own.

    Later resets (autoresets of a vector env) draw from the env's own RNG, so a run is
    reproducible from ``seed`` alone; the action space is seeded with it too.
    """

    def __init__(self, env: gymnasium.Env[Any, Any], seed: int) -> None:
        super().__init__(env)
        self._pending_seed: int | None = seed
        env.action_space.seed(seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None
        return self.env.reset(seed=seed, options=options)


def make_env(cfg: EnvConfig, seed: int | None, num_envs: int | None = None) -> VectorEnv:
    """Build ``num_envs`` (default ``cfg.num_envs``) envs of ``cfg.kind`` in a SyncVectorEnv.

    Wrapped in gymnasium's ``RecordEpisodeStatistics``: the step that ends an episode reports its
    return and length in ``info["episode"]`` (``info["_episode"]`` marks the envs).

    Env i is seeded with ``seed + i`` at its first reset; ``seed=None`` leaves every env and
    action space to OS entropy (``compat.seeding_original``, D12). The vector env uses gymnasium's
    NEXT_STEP autoreset: after a done step the next ``step`` ignores the action and returns the
    first observation of a new episode with reward 0. Observations are uint8 [Himg, Wimg, C]
    images or float32 [O] vectors; continuous actions are in [-1, 1].
    Raises ValueError naming the config key for unknown kinds, games, ids or unsupported spaces.
    """
    count = cfg.num_envs if num_envs is None else num_envs
    if count < 1:
        raise ValueError(f"env.num_envs must be >= 1, got {count}")
    if cfg.kind not in ENV_BUILDERS:
        raise ValueError(f"env.kind must be one of {sorted(ENV_BUILDERS)}, got '{cfg.kind}'")
    if cfg.kind != "atari100k" and cfg.action_repeat != 1:
        raise ValueError(
            f"env.action_repeat applies to env.kind=atari100k only; got {cfg.action_repeat} for "
            f"env.kind={cfg.kind} (set it to 1)"
        )
    build = ENV_BUILDERS[cfg.kind]

    def builder(index: int) -> Callable[[], gymnasium.Env[Any, Any]]:
        if seed is None:
            return lambda: build(cfg)
        return lambda: SeedOnFirstReset(build(cfg), seed + index)

    env = SyncVectorEnv(
        [builder(index) for index in range(count)], autoreset_mode=AutoresetMode.NEXT_STEP
    )
    if seed is not None:
        env.action_space.seed(seed)
    return RecordEpisodeStatistics(env)


def env_spec(env: VectorEnv) -> EnvSpec:
    """Describe one env of ``env`` (observation shape and kind, action size and kind)."""
    observation_space = env.single_observation_space
    action_space = env.single_action_space
    assert isinstance(observation_space, spaces.Box), f"observation space {observation_space}"
    obs_is_image = observation_space.dtype == np.uint8 and len(observation_space.shape) == 3
    if isinstance(action_space, spaces.Discrete):
        return EnvSpec(observation_space.shape, obs_is_image, int(action_space.n), True)
    assert isinstance(action_space, spaces.Box), f"action space {action_space}"
    return EnvSpec(observation_space.shape, obs_is_image, action_space.shape[0], False)


def to_env_action(action: np.ndarray, spec: EnvSpec) -> np.ndarray:
    """Agent actions [E, A] float32 (one-hot or in [-1, 1]) -> actions for the vector env.

    Discrete: the argmax index, int64 [E]. Continuous: clipped to [-1, 1], float32 [E, A].
    """
    # action: [E, A] float32 -> [E] int64 | [E, A] float32
    assert action.ndim == 2 and action.shape[1] == spec.action_dim, f"action {action.shape}"
    if spec.discrete:
        return np.argmax(action, axis=-1)
    return np.clip(action, -1.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# env kinds


def make_gym(cfg: EnvConfig) -> gymnasium.Env[Any, Any]:
    """Any registered gymnasium id with image or vector observations, Discrete or Box actions.

    Images (uint8 [Himg, Wimg] or [Himg, Wimg, C]) are resized to ``image_size``² with area
    interpolation; other Box observations become flat float32 vectors. Box actions are rescaled
    so that the agent acts in [-1, 1]. ``max_episode_steps`` > 0 replaces the id's time limit.
    """
    import ale_py

    # Registering ALE makes its ids (ALE/Pong-v5, ...) valid here too.
    gymnasium.register_envs(ale_py)
    if cfg.id not in gymnasium.registry:
        close = difflib.get_close_matches(cfg.id, list(gymnasium.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"env.id '{cfg.id}' is not a registered gymnasium id{hint}")
    max_episode_steps = cfg.max_episode_steps if cfg.max_episode_steps > 0 else None
    env = gymnasium.make(cfg.id, max_episode_steps=max_episode_steps)
    env = _wrap_observation(env, cfg)
    return _wrap_action(env, cfg)


def _wrap_observation(env: gymnasium.Env[Any, Any], cfg: EnvConfig) -> gymnasium.Env[Any, Any]:
    space = env.observation_space
    if not isinstance(space, spaces.Box):
        raise ValueError(
            f"env.id '{cfg.id}': observation space {space} is not supported; hieros-pl needs a "
            "Box (uint8 image or vector)"
        )
    is_image = space.dtype == np.uint8 and len(space.shape) in (2, 3)
    if is_image and len(space.shape) == 2:
        env = gymnasium.wrappers.ReshapeObservation(env, (*space.shape, 1))
    if is_image and space.shape[:2] != (cfg.image_size, cfg.image_size):
        # gymnasium's ResizeObservation resizes with OpenCV's INTER_AREA, as the Atari wrapper.
        env = gymnasium.wrappers.ResizeObservation(env, (cfg.image_size, cfg.image_size))
    if is_image:
        return env
    if len(space.shape) != 1:
        env = gymnasium.wrappers.FlattenObservation(env)
    if env.observation_space.dtype != np.float32:
        env = gymnasium.wrappers.DtypeObservation(env, np.float32)
    return env


def _wrap_action(env: gymnasium.Env[Any, Any], cfg: EnvConfig) -> gymnasium.Env[Any, Any]:
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        if space.start != 0:
            raise ValueError(f"env.id '{cfg.id}': Discrete action space {space} must start at 0")
        return env
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f"env.id '{cfg.id}': Box action space {space} must be bounded")
        # float32 bounds: float64 ones make gymnasium warn about lowered precision.
        low = np.full(space.shape, -1.0, np.float32)
        high = np.full(space.shape, 1.0, np.float32)
        return gymnasium.wrappers.RescaleAction(env, low, high)
    raise ValueError(
        f"env.id '{cfg.id}': action space {space} is not supported; hieros-pl needs Discrete or "
        "a 1-D Box"
    )


def make_catch(cfg: EnvConfig) -> gymnasium.Env[Any, Any]:
    """The catch game of :mod:`hieros_pl.envs.catch` (episode cap from max_episode_steps)."""
    env: gymnasium.Env[Any, Any] = Catch(cfg.grid_size, cfg.image_size, cfg.vector_obs)
    return _time_limit(env, cfg.max_episode_steps)


def make_navigation(cfg: EnvConfig) -> gymnasium.Env[Any, Any]:
    """The navigation task of :mod:`hieros_pl.envs.navigation` (plus max_episode_steps)."""
    env: gymnasium.Env[Any, Any] = Navigation(cfg.grid_size, cfg.image_size, cfg.vector_obs)
    return _time_limit(env, cfg.max_episode_steps)


def _time_limit(env: gymnasium.Env[Any, Any], max_episode_steps: int) -> gymnasium.Env[Any, Any]:
    if max_episode_steps > 0:
        return gymnasium.wrappers.TimeLimit(env, max_episode_steps)
    return env


ENV_BUILDERS: dict[str, Callable[[EnvConfig], gymnasium.Env[Any, Any]]] = {
    "atari100k": make_atari100k,
    "gym": make_gym,
    "catch": make_catch,
    "navigation": make_navigation,
}
"""One builder per ``env.kind`` (config.ENV_KINDS)."""
