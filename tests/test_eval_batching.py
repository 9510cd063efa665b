"""Batched evaluation: fixed per-env quotas that do not favour short episodes, env count capped
by the episodes, and every counted episode reported to the progress display."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from hieros_pl.envs import env_spec
from hieros_pl.evaluate import episode_quotas, eval_env_count, run_episodes
from hieros_pl.module import HierosModule
from tests.conftest import compose


class FixedLength(gymnasium.Env[np.ndarray, int]):
    """Episodes of exactly ``length`` steps whose return equals the length."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, length: int) -> None:
        self.length = length
        self.step_count = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.step_count = 0
        return np.zeros(3, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.step_count += 1
        return np.zeros(3, np.float32), 1.0, self.step_count >= self.length, False, {}


def test_quotas_sum_to_the_episodes_and_differ_by_at_most_one() -> None:
    assert episode_quotas(100, 16).tolist() == [7] * 4 + [6] * 12
    assert episode_quotas(3, 2).tolist() == [2, 1]
    for episodes in range(1, 40):
        for envs in range(1, 20):
            quota = episode_quotas(episodes, envs)
            assert quota.sum() == episodes and quota.max() - quota.min() <= 1
    with pytest.raises(ValueError, match="episodes >= 1"):
        episode_quotas(0, 4)


def test_eval_env_count_never_exceeds_the_episodes() -> None:
    assert eval_env_count(100, 16) == 16
    assert eval_env_count(10, 16) == 10
    assert eval_env_count(5, 1) == 1


def test_short_episodes_are_not_favoured() -> None:
    # Env 0 ends every 6 steps, env 1 every step. Quotas [2, 1] must give two long episodes and
    # one short one; counting the first three to finish would give two short ones and a long one.
    cfg = compose("hierarchy=depth1")
    env = RecordEpisodeStatistics(
        SyncVectorEnv(
            [lambda: FixedLength(6), lambda: FixedLength(1)],
            autoreset_mode=AutoresetMode.NEXT_STEP,
        )
    )
    module = HierosModule(cfg, (3,), False, 2, discrete=True)
    counted: list[float] = []
    returns, lengths, _ = run_episodes(
        module, env, env_spec(env), 3, "greedy", seed=0, on_episode=counted.append
    )
    assert sorted(lengths) == [1, 6, 6]
    assert sorted(returns) == [1.0, 6.0, 6.0]
    assert counted == returns
