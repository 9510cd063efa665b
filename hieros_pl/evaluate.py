"""hieros-eval: score a checkpoint with N episodes on separate evaluation environments.

``hieros-eval <run_dir | checkpoint> [--episodes N] [--mode greedy|sample]`` prints the scores as
JSON, with the protocol they were measured under (ALGORITHM.md §10.2).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from hieros_pl.config import Config, EnvConfig, run_seed
from hieros_pl.envs import EnvSpec, to_env_action
from hieros_pl.hierarchy.hierarchy import ActCarry
from hieros_pl.module import HierosModule
from hieros_pl.nn.modes import evaluation_mode

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation envs are seeded with seed + this offset + index, disjoint from training envs."""


@dataclass
class EvalResult:
    """Returns of complete episodes and the protocol they were measured under."""

    mode: str
    returns: list[float]
    lengths: list[int]
    env_steps: int
    protocol: dict[str, Any]

    def summary(self, game: str | None) -> dict[str, Any]:
        from hieros_pl.metrics import human_normalized_score

        returns = np.asarray(self.returns, dtype=np.float64)
        result: dict[str, Any] = {
            "mode": self.mode,
            "episodes": len(self.returns),
            "return_mean": float(returns.mean()) if len(returns) else math.nan,
            "return_std": float(returns.std()) if len(returns) else math.nan,
            "length_mean": float(np.mean(self.lengths)) if self.lengths else math.nan,
            "env_steps": self.env_steps,
            "protocol": self.protocol,
        }
        if game is not None and len(returns):
            result["human_normalized_score"] = float(human_normalized_score(game, returns.mean()))
        return result


def protocol(env: EnvConfig, mode: str) -> dict[str, Any]:
    """The conditions every reported number carries (ALGORITHM.md §10.2)."""
    described: dict[str, Any] = {"episodes_from": "separate eval envs", "policy": mode}
    if env.kind == "atari100k":
        described |= {
            "sticky_actions": False,
            "noop_max": env.noop_max,
            "episode_frames": env.episode_frames,
            "action_set": "minimal",
            "action_repeat": env.action_repeat,
        }
    return described


@torch.no_grad()
def run_episodes(
    module: HierosModule,
    env: gymnasium.vector.VectorEnv,
    spec: EnvSpec,
    episodes: int,
    mode: str,
    seed: int | None,
    carry: ActCarry | None = None,
) -> tuple[list[float], list[int], ActCarry]:
    """Play until every env finished its share of ``episodes`` complete episodes.

    Each of the E envs contributes ceil(episodes / E) episodes, so short episodes are not
    over-represented; runtime state is separate from training and nothing is written to replay.
    ``env`` comes from ``make_env``, whose episode statistics give each return and length.
    """
    E = env.num_envs
    quota = np.full(E, math.ceil(episodes / E))
    obs, _ = env.reset(seed=seed)
    if carry is None:
        carry = module.hierarchy.initial_carry(E, module.device)
    is_first = np.ones(E, dtype=bool)
    is_last = np.zeros(E, dtype=bool)
    terminal = np.zeros(E, dtype=bool)
    reward = np.zeros(E, dtype=np.float32)
    returns: list[float] = []
    lengths: list[int] = []
    with evaluation_mode(module):  # once for all steps, not twice per step
        while quota.max() > 0:
            obs_t, reward_t, first_t, last_t, terminal_t = (
                torch.as_tensor(x, device=module.device)
                for x in (obs, reward, is_first, is_last, terminal)
            )
            action, carry, _ = module.act(obs_t, reward_t, first_t, last_t, terminal_t, carry, mode)
            env_action = to_env_action(action.cpu().numpy(), spec)
            obs, reward, terminated, truncated, info = env.step(env_action)
            reward = np.asarray(reward, dtype=np.float32)
            is_first, is_last = is_last, np.asarray(terminated) | np.asarray(truncated)
            terminal = np.asarray(terminated)
            ended = np.asarray(info.get("_episode", np.zeros(E, dtype=bool)))
            for index in np.flatnonzero(ended & (quota > 0)):
                returns.append(float(info["episode"]["r"][index]))
                lengths.append(int(info["episode"]["l"][index]))
                quota[index] -= 1
    return returns[:episodes], lengths[:episodes], carry


def evaluate(
    module: HierosModule, cfg: Config, episodes: int, mode: str, carry: ActCarry | None = None
) -> tuple[EvalResult, ActCarry]:
    """Build the eval envs, play, and close them. ``carry``: shared runtime state (D14 only)."""
    from hieros_pl.envs import env_spec, make_env

    seed = run_seed(cfg)
    eval_seed = None if seed is None else seed + EVAL_SEED_OFFSET
    env = make_env(cfg.env, seed=eval_seed, num_envs=cfg.env.eval_num_envs)
    try:
        returns, lengths, carry = run_episodes(
            module, env, env_spec(env), episodes, mode, eval_seed, carry
        )
    finally:
        env.close()
    described = protocol(cfg.env, mode)
    if cfg.compat.eval_protocol_original:
        described["runtime_state"] = "shared with training (compat.eval_protocol_original)"
    result = EvalResult(mode, returns, lengths, int(module.env_steps), described)
    return result, carry


def game_of(cfg: Config) -> str | None:
    from hieros_pl.envs.games import canonical_game

    return canonical_game(cfg.env.game) if cfg.env.kind == "atari100k" else None


def load_run(path: Path) -> tuple[Config, HierosModule]:
    """Config and weights of a run dir (or of a checkpoint inside one)."""
    from hieros_pl.builders import build_module, load_run_config

    checkpoint = path if path.is_file() else path / "checkpoints" / "last.ckpt"
    if not checkpoint.exists():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    run_dir = checkpoint.parent.parent
    cfg = load_run_config(run_dir)
    module = build_module(cfg)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    return cfg, module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hieros-eval", description=__doc__)
    parser.add_argument("path", type=Path, help="run dir or checkpoint file")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--mode", choices=("greedy", "sample"), default="greedy")
    args = parser.parse_args(argv)
    try:
        cfg, module = load_run(args.path)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"hieros-eval: {error}")
    result, _ = evaluate(module, cfg, args.episodes, args.mode)
    summary = result.summary(game_of(cfg))
    summary["returns"] = result.returns
    print(json.dumps(summary, indent=2))
