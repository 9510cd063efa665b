"""Open-loop world-model predictions, as DreamerV3 reports them: for a few replayed sequences,
the posterior over a context of observed frames, then the prior rolled forward on the
recorded actions alone; frames are truth | prediction | error side by side.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hieros_pl.data.batch import Batch
from hieros_pl.nn.modes import evaluation_mode
from hieros_pl.world_models.latent import LatentState
from hieros_pl.world_models.world_model import WorldModel, previous_actions

CONTEXT = 5
"""Observed frames before the open-loop part (DreamerV3's report uses 5)."""


@torch.no_grad()
def open_loop_prediction(world_model: WorldModel, batch: Batch, context: int) -> Tensor:
    """Decoded frames: posterior for t < context, then the prior on the recorded actions.

    Modes, not samples, throughout (no RNG is drawn, so training randomness is untouched);
    eval mode (no dropout). The action leading to o_t follows the model's alignment (D1).
    """
    # batch.obs: [B, T, Himg, Wimg, C] uint8 -> [B, T, Himg, Wimg, C] float32 in [0, 1]
    T = batch.shape[1]
    assert 0 < context < T, f"context {context} must be in (0, {T})"
    with evaluation_mode(world_model):
        posterior, _ = world_model.observe(
            batch.obs[:, :context],
            batch.action[:, :context],
            batch.is_first[:, :context],
            sample=False,
        )
        aligned = previous_actions(batch.action, world_model.action_alignment_original)
        state = posterior.at(context - 1)
        imagined = []
        for t in range(context, T):
            state = world_model.imagine_step(state, aligned[:, t], sample=False)
            imagined.append(state)
        states = LatentState.stack(imagined)
        features = torch.cat([posterior.feature(), states.feature()], dim=1)
        return world_model.decode(features)


def side_by_side(truth: Tensor, prediction: Tensor) -> np.ndarray:
    """Frames of truth | prediction | error ((prediction − truth + 1) / 2, grey = exact), one
    row of panels per sequence."""
    # truth: [B, T, Himg, Wimg, C] uint8   prediction: same shape, float32 in [0, 1]
    # -> [T, B*Himg, 3*Wimg, C] uint8
    B, T, Himg, Wimg, C = truth.shape
    observed = truth.float() / 255.0
    error = (prediction - observed + 1.0) / 2.0
    panels = torch.cat([observed, prediction, error], dim=3)  # [B, T, Himg, 3*Wimg, C]
    frames = panels.permute(1, 0, 2, 3, 4).reshape(T, B * Himg, 3 * Wimg, C)
    return (frames.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()
