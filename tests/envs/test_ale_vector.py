"""ale-py's AtariVectorEnv against our Atari 100k wrapper (README, "Atari on a CPU").

Without no-ops both give the same frames and rewards for the same actions; the no-op start is
where they differ (ours draws U{0, ..., noop_max - 1} single-frame no-ops from the env's seed and
counts the 108k-frame cap after them), which is why training keeps our wrapper.
"""

from __future__ import annotations

import numpy as np

from hieros_pl.bench.envs import ale_vector_env
from hieros_pl.config import EnvConfig
from hieros_pl.envs.atari import make_atari100k


def test_same_frames_and_rewards_without_noops() -> None:
    ours = make_atari100k(EnvConfig(kind="atari100k", game="pong", image_size=32, noop_max=1))
    theirs = ale_vector_env("pong", 1, 32, noop_max=1)
    # noop_max=1: ours draws U{0} no-ops, ale-py's vector env none either.
    theirs_obs, _ = theirs.reset(seed=0)
    ours_obs, _ = ours.reset(seed=0)
    np.testing.assert_array_equal(theirs_obs.reshape(32, 32, 3), ours_obs)
    rng = np.random.default_rng(0)
    rewards = []
    for _ in range(250):
        action = int(rng.integers(6))
        theirs_obs, theirs_reward, *_ = theirs.step(np.array([action]))
        ours_obs, ours_reward, *_ = ours.step(action)
        np.testing.assert_array_equal(theirs_obs.reshape(32, 32, 3), ours_obs)
        assert float(theirs_reward[0]) == ours_reward
        rewards.append(ours_reward)
    theirs.close()
    ours.close()
    assert any(reward != 0 for reward in rewards), "the check should see the score change"
