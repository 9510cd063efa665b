"""hieros-eval: score a checkpoint with N episodes on separate evaluation environments.

``hieros-eval <run_dir | checkpoint> [--checkpoint NAME] [--episodes N] [--mode greedy|sample]
[--video] [--policy-stats] [--out FILE]`` writes the scores as JSON (default
``<run_dir>/eval/hieros-eval_<mode>_<env_steps>.json``) and prints them, with the protocol they
were measured under (ALGORITHM.md §10.2); ``--video`` adds one episode as an mp4 in
``<run_dir>/videos``; ``--policy-stats`` adds what level 0's action distribution looked like
(``hieros_pl.policy_stats``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from hieros_pl.config import Config, EnvConfig, run_seed
from hieros_pl.envs import EnvSpec, to_env_action
from hieros_pl.errors import cli_boundary
from hieros_pl.evaluation_progress import EpisodeBar
from hieros_pl.hierarchy.hierarchy import ActCarry
from hieros_pl.module import HierosModule
from hieros_pl.nn.modes import evaluation_mode
from hieros_pl.policy_stats import PolicyStats

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
    policy: dict[str, Any] | None = None
    """``PolicyStats.summary()`` of level 0 when asked for (``hieros-eval --policy-stats``)."""

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
        if self.policy is not None:
            result["policy"] = self.policy
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


def evaluation_seed(cfg: Config) -> int | None:
    """Seed of the evaluation envs: the run seed + EVAL_SEED_OFFSET (None: OS entropy, D12)."""
    seed = run_seed(cfg)
    return None if seed is None else seed + EVAL_SEED_OFFSET


def episode_quotas(episodes: int, num_envs: int) -> np.ndarray:
    """Episodes each of E envs contributes: fixed before playing, summing to ``episodes``.

    A quota fixed in advance keeps the mean unbiased: counting the first N episodes to finish
    across envs would favour short episodes.
    """
    # -> [E] int64
    if episodes < 1 or num_envs < 1:
        raise ValueError(f"need episodes >= 1 and envs >= 1, got {episodes} and {num_envs}")
    quota = np.full(num_envs, episodes // num_envs, dtype=np.int64)
    quota[: episodes % num_envs] += 1
    return quota


def eval_env_count(episodes: int, eval_num_envs: int) -> int:
    """Evaluation envs to build: ``env.eval_num_envs``, but never more than the episodes."""
    return max(1, min(episodes, eval_num_envs))


@torch.no_grad()
def run_episodes(
    module: HierosModule,
    env: gymnasium.vector.VectorEnv,
    spec: EnvSpec,
    episodes: int,
    mode: str,
    seed: int | None,
    carry: ActCarry | None = None,
    on_episode: Callable[[float], None] | None = None,
    policy_stats: PolicyStats | None = None,
) -> tuple[list[float], list[int], ActCarry]:
    """Play until every env finished its quota of complete episodes (``episode_quotas``).

    The E envs act as one batch; each contributes a share of ``episodes`` fixed in advance, so
    short episodes are not over-represented. Runtime state is separate from training and nothing
    is written to replay. ``env`` comes from ``make_env``, whose episode statistics give each
    return and length; ``on_episode`` is called with each counted return (progress display).
    ``policy_stats`` accumulates level 0's action distributions on the envs still counting,
    closing steps excluded.
    """
    E = env.num_envs
    quota = episode_quotas(episodes, E)
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
            action, carry, records = module.act(
                obs_t, reward_t, first_t, last_t, terminal_t, carry, mode
            )
            if policy_stats is not None:
                # Level 0 acts on every step; a closing step (is_last) acts on the final obs and
                # the env ignores that action.
                level0 = records[0]
                assert level0 is not None and level0.action_probs is not None
                probs = level0.action_probs.float().cpu().numpy()
                executed = action.argmax(-1).cpu().numpy()
                policy_stats.update(probs, executed, is_first, (quota > 0) & ~is_last)
            env_action = to_env_action(action.cpu().numpy(), spec)
            obs, reward, terminated, truncated, info = env.step(env_action)
            reward = np.asarray(reward, dtype=np.float32)
            is_first, is_last = is_last, np.asarray(terminated) | np.asarray(truncated)
            terminal = np.asarray(terminated)
            count_finished_episodes(info, quota, returns, lengths, on_episode)
    return returns, lengths, carry


def count_finished_episodes(
    info: dict[str, Any],
    quota: np.ndarray,
    returns: list[float],
    lengths: list[int],
    on_episode: Callable[[float], None] | None,
) -> None:
    """Append the return and length of each episode that ended on this step in an env whose
    quota is not used up (``RecordEpisodeStatistics``' ``info``), and count it off the quota."""
    # quota: [E] int64, decremented in place
    ended = np.asarray(info.get("_episode", np.zeros(len(quota), dtype=bool)))
    for index in np.flatnonzero(ended & (quota > 0)):
        returns.append(float(info["episode"]["r"][index]))
        lengths.append(int(info["episode"]["l"][index]))
        quota[index] -= 1
        if on_episode is not None:
            on_episode(returns[-1])


def evaluate(
    module: HierosModule,
    cfg: Config,
    episodes: int,
    mode: str,
    carry: ActCarry | None = None,
    show_progress: bool = True,
    on_episode: Callable[[float], None] | None = None,
    with_policy_stats: bool = False,
) -> tuple[EvalResult, ActCarry]:
    """Build the eval envs, play, and close them. ``carry``: shared runtime state (D14 only).

    ``min(env.eval_num_envs, episodes)`` envs play as one batch. ``on_episode`` receives each
    counted return (the training run's bar); without it a bar of its own counts the episodes
    when ``show_progress``. ``with_policy_stats`` adds level 0's ``PolicyStats`` (discrete
    action spaces only).
    """
    from hieros_pl.envs import env_spec, make_env

    eval_seed = evaluation_seed(cfg)
    # D14's shared runtime state has the training env count; the protocol's envs are batched.
    count = (
        cfg.env.num_envs if carry is not None else eval_env_count(episodes, cfg.env.eval_num_envs)
    )
    if with_policy_stats and not has_policy_stats(module):
        raise ValueError(f"policy statistics need discrete actions; env kind '{cfg.env.kind}'")
    env = make_env(cfg.env, seed=eval_seed, num_envs=count)
    spec = env_spec(env)
    stats = PolicyStats(spec.action_dim, env.num_envs) if with_policy_stats else None
    bar = EpisodeBar(episodes, f"eval {mode}", show_progress and on_episode is None)
    try:
        returns, lengths, carry = run_episodes(
            module,
            env,
            spec,
            episodes,
            mode,
            eval_seed,
            carry,
            on_episode or bar.on_episode,
            stats,
        )
    finally:
        bar.close()
        env.close()
    described = protocol(cfg.env, mode)
    if cfg.compat.eval_protocol_original:
        described["runtime_state"] = "shared with training (compat.eval_protocol_original)"
    policy = None if stats is None else stats.summary()
    result = EvalResult(mode, returns, lengths, int(module.env_steps), described, policy)
    return result, carry


def has_policy_stats(module: HierosModule) -> bool:
    """Whether level 0 acts from a categorical, whose statistics ``PolicyStats`` reports."""
    return module.hierarchy.levels[0].spec.action_kind == "onehot"


def game_of(cfg: Config) -> str | None:
    from hieros_pl.envs.games import canonical_game

    return canonical_game(cfg.env.game) if cfg.env.kind == "atari100k" else None


def load_run(path: Path) -> tuple[Config, HierosModule]:
    """Config and weights of a run dir (or of a checkpoint inside one)."""
    from hieros_pl.builders import build_module, load_run_config
    from hieros_pl.callbacks.checkpoint import load_checkpoint

    checkpoint = checkpoint_path(path)
    run_dir = checkpoint.parent.parent
    cfg = load_run_config(run_dir)
    module = build_module(cfg)
    # weights_only: a checkpoint that would have to execute a pickled object is refused.
    module.load_state_dict(load_checkpoint(checkpoint)["state_dict"])
    return cfg, module


def checkpoint_path(path: Path, name: str | None = None) -> Path:
    """A checkpoint file itself, or ``<run_dir>/checkpoints/<name or last.ckpt>``."""
    checkpoint = path if path.is_file() else path / "checkpoints" / (name or "last.ckpt")
    if not checkpoint.exists():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    return checkpoint


def describe(summary: dict[str, Any], budget: int) -> str:
    """The protocol of an evaluation summary in one line (what every reported number carries)."""
    when = "at the budget" if summary["env_steps"] >= budget else f"before the budget of {budget}"
    return (
        f"{summary['mode']} policy, mean of {summary['episodes']} complete episodes on "
        f"{summary['protocol']['episodes_from']}, after {summary['env_steps']} env steps ({when})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hieros-eval", description=__doc__)
    parser.add_argument("path", type=Path, help="run dir or checkpoint file")
    parser.add_argument("--checkpoint", default=None, help="file in RUN_DIR/checkpoints")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--mode", choices=("greedy", "sample"), default="greedy")
    parser.add_argument("--video", action="store_true", help="also write one episode as mp4")
    parser.add_argument(
        "--policy-stats",
        action="store_true",
        help="also report level 0's action distribution: entropy, top probability, action "
        "changes, longest run of one action, action frequencies (discrete actions)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: in RUN_DIR)")
    args = parser.parse_args(argv)
    with cli_boundary("hieros-eval"):
        _evaluate_and_write(args)


def _evaluate_and_write(args: argparse.Namespace) -> None:
    """hieros-eval's work once its arguments are parsed (inside the one-line error boundary)."""
    if args.episodes < 1:
        sys.exit(f"hieros-eval: --episodes must be >= 1, got {args.episodes}")
    try:
        checkpoint = checkpoint_path(args.path, args.checkpoint)
        cfg, module = load_run(checkpoint)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"hieros-eval: {error}")
    if args.policy_stats and not has_policy_stats(module):
        sys.exit(
            f"hieros-eval: --policy-stats needs a discrete action space; env kind "
            f"'{cfg.env.kind}' has continuous actions"
        )
    result, _ = evaluate(module, cfg, args.episodes, args.mode, with_policy_stats=args.policy_stats)
    summary = result.summary(game_of(cfg))
    summary["protocol"]["description"] = describe(summary, cfg.env_steps)
    summary["checkpoint"] = str(checkpoint)
    summary["returns"] = result.returns
    run_dir = checkpoint.parent.parent
    stem = f"hieros-eval_{args.mode}_{result.env_steps}"
    if args.video:
        summary["video"] = str(
            write_episode_video(module, cfg, args.mode, run_dir / "videos", stem)
        )
    out = args.out or run_dir / "eval" / f"{stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    summary["written_to"] = str(out)
    print(json.dumps(summary, indent=2))


def write_episode_video(
    module: HierosModule, cfg: Config, mode: str, directory: Path, stem: str
) -> Path:
    """One episode of ``mode`` on a fresh env as ``<directory>/<stem>.mp4``."""
    from hieros_pl.videos.episode import record_episode
    from hieros_pl.videos.writer import write_video

    frames, _ = record_episode(module, cfg, mode)
    return write_video(directory / f"{stem}.mp4", frames)
