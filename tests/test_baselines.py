"""hieros-baseline: scripted policies under the evaluation protocol — the action actually played,
fixed quotas, reproducible episode starts, ALE action names, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from hieros_pl.baselines import (
    best_constant,
    constant_actions,
    play_scripted,
    random_actions,
    score_baselines,
)
from hieros_pl.evaluation_progress import EpisodeBar
from tests.conftest import compose

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
ENV.pop("HYDRA_FULL_ERROR", None)


class PaysForActionOne(gymnasium.Env[np.ndarray, int]):
    """Episodes of ``length`` steps; reward 1 for action 1, 0 for action 0."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, length: int) -> None:
        self.length = length
        self.steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.steps = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.steps += 1
        return np.zeros(2, np.float32), float(action), self.steps >= self.length, False, {}


def _paying_envs(lengths: list[int]) -> RecordEpisodeStatistics:
    envs = SyncVectorEnv(
        [lambda n=n: PaysForActionOne(n) for n in lengths], autoreset_mode=AutoresetMode.NEXT_STEP
    )
    envs.action_space.seed(0)
    return RecordEpisodeStatistics(envs)


def _play(env: RecordEpisodeStatistics, source: Any, episodes: int) -> tuple[list, list]:
    return play_scripted(env, episodes, source, 0, EpisodeBar(episodes, "t", False))


def test_constant_policies_play_their_action_and_random_mixes_them() -> None:
    env = _paying_envs([5, 9, 13])
    for action, per_step in ((0, 0.0), (1, 1.0)):
        returns, lengths = _play(env, constant_actions(env, action), 7)
        assert len(returns) == 7 and returns == [per_step * length for length in lengths]
    returns, lengths = _play(env, random_actions(env), 60)
    fraction = sum(returns) / sum(lengths)
    assert 0.35 < fraction < 0.65  # about half of the uniform draws are action 1


def test_quotas_are_fixed_so_short_episodes_are_not_favoured() -> None:
    env = _paying_envs([2, 50])
    _, lengths = _play(env, constant_actions(env, 1), 6)
    assert sorted(lengths) == [2, 2, 2, 50, 50, 50]  # 3 each, not 6 of the short env


def test_catch_baselines_are_reproducible_and_follow_the_protocol() -> None:
    cfg = compose("env=catch", "env.eval_num_envs=4", "seed=3")
    first = score_baselines(cfg, ["random", "constant"], 12, show_progress=False)
    again = score_baselines(cfg, ["random", "constant"], 12, show_progress=False)
    assert first == again
    names = [summary["mode"] for summary in first]
    assert names == ["random", "constant 0 (0)", "constant 1 (1)", "constant 2 (2)"]
    for summary in first:
        assert summary["episodes"] == 12 and summary["env_steps"] == 0
        assert summary["length_mean"] == cfg.env.grid_size - 1
        assert summary["protocol"]["episodes_from"] == "separate eval envs"
    assert best_constant(first) == max(first[1:], key=lambda s: s["return_mean"])["mode"]


def test_each_policy_meets_the_same_episode_starts_whatever_the_order() -> None:
    """One env set serves every policy: a reset with the evaluation seed (and a reseeded action
    space) before each makes a policy's score independent of what was played before it."""
    cfg = compose("env=catch", "env.eval_num_envs=4", "seed=3")
    both = score_baselines(cfg, ["constant", "random"], 12, [2], show_progress=False)
    alone = [score_baselines(cfg, [policy], 12, [2], show_progress=False)[0]
             for policy in ("constant", "random")]  # fmt: skip
    assert both == alone
    cartpole = compose("env=gym", "env.id=CartPole-v1", "env.eval_num_envs=4", "seed=3")
    twice = score_baselines(cartpole, ["random", "random"], 12, show_progress=False)
    assert twice[0] == twice[1]  # the action space is reseeded, not only the envs


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hieros_pl.baselines", *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)


def test_cli_names_ale_actions_and_scores_under_the_atari_protocol() -> None:
    done = _cli("env=atari100k", "env.game=assault", "--policy", "constant", "--action", "2",
                "--episodes", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    (summary,) = report["baselines"]
    assert summary["mode"] == report["best_constant"] == "constant 2 (UP)"
    assert summary["episodes"] == 2 and np.isfinite(summary["human_normalized_score"])
    assert summary["protocol"]["sticky_actions"] is False
    assert summary["protocol"]["noop_max"] == 30 and summary["protocol"]["action_repeat"] == 4


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["env=catch", "--policy", "constant", "--action", "9"],
            "hieros-baseline: --action 9: the env's actions are 0..2",
        ),
        (
            ["env=gym", "env.id=Pendulum-v1", "--policy", "constant"],
            "hieros-baseline: --policy constant needs a discrete action space; the env has "
            "Box(-1.0, 1.0, (1,), float32)",
        ),
        (["env=atari100k", "env.game=pongg"], "hieros-baseline: env.game"),
        (["env=gym", "env.id=CartPol-v1"], "hieros-baseline: env.id"),
    ],
)
def test_cli_reports_bad_input_in_one_line(args: list[str], line: str) -> None:
    done = _cli(*args, "--episodes", "1")
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), done.stderr[-2000:]


def test_cli_rejects_a_non_positive_episode_count_before_building_anything() -> None:
    done = _cli("env=catch", "--episodes", "0")
    assert done.returncode == 2 and "argument --episodes" in done.stderr
