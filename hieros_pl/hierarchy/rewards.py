"""Intrinsic rewards and the reward components of each level (ALGORITHM.md §5.7-5.9).

Components j ∈ {extrinsic, subgoal, novelty}, keyed by name. Both intrinsic rewards are
differentiable in the imagined h, as the original's: with ``behavior.imag_gradient=dynamics|both``
the actor's gradient reaches the imagined states through them. Only the autoencoder's training
target (its input in ``SubgoalAutoencoder.loss``) is detached, and the novelty reward never
changes the autoencoder's weights (see :func:`novelty_reward`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hieros_pl.behavior.imagination import frozen_parameters
from hieros_pl.config import ConfigError, RewardConfig
from hieros_pl.hierarchy.subgoal import SubgoalAutoencoder
from hieros_pl.nn.symlog import symlog as symlog_compress

NORM_FLOOR = 1e-12


def subgoal_reward(deter: Tensor, goal: Tensor, symlog: bool) -> Tensor:
    """ "Max-cosine" reward g̃ᵀs / max(‖g̃‖, ‖s‖)², clipped at 0, with s = symlog(h) (§5.7).

    Equals 1 when s = g̃ (symlog(1) ≈ 0.693 with ``symlog``), 0 for orthogonal or opposite
    vectors and below 1 when the norms differ. Differentiable in ``deter`` (and ``goal``).
    """
    # deter: [..., h] float32   goal: [..., h] float32 (g̃, in symlog(h) space)
    # -> reward: [...] float32
    assert deter.shape == goal.shape, f"deter {tuple(deter.shape)} != goal {tuple(goal.shape)}"
    state = symlog_compress(deter)
    larger_norm = torch.maximum(goal.norm(dim=-1) + NORM_FLOOR, state.norm(dim=-1) + NORM_FLOOR)
    reward = torch.clamp((goal * state).sum(-1) / larger_norm**2, min=0.0)
    return symlog_compress(reward) if symlog else reward


def novelty_reward(
    deter: Tensor, autoencoder: SubgoalAutoencoder, symlog: bool, original_space: bool
) -> Tensor:
    """Reconstruction error of the subgoal autoencoder, mean over the h dims (§5.8).

    Default: mean_d (symlog(h) − AE(h))², the space the autoencoder reconstructs. Original (D6):
    mean_d (h − AE(h))². symlog'd when ``symlog``. Differentiable in ``deter`` through both
    terms; the autoencoder's weights are frozen while it is computed, so a loss built on this
    reward never gives them a gradient.
    """
    # deter: [..., h] float32 -> reward: [...] float32
    target = deter if original_space else symlog_compress(deter)
    with frozen_parameters(autoencoder):
        reconstruction = autoencoder.reconstruct(deter)
    reward = ((target - reconstruction) ** 2).mean(-1)
    return symlog_compress(reward) if symlog else reward


def level_reward_weights(level: int, levels: int, cfg: RewardConfig) -> dict[str, float]:
    """w_j of the components level ``level`` of ``levels`` optimises (§5.9), zero weights dropped.

    extrinsic: every level (only the top with ``extrinsic_top_only``); subgoal: every level
    below the top (those receive a subgoal); novelty: every level, minus level 0 with
    ``novelty_only_higher_levels``, minus all but the top with ``novelty_top_only``. A component
    whose weight is 0 is left out, so no critic is built for it.
    """
    top = levels - 1
    present = {
        "extrinsic": not cfg.extrinsic_top_only or level == top,
        "subgoal": level < top,
        "novelty": (not cfg.novelty_only_higher_levels or level > 0)
        and (not cfg.novelty_top_only or level == top),
    }
    weights = {
        term: cfg.weights[term] for term, used in present.items() if used and cfg.weights[term] > 0
    }
    if not weights:
        raise ConfigError(
            f"reward.weights {cfg.weights} leave level {level} of {levels} without any reward "
            "component; give extrinsic, subgoal or novelty a positive weight there"
        )
    return weights
