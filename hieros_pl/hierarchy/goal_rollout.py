"""Play one environment with a trained hierarchy and keep what each level pursues at every step.

For notebooks and figures: the frames, the world model's reconstruction of each frame, and per
level the goal g̃ it holds and its posterior h, so the subgoals can be decoded to images
(:mod:`hieros_pl.hierarchy.decode`) and their cosines compared with unrelated states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hieros_pl.behavior.imagination import evaluation_mode
from hieros_pl.config import Config
from hieros_pl.envs import env_spec, make_env, to_env_action
from hieros_pl.module import HierosModule


@dataclass
class GoalRollout:
    """T env steps of one environment; ``goals[i]``/``deters[i]`` exist for every level."""

    frames: Tensor  # [T, Himg, Wimg, C] uint8 observation o_t
    reconstructions: Tensor  # [T, Himg, Wimg, C] uint8 level 0's decoded posterior at o_t
    goals: list[Tensor]  # per level [T, h or 0] float32 g̃ held after acting on o_t
    deters: list[Tensor]  # per level [T, h] float32 posterior h after o_t
    rewards: Tensor  # [T] float32 env reward received for the action at o_t


@torch.no_grad()
def record_goals(
    module: HierosModule, cfg: Config, steps: int, mode: str, seed: int
) -> GoalRollout:
    """Act for ``steps`` env steps in one fresh environment (nothing goes to replay)."""
    env = make_env(cfg.env, seed=seed, num_envs=1)
    spec = env_spec(env)
    if not spec.obs_is_image:
        raise ValueError(f"env {cfg.env.kind} has vector observations; subgoal images need images")
    device = module.device
    obs, _ = env.reset(seed=seed)
    carry = module.hierarchy.initial_carry(1, device)
    first, last, reward = np.ones(1, bool), np.zeros(1, bool), np.zeros(1, np.float32)
    terminal = np.zeros(1, bool)
    levels = len(module.hierarchy.levels)
    frames, reconstructions, rewards = [], [], []
    goals: list[list[Tensor]] = [[] for _ in range(levels)]
    deters: list[list[Tensor]] = [[] for _ in range(levels)]
    held = [torch.zeros(0)] * levels
    world_model = module.hierarchy.levels[0].world_model
    try:
        with evaluation_mode(module):
            for _ in range(steps):
                inputs = (torch.as_tensor(x, device=device) for x in (obs, reward, first, last))
                obs_t, reward_t, first_t, last_t = inputs
                terminal_t = torch.as_tensor(terminal, device=device)
                action, carry, records = module.act(
                    obs_t, reward_t, first_t, last_t, terminal_t, carry, mode
                )
                for level, record in enumerate(records):
                    if record is not None:
                        held[level] = record.subgoal[0]
                    goals[level].append(held[level])
                    deters[level].append(carry.levels[level].latent.deter[0])
                frames.append(obs_t[0])
                image = world_model.decode(carry.levels[0].latent.feature())[0]
                reconstructions.append((image * 255.0).round().to(torch.uint8))
                obs, reward, terminated, truncated, _ = env.step(
                    to_env_action(action.cpu().numpy(), spec)
                )
                reward = np.asarray(reward, np.float32)
                rewards.append(float(reward[0]))
                first, last = last, np.asarray(terminated) | np.asarray(truncated)
                terminal = np.asarray(terminated)
    finally:
        env.close()
    return GoalRollout(
        frames=torch.stack(frames).cpu(),
        reconstructions=torch.stack(reconstructions).cpu(),
        goals=[torch.stack(level).cpu() for level in goals],
        deters=[torch.stack(level).cpu() for level in deters],
        rewards=torch.tensor(rewards),
    )
