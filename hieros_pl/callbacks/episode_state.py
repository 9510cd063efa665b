"""The env loop's running episodes in a checkpoint: env state, current observation, carry.

``episode_state`` is merged into the env loop's ``state_dict``; ``resume_episode_state`` puts it
back after a resume. Everything is tensors and plain containers (``weights_only`` loading).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hieros_pl.carry_state import from_tree, to_tree

OBSERVATION_FIELDS = ("obs", "reward", "is_first", "is_last", "is_terminal")


def episode_state(loop: Any) -> dict[str, Any]:
    """env (None unless the loop saves env state), current, carry, last_env_action."""
    from hieros_pl.envs.state import capture_env_state

    current = loop.current
    if current is None:
        return {"env": None, "current": None, "carry": None, "last_env_action": None}
    last_action = loop.last_env_action
    return {
        "env": capture_env_state(loop.env) if loop.env_state else None,
        "current": {
            name: torch.from_numpy(np.array(getattr(current, name), copy=True))
            for name in OBSERVATION_FIELDS
        },
        "carry": to_tree(loop.carry),
        "last_env_action": None if last_action is None else torch.from_numpy(np.array(last_action)),
    }


def resume_episode_state(loop: Any, module: Any, state: dict[str, Any]) -> None:
    """Set the loop's current observation, carry and last action from ``state``; reset the env
    once and, when the env state was saved, restore it."""
    from hieros_pl.callbacks.env_loop import EnvObservation
    from hieros_pl.envs.state import restore_env_state

    # The reset loads the games; its seed is irrelevant when the saved state replaces it.
    loop.env.reset()
    if state.get("env") is not None and loop.env_state:
        restore_env_state(loop.env, state["env"])
    loop.current = EnvObservation(
        **{name: state["current"][name].numpy().copy() for name in OBSERVATION_FIELDS}
    )
    template = module.hierarchy.initial_carry(loop.num_envs, module.device)
    loop.carry = from_tree(template, state["carry"])
    action = state.get("last_env_action")
    loop.last_env_action = None if action is None else action.numpy().copy()
