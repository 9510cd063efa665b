"""hieros-baseline: scripted policies scored under the evaluation protocol of hieros-eval.

``hieros-baseline [OVERRIDES ...] [--policy random constant] [--action K ...] [--episodes N]
[--out FILE]`` composes the training config from Hydra overrides (``experiment=atari_cpu
env.game=assault``), builds the evaluation envs as the final evaluation does (the run seed plus
``EVAL_SEED_OFFSET``, ``min(env.eval_num_envs, N)`` envs, per-env quotas fixed in advance; built
once, reset with that seed before each policy) and plays, with no model and no training:

- ``random``: actions drawn uniformly from the env's action space, seeded from the eval seed;
- ``constant``: one action on every step, once for each action of a discrete action set (or only
  the indices given by ``--action``).

It prints one JSON object: a summary per policy in the format of hieros-eval, with the policy
named (``constant 2 (UP)``), and the best constant action. What a learned policy must beat: a
score that a single repeated action also reaches says little about learning.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv

from hieros_pl.config import Config
from hieros_pl.errors import EnvError, cli_boundary
from hieros_pl.evaluate import (
    EVAL_SEED_OFFSET,
    EvalResult,
    count_finished_episodes,
    episode_quotas,
    eval_env_count,
    evaluation_seed,
    game_of,
    protocol,
)
from hieros_pl.evaluation_progress import EpisodeBar

POLICIES = ("random", "constant")

ActionSource = Callable[[], np.ndarray]
"""Env actions for every env of the vector env, one call per step."""


def play_scripted(
    env: VectorEnv, episodes: int, actions: ActionSource, seed: int | None, bar: EpisodeBar
) -> tuple[list[float], list[int]]:
    """Play ``actions`` until every env finished its quota of complete episodes
    (``episode_quotas``), as ``hieros_pl.evaluate.run_episodes`` plays a learned policy."""
    quota = episode_quotas(episodes, env.num_envs)
    env.reset(seed=seed)
    returns: list[float] = []
    lengths: list[int] = []
    while quota.max() > 0:
        *_, info = env.step(actions())
        count_finished_episodes(info, quota, returns, lengths, bar.on_episode)
    return returns, lengths


def random_actions(env: VectorEnv) -> ActionSource:
    """Uniform actions from the vector env's action space (seeded by ``make_env``)."""
    return lambda: np.asarray(env.action_space.sample())


def constant_actions(env: VectorEnv, action: int) -> ActionSource:
    """Action index ``action`` in every env on every step."""
    repeated = np.full(env.num_envs, action, dtype=np.int64)
    return lambda: repeated


def action_names(env: VectorEnv) -> list[str]:
    """Names of a discrete action set: the ALE's meanings (``UP``, ``FIRE``) where the env has
    them, else the indices. Raises EnvError for a continuous action space."""
    space = env.single_action_space
    if not isinstance(space, spaces.Discrete):
        raise EnvError(f"--policy constant needs a discrete action space; the env has {space}")
    first = env.unwrapped.envs[0].unwrapped  # type: ignore[attr-defined]
    meanings = getattr(first, "get_action_meanings", None)
    return list(meanings()) if meanings is not None else [str(k) for k in range(int(space.n))]


def planned_policies(
    env: VectorEnv, policies: list[str], actions: list[int] | None
) -> list[tuple[str, int | None]]:
    """(name, constant action index or None for random) of every policy to play, in order."""
    planned: list[tuple[str, int | None]] = []
    for policy in policies:
        if policy == "random":
            planned.append(("random", None))
            continue
        names = action_names(env)
        for index in range(len(names)) if actions is None else actions:
            if not 0 <= index < len(names):
                raise EnvError(f"--action {index}: the env's actions are 0..{len(names) - 1}")
            planned.append((f"constant {index} ({names[index]})", index))
    return planned


def score_baselines(
    cfg: Config,
    policies: list[str],
    episodes: int,
    actions: list[int] | None = None,
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    """One hieros-eval-style summary per scripted policy on the final evaluation's envs. Each
    policy starts from a reset with the evaluation seed (and a reseeded action space), so every
    policy meets the same episode starts whatever the order it is played in."""
    from hieros_pl.builders import build_env

    seed = evaluation_seed(cfg)
    count = eval_env_count(episodes, cfg.env.eval_num_envs)
    env = build_env(cfg, count, seed_offset=EVAL_SEED_OFFSET)
    summaries = []
    try:
        for name, action in planned_policies(env, policies, actions):
            env.action_space.seed(seed)
            source = random_actions(env) if action is None else constant_actions(env, action)
            bar = EpisodeBar(episodes, name, show_progress)
            try:
                returns, lengths = play_scripted(env, episodes, source, seed, bar)
            finally:
                bar.close()
            result = EvalResult(name, returns, lengths, 0, protocol(cfg.env, name))
            summaries.append(result.summary(game_of(cfg)))
    finally:
        env.close()
    return summaries


def best_constant(summaries: list[dict[str, Any]]) -> str | None:
    """The constant-action policy with the highest mean return, if any was played."""
    constant = [s for s in summaries if s["mode"].startswith("constant")]
    return max(constant, key=lambda s: s["return_mean"])["mode"] if constant else None


def main(argv: list[str] | None = None) -> None:
    from hieros_pl.arg_types import count

    parser = argparse.ArgumentParser(prog="hieros-baseline", description=__doc__)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for hieros-train")
    parser.add_argument("--policy", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument(
        "--action", nargs="+", type=int, default=None, help="constant: only these indices"
    )
    parser.add_argument("--episodes", type=count, default=100)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    with cli_boundary("hieros-baseline"):
        from hieros_pl.builders import compose_config

        cfg = compose_config(args.overrides)
        summaries = score_baselines(cfg, args.policy, args.episodes, args.action)
        report = {"baselines": summaries, "best_constant": best_constant(summaries)}
        text = json.dumps(report, indent=2)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
        print(text)


if __name__ == "__main__":
    main()
