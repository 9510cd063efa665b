"""Evaluation throughput for hieros-bench: episodes per minute of the final evaluation.

Atari Pong with an untrained agent (greedy), at the tiny and the paper size, with the evaluation
envs acting one at a time (``env.eval_num_envs=1``) and as one batch. An untrained Pong agent loses
21:0 in about 800 agent steps, so an episode here is about as long as an early-training one.
"""

from __future__ import annotations

import time
from typing import Any

from hieros_pl.builders import compose_config
from hieros_pl.config import Config
from hieros_pl.envs import env_spec, make_env
from hieros_pl.evaluate import evaluate
from hieros_pl.module import HierosModule

EVAL_NUM_ENVS = (1, 8, 16)
EPISODES_PER_ENV = {"tiny": 2, "paper": 1}
"""Each figure plays this many episodes per env (the batch of 16 plays 16 or 32)."""


def bench_eval_throughput(size: str, num_envs: int) -> dict[str, Any]:
    overrides = ["trainer=cpu", "logger=csv", "hierarchy=depth1", f"size={size}"]
    cfg = compose_config(
        [*overrides, "env=atari100k", "env.game=pong", f"env.eval_num_envs={num_envs}"]
    )
    module = untrained_module(cfg)
    episodes = num_envs * EPISODES_PER_ENV[size]
    start = time.perf_counter()
    result, _ = evaluate(module, cfg, episodes, "greedy", show_progress=False)
    elapsed = time.perf_counter() - start
    return {
        "name": "final_eval_episodes_per_minute",
        "value": 60 * len(result.returns) / elapsed,
        "unit": "episodes/min",
        "size": size,
        "eval_num_envs": num_envs,
        "episodes": len(result.returns),
        "env_steps_per_second": sum(result.lengths) / elapsed,
        "game": "pong",
    }


def untrained_module(cfg: Config) -> HierosModule:
    """A freshly initialised agent for the env of ``cfg``."""
    env = make_env(cfg.env, seed=0, num_envs=1)
    spec = env_spec(env)
    env.close()
    return HierosModule(cfg, spec.obs_shape, spec.obs_is_image, spec.action_dim, spec.discrete)


def bench_evaluation() -> list[dict[str, Any]]:
    return [
        bench_eval_throughput(size, num_envs)
        for size in EPISODES_PER_ENV
        for num_envs in EVAL_NUM_ENVS
    ]
