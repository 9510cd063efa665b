"""Decoded-subgoal video: the frames level 0 saw beside the goal it was pursuing at each step,
decoded into a level-0 image (``hierarchy.decode.subgoal_images``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hieros_pl.data.batch import Batch
from hieros_pl.hierarchy.decode import observation_images, subgoal_images
from hieros_pl.hierarchy.hierarchy import Hierarchy


@torch.no_grad()
def observed_beside_goal(hierarchy: Hierarchy, batch: Batch) -> np.ndarray:
    """Per step: observed frame | decoded goal g̃ of level 0, one row of panels per sequence."""
    # batch: level-0 replay rows, obs [B, T, Himg, Wimg, C] uint8, subgoal [B, T, h] float32
    # -> [T, B*Himg, 2*Wimg, C] uint8
    B, T, Himg, Wimg, C = batch.obs.shape
    goals: Tensor = subgoal_images(hierarchy, 0, batch.subgoal.float())
    panels = torch.cat([batch.obs, goals.to(batch.obs.device)], dim=3)  # [B, T, H, 2W, C]
    return panels.permute(1, 0, 2, 3, 4).reshape(T, B * Himg, 2 * Wimg, C).cpu().numpy()


@torch.no_grad()
def seen_above_goal(hierarchy: Hierarchy, level: int, batch: Batch) -> np.ndarray:
    """Per step of level ``level`` ≥ 1: the K lower frames it observed (top row) above its
    decoded goal's K frames (bottom row), both rendered the same way; one block per sequence."""
    # batch: level's replay rows, obs [B, T, K*(S*Z+h)], subgoal [B, T, h]
    # -> [T, B*2*Himg, K*Wimg, C] uint8 (level 1; deeper levels flatten their extra K dims)
    seen = observation_images(hierarchy, level, batch.obs.float())
    goals = subgoal_images(hierarchy, level, batch.subgoal.float())
    B, T = seen.shape[:2]
    Himg, Wimg, C = seen.shape[-3:]
    seen = seen.reshape(B, T, -1, Himg, Wimg, C)
    goals = goals.reshape(B, T, -1, Himg, Wimg, C)
    rows = torch.stack([seen, goals], dim=2)  # [B, T, 2, K, H, W, C]
    K = rows.shape[3]
    strips = rows.permute(1, 0, 2, 4, 3, 5, 6).reshape(T, B * 2 * Himg, K * Wimg, C)
    return strips.cpu().numpy()
