"""Environment throughput for hieros-bench: raw agent steps per second under random actions.

Atari 100k Pong (64×64, action repeat 4) in a SyncVectorEnv of 1, 2 and 4 envs, and the catch
game (64×64 images). A figure counts the agent steps of all envs together, including NEXT_STEP
autoreset steps; no policy, no replay. The ALE's ROM loading and the first reset are not timed.
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
ATARI_NUM_ENVS = (1, 2, 4)


def _steps_per_second(cfg: EnvConfig, num_envs: int, budget: float) -> dict[str, Any]:
    env = make_env(cfg, seed=0, num_envs=num_envs)
    action_dim = env_spec(env).action_dim
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
        "image_size": cfg.image_size,
        "action_repeat": cfg.action_repeat,
        "steps": vector_steps * num_envs,
    }


def bench_envs(budget: float = BUDGET_SECONDS) -> list[dict[str, Any]]:
    """Steps per second of Atari Pong with 1, 2 and 4 envs, and of catch with 1 env."""
    figures = []
    pong = EnvConfig(kind="atari100k", game="pong", image_size=64, action_repeat=4)
    for num_envs in ATARI_NUM_ENVS:
        figure = _steps_per_second(pong, num_envs, budget)
        figures.append({"name": "env_steps_atari_pong", **figure})
    catch = EnvConfig(kind="catch", image_size=64, action_repeat=1, grid_size=8)
    figures.append({"name": "env_steps_catch", **_steps_per_second(catch, 1, budget)})
    return figures
