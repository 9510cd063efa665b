"""Environment throughput for hieros-bench: raw agent steps per second under random actions.

Atari 100k Pong (64×64, action repeat 4) in a SyncVectorEnv of 1, 2, 4, 8 and 16 envs, ale-py's
own ``AtariVectorEnv`` with the same frames (README, "Atari on a CPU", why it is not used), and
the catch game (64×64 images). A figure counts the agent steps of all envs together, including
NEXT_STEP autoreset steps; no policy, no replay. The ALE's ROM loading and the first reset are
not timed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from hieros_pl.config import EnvConfig
from hieros_pl.envs import env_spec, make_env

BUDGET_SECONDS = 2.0
"""Each figure steps its vector env for about this long (after WARMUP_STEPS untimed steps)."""
WARMUP_STEPS = 20
ATARI_NUM_ENVS = (1, 2, 4, 8, 16)


def _steps_per_second(cfg: EnvConfig, num_envs: int, budget: float) -> dict[str, Any]:
    env = make_env(cfg, seed=0, num_envs=num_envs)
    figure = _time_random_steps(env, env_spec(env).action_dim, num_envs, budget)
    return {**figure, "image_size": cfg.image_size, "action_repeat": cfg.action_repeat}


def ale_vector_env(game: str, num_envs: int, image_size: int, noop_max: int = 30) -> Any:
    """ale-py's AtariVectorEnv with our frames: RGB, no stack, no clipping, no fire reset."""
    from ale_py.vector_env import AtariVectorEnv

    return AtariVectorEnv(
        game,
        num_envs,
        img_height=image_size,
        img_width=image_size,
        grayscale=False,
        stack_num=1,
        frameskip=4,
        maxpool=True,
        reward_clipping=False,
        use_fire_reset=False,
        episodic_life=False,
        repeat_action_probability=0.0,
        noop_max=noop_max,
    )


def _time_random_steps(env: Any, action_dim: int, num_envs: int, budget: float) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    env.reset()
    for _ in range(WARMUP_STEPS):
        env.step(rng.integers(action_dim, size=num_envs))
    vector_steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < budget:
        env.step(rng.integers(action_dim, size=num_envs))
        vector_steps += 1
    elapsed = time.perf_counter() - start
    env.close()
    return {
        "value": vector_steps * num_envs / elapsed,
        "unit": "env_steps/s",
        "num_envs": num_envs,
        "steps": vector_steps * num_envs,
    }


def bench_envs(budget: float = BUDGET_SECONDS) -> list[dict[str, Any]]:
    """Steps per second of Atari Pong (ours and ale-py's vector env), and of catch with 1 env."""
    figures = []
    pong = EnvConfig(kind="atari100k", game="pong", image_size=64, action_repeat=4)
    for num_envs in ATARI_NUM_ENVS:
        figure = _steps_per_second(pong, num_envs, budget)
        figures.append({"name": "env_steps_atari_pong", **figure})
    for num_envs in ATARI_NUM_ENVS:
        vector = ale_vector_env("pong", num_envs, pong.image_size)
        figure = _time_random_steps(vector, 6, num_envs, budget)
        figures.append({"name": "env_steps_atari_pong_ale_vector", **figure, "image_size": 64})
    catch = EnvConfig(kind="catch", image_size=64, action_repeat=1, grid_size=8)
    figures.append({"name": "env_steps_catch", **_steps_per_second(catch, 1, budget)})
    return figures
