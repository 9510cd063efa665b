"""One episode of the policy on a fresh evaluation env, kept frame by frame for a video."""

from __future__ import annotations

import numpy as np
import torch

from hieros_pl.config import Config, run_seed
from hieros_pl.envs import env_spec, make_env, to_env_action
from hieros_pl.module import HierosModule
from hieros_pl.nn.modes import evaluation_mode

VIDEO_SEED_OFFSET = 2_000_003
"""The video env is seeded with seed + this offset, apart from training and evaluation envs."""


@torch.no_grad()
def record_episode(
    module: HierosModule, cfg: Config, mode: str = "greedy", max_steps: int = 10_000
) -> tuple[np.ndarray, float]:
    """Play one episode (at most ``max_steps`` agent steps) on a fresh single env.

    -> frames [T+1, Himg, Wimg, C] uint8 (every observation the agent saw, the last included),
    the episode's return. Image observations only (ValueError naming env.kind otherwise).
    """
    seed = run_seed(cfg)
    env = make_env(cfg.env, seed=None if seed is None else seed + VIDEO_SEED_OFFSET, num_envs=1)
    try:
        spec = env_spec(env)
        if not spec.obs_is_image:
            raise ValueError(f"env.kind={cfg.env.kind} has vector observations: no episode video")
        obs, _ = env.reset()
        carry = module.hierarchy.initial_carry(1, module.device)
        is_first, is_last = np.ones(1, dtype=bool), np.zeros(1, dtype=bool)
        terminal = np.zeros(1, dtype=bool)
        reward = np.zeros(1, dtype=np.float32)
        frames, total = [obs[0]], 0.0
        with evaluation_mode(module):
            for _ in range(max_steps):
                obs_t, reward_t, first_t, last_t, terminal_t = (
                    torch.as_tensor(x, device=module.device)
                    for x in (obs, reward, is_first, is_last, terminal)
                )
                action, carry, _ = module.act(
                    obs_t, reward_t, first_t, last_t, terminal_t, carry, mode
                )
                obs, reward, terminated, truncated, _ = env.step(
                    to_env_action(action.cpu().numpy(), spec)
                )
                reward = np.asarray(reward, dtype=np.float32)
                total += float(reward[0])
                frames.append(obs[0])
                is_first = np.zeros(1, dtype=bool)
                is_last = np.asarray(terminated) | np.asarray(truncated)
                terminal = np.asarray(terminated)
                if is_last[0]:
                    break
    finally:
        env.close()
    return np.stack(frames), total
