"""Exact state of a vector env from ``make_env``, as tensors and plain containers.

For ``atari100k``, ``catch`` and ``navigation`` every layer of every sub-env is saved: the ALE
emulator (ale-py's ``cloneState(include_rng=True)``, serialised), the Atari100k wrapper's no-op
count, frame counter and max-pool screens, the games' own fields, time limits, the envs' numpy
generators, and the vector env's autoreset flags and episode statistics. Restoring them into a
freshly built env of the same config continues the interrupted episodes step for step.

Arbitrary gymnasium ids (``env.kind=gym``) cannot be saved: a resume closes their interrupted
episode as truncated (the env loop writes an ``is_last`` row) and starts a new one.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium.vector import SyncVectorEnv, VectorEnv
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from hieros_pl.envs.atari import Atari100k
from hieros_pl.envs.catch import Catch
from hieros_pl.envs.factory import SeedOnFirstReset
from hieros_pl.envs.navigation import Navigation

SAVEABLE_KINDS = ("atari100k", "catch", "navigation")
"""``env.kind`` values whose state is saved in the checkpoint."""
STATE_FORMAT = 1


class EnvStateError(ValueError):
    """The env holds a layer whose state cannot be saved, or a state does not fit the env."""


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, copy=True))


def _array(value: torch.Tensor | np.ndarray) -> np.ndarray:
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _generator_state(env: gymnasium.Env[Any, Any]) -> dict[str, Any] | None:
    generator = getattr(env, "_np_random", None)
    return None if generator is None else dict(generator.bit_generator.state)


def _set_generator_state(env: gymnasium.Env[Any, Any], state: dict[str, Any] | None) -> None:
    if state is not None:
        env.np_random.bit_generator.state = state


# ------------------------------------------------------------------------------------------------
# one layer


def _capture_layer(layer: gymnasium.Env[Any, Any]) -> dict[str, Any]:
    if isinstance(layer, SeedOnFirstReset):
        return {"pending_seed": layer._pending_seed}
    if isinstance(layer, TimeLimit):
        return {"elapsed_steps": layer._elapsed_steps}
    if isinstance(layer, OrderEnforcing):
        return {"has_reset": layer._has_reset}
    if isinstance(layer, PassiveEnvChecker):
        return {}
    if isinstance(layer, Atari100k):
        return {
            "episode_frames": layer._episode_frames,
            "noops": layer.noops,
            "screens": _tensor(layer._screens),
        }
    if isinstance(layer, Catch):
        fields = (layer._ball_column, layer._ball_row, layer._paddle_column)
        return {"fields": [int(value) for value in fields], "rng": _generator_state(layer)}
    if isinstance(layer, Navigation):
        return {
            "agent": _tensor(layer._agent),
            "goal": _tensor(layer._goal),
            "steps": layer._steps,
            "rng": _generator_state(layer),
        }
    ale = getattr(layer.unwrapped, "ale", None)
    if layer is layer.unwrapped and ale is not None:
        emulator = np.frombuffer(ale.cloneState(include_rng=True).serialize(), dtype=np.uint8)
        return {"ale": _tensor(emulator), "rng": _generator_state(layer)}
    raise EnvStateError(f"cannot save the state of {type(layer).__name__}")


def _restore_layer(layer: gymnasium.Env[Any, Any], state: dict[str, Any]) -> None:
    if isinstance(layer, SeedOnFirstReset):
        layer._pending_seed = state["pending_seed"]
    elif isinstance(layer, TimeLimit):
        layer._elapsed_steps = state["elapsed_steps"]
    elif isinstance(layer, OrderEnforcing):
        layer._has_reset = state["has_reset"]
    elif isinstance(layer, Atari100k):
        layer._episode_frames = int(state["episode_frames"])
        layer.noops = int(state["noops"])
        layer._screens[...] = _array(state["screens"])
    elif isinstance(layer, Catch):
        layer._ball_column, layer._ball_row, layer._paddle_column = state["fields"]
        _set_generator_state(layer, state["rng"])
    elif isinstance(layer, Navigation):
        layer._agent = _array(state["agent"]).copy()
        layer._goal = _array(state["goal"]).copy()
        layer._steps = int(state["steps"])
        _set_generator_state(layer, state["rng"])
    elif "ale" in state:
        import ale_py

        ale = layer.unwrapped.ale  # type: ignore[attr-defined]
        ale.restoreState(ale_py.ALEState(_array(state["ale"]).tobytes()))
        _set_generator_state(layer, state["rng"])


def _layers(env: gymnasium.Env[Any, Any]) -> list[gymnasium.Env[Any, Any]]:
    layers = [env]
    while isinstance(layers[-1], gymnasium.Wrapper):
        layers.append(layers[-1].env)
    return layers


# ------------------------------------------------------------------------------------------------
# the vector env


def _parts(env: VectorEnv) -> tuple[RecordEpisodeStatistics, SyncVectorEnv]:
    statistics, vector = env, getattr(env, "env", None)
    if not isinstance(statistics, RecordEpisodeStatistics) or not isinstance(vector, SyncVectorEnv):
        raise EnvStateError(
            "env state needs the RecordEpisodeStatistics(SyncVectorEnv) of make_env"
        )
    return statistics, vector


def capture_env_state(env: VectorEnv) -> dict[str, Any]:
    """The state of a ``make_env`` vector env; EnvStateError if a layer cannot be saved."""
    statistics, vector = _parts(env)
    return {
        "format": STATE_FORMAT,
        "envs": [[_capture_layer(layer) for layer in _layers(sub)] for sub in vector.envs],
        "autoreset": _tensor(vector._autoreset_envs),
        "episode_returns": _tensor(statistics.episode_returns),
        "episode_lengths": _tensor(statistics.episode_lengths),
        "previous_dones": _tensor(statistics.prev_dones),
        "episode_count": int(statistics.episode_count),
    }


def restore_env_state(env: VectorEnv, state: dict[str, Any]) -> None:
    """Put ``state`` from :func:`capture_env_state` into a fresh env built from the same config.

    The env must have been reset once (the ALE loads its game then).
    """
    statistics, vector = _parts(env)
    if state.get("format") != STATE_FORMAT or len(state["envs"]) != len(vector.envs):
        raise EnvStateError(
            f"saved env state has {len(state['envs'])} envs (format {state.get('format')}), this "
            f"run has {len(vector.envs)} (format {STATE_FORMAT})"
        )
    for sub, layer_states in zip(vector.envs, state["envs"]):
        layers = _layers(sub)
        if len(layers) != len(layer_states):
            raise EnvStateError("saved env state has another wrapper stack than this env")
        for layer, layer_state in zip(layers, layer_states):
            _restore_layer(layer, layer_state)
    vector._autoreset_envs = _array(state["autoreset"]).copy()
    statistics.episode_returns = _array(state["episode_returns"]).copy()
    statistics.episode_lengths = _array(state["episode_lengths"]).copy()
    statistics.prev_dones = _array(state["previous_dones"]).copy()
    statistics.episode_count = int(state["episode_count"])
