"""Encoder probe: can the run's encoder see the reward in o_t, and which loss learns it at the
rate the replay holds it?

A fresh copy of the run's observation encoder (its config, new weights) under a fresh head of
the reward head's shape (``head_units`` × ``head_layers``, zero-initialised output; both can be
changed) reads o_t
alone and is trained on the first part of every replay stream with one of three losses, each
from the same initial weights:

    twohot     −log p(r_t) under a two-hot head in ``reward_bins``, rows at the replay's rate:
               the world model's reward loss without the world model
    bce        binary cross-entropy of "r_t ≠ 0", rows at the replay's rate
    balanced   binary cross-entropy with half rewarded rows in every batch (how the reward
               probe trains its detectors)

Each is scored every ``log_every`` updates by the AUC of "r_t ≠ 0" on the held-out last part of
every stream (two-hot: by |E[r̂_t]|). Reading: balanced high means the encoder can see the
reward; twohot well below bce means the two-hot loss at the replay's rate is what learns slowly.
Adam with the world model's lr, eps and clip, without warm-up or the rest of the world model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hieros_pl.config import Config
from hieros_pl.errors import ProbeError
from hieros_pl.nn.distributions import TWO_HOT_BINS, TwoHot
from hieros_pl.nn.layers import MLP
from hieros_pl.probes.reward import TrainingRows, auc, check_classes, split_counts, test_start
from hieros_pl.replay.buffer import SequenceBuffer

LOSSES = ("twohot", "bce", "balanced")


@dataclass
class FrameRows:
    """Every stored row of every stream, concatenated, with its held-out flag."""

    obs: np.ndarray  # [M, *obs_shape] uint8 | float32
    reward: np.ndarray  # [M] float32
    is_test: np.ndarray  # [M] bool: the row lies in the last test_fraction of its stream

    @property
    def rewarded(self) -> np.ndarray:
        return self.reward != 0


def frame_rows(buffer: SequenceBuffer, test_fraction: float, source: str) -> FrameRows:
    """The replay's rows split per stream; both parts need rewarded and unrewarded rows."""
    if not 0.0 < test_fraction < 1.0:
        raise ProbeError(f"test_fraction must be in (0, 1), got {test_fraction}")
    obs, reward, is_test = [], [], []
    for env in range(buffer.num_envs):
        stream = buffer.stream(env)
        n = len(stream["reward"])
        obs.append(stream["obs"])
        reward.append(stream["reward"].astype(np.float32))
        is_test.append(np.arange(n) >= test_start(n, test_fraction))
    rows = FrameRows(np.concatenate(obs), np.concatenate(reward), np.concatenate(is_test))
    check_classes(rows.rewarded, rows.is_test, source, "encoder probe")
    return rows


class RewardReader(nn.Module):
    """The run's encoder under a head of the reward head's shape: o_t -> logits."""

    def __init__(
        self,
        encoder: nn.Module,
        embed_dim: int,
        units: int,
        layers: int,
        outputs: int,
        output_scale: float,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = MLP(embed_dim, units, layers, outputs, output_scale=output_scale)

    def forward(self, obs: Tensor) -> Tensor:
        # obs: [N, *obs_shape] -> [N, outputs] float32
        return self.head(self.encoder(obs))


@dataclass(frozen=True)
class HeadShape:
    """The reader's head: None takes the run's ``head_layers``; output_scale 0 is the reward
    head's all-zero output layer (init_output_)."""

    layers: int | None = None
    output_scale: float = 0.0


def reward_reader(
    cfg: Config, level: int, loss: str, seed: int, shape: HeadShape = HeadShape()
) -> RewardReader:
    """A fresh encoder of level ``level`` (same weights for every loss at one seed) and head."""
    from hieros_pl.builders import build_module

    torch.manual_seed(seed)
    world_model = build_module(cfg).hierarchy.levels[level].world_model
    outputs = TWO_HOT_BINS if loss == "twohot" else 1
    torch.manual_seed(seed + 1)
    wm = cfg.world_model
    encoder = world_model.encoder
    layers = wm.head_layers if shape.layers is None else shape.layers
    return RewardReader(
        encoder, encoder.out_dim, wm.head_units, layers, outputs, shape.output_scale
    )


def loss_of(reader: RewardReader, loss: str, obs: Tensor, reward: Tensor, bins: str) -> Tensor:
    """The training loss of one batch."""
    # obs: [N, *obs_shape]   reward: [N] float32 -> scalar
    logits = reader(obs)
    if loss == "twohot":
        return -TwoHot(logits, bins).log_prob(reward).mean()
    target = (reward != 0).float()
    return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target)


@torch.no_grad()
def held_out_auc(reader: RewardReader, rows: FrameRows, loss: str, bins: str) -> float:
    """AUC of "r_t ≠ 0" on the held-out rows: the logit, or |E[r̂]| of the two-hot head."""
    reader.eval()
    test = np.flatnonzero(rows.is_test)
    scores = []
    for start in range(0, len(test), 2048):
        logits = reader(torch.as_tensor(rows.obs[test[start : start + 2048]]))
        scores.append(TwoHot(logits, bins).mean().abs() if loss == "twohot" else logits[:, 0])
    reader.train()
    return auc(torch.cat(scores), rows.rewarded[test])


def fit_reader(
    cfg: Config,
    rows: FrameRows,
    level: int,
    loss: str,
    updates: int,
    batch_size: int,
    seed: int,
    log_every: int,
    shape: HeadShape = HeadShape(),
) -> list[dict[str, float]]:
    """Train one reader; its training loss and test AUC every ``log_every`` updates."""
    reader = reward_reader(cfg, level, loss, seed, shape)
    opt = cfg.optim.world_model
    optimizer = torch.optim.Adam(reader.parameters(), lr=opt.lr, eps=opt.eps)
    bins = cfg.world_model.reward_bins
    generator = np.random.default_rng(seed)
    pools = TrainingRows.of(rows.rewarded, rows.is_test)
    history, losses = [], []
    for update in range(1, updates + 1):
        batch = pools.draw(batch_size, loss == "balanced", generator)
        obs, reward = torch.as_tensor(rows.obs[batch]), torch.as_tensor(rows.reward[batch])
        value = loss_of(reader, loss, obs, reward, bins)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        nn.utils.clip_grad_norm_(reader.parameters(), opt.grad_clip)
        optimizer.step()
        losses.append(float(value.detach()))
        if update % log_every == 0 or update == updates:
            auc_now = held_out_auc(reader, rows, loss, bins)
            history.append({"update": update, "loss": float(np.mean(losses)), "auc": auc_now})
            losses = []
    return history


def probe_encoder(
    cfg: Config,
    buffer: SequenceBuffer,
    level: int,
    source: str,
    updates: int = 4000,
    batch_size: int | None = None,
    losses: tuple[str, ...] = LOSSES,
    test_fraction: float = 0.2,
    seed: int = 0,
    log_every: int = 500,
    shape: HeadShape = HeadShape(),
) -> dict[str, Any]:
    """Final test AUC and history of each loss; ``batch_size`` defaults to the rows of one
    world-model update (replay.batch_size × replay.batch_length)."""
    if updates < 1:
        raise ProbeError(f"updates must be >= 1, got {updates}")
    unknown = [loss for loss in losses if loss not in LOSSES]
    if unknown or not losses:
        raise ProbeError(f"losses {list(losses)}: choose from {list(LOSSES)}")
    if shape.layers is not None and shape.layers < 0:
        raise ProbeError(f"head layers must be >= 0, got {shape.layers}")
    if shape.output_scale < 0:
        raise ProbeError(f"output_scale must be >= 0, got {shape.output_scale}")
    if batch_size is not None and batch_size < 2:
        raise ProbeError(f"batch_size must be >= 2 (half of it rewarded rows), got {batch_size}")
    size = batch_size or cfg.replay.batch_size * cfg.replay.batch_length
    rows = frame_rows(buffer, test_fraction, source)
    histories = {
        loss: fit_reader(cfg, rows, level, loss, updates, size, seed, log_every, shape)
        for loss in losses
    }
    return {
        "auc": {loss: history[-1]["auc"] for loss, history in histories.items()},
        "history": histories,
        **split_counts(rows.rewarded, rows.is_test),
        "probe": {
            "updates": updates,
            "batch_size": size,
            "test_fraction": test_fraction,
            "seed": seed,
            "lr": cfg.optim.world_model.lr,
            "reward_bins": cfg.world_model.reward_bins,
            "head_layers": cfg.world_model.head_layers if shape.layers is None else shape.layers,
            "head_units": cfg.world_model.head_units,
            "output_scale": shape.output_scale,
        },
    }


def encoder_reading(auc_by_loss: dict[str, float]) -> str:
    """One sentence from the AUCs (0.05 apart counts)."""
    parts = ", ".join(f"{loss} {value:.3f}" for loss, value in auc_by_loss.items())
    balanced = auc_by_loss.get("balanced")
    if balanced is not None and balanced < 0.6:
        return f"the encoder barely sees the reward in o_t ({parts})"
    twohot, bce = auc_by_loss.get("twohot"), auc_by_loss.get("bce")
    if twohot is not None and bce is not None and twohot < bce - 0.05:
        return f"at the replay's rate the two-hot loss learns the reward slower than BCE ({parts})"
    return f"test AUCs: {parts}"
