"""The tiny world model learns a bouncing-dot video: decoder and reward losses at least halve."""

from __future__ import annotations

from collections.abc import Callable

import torch

from hieros_pl.config import Config
from hieros_pl.data.batch import Batch
from hieros_pl.world_models.world_model import WorldModel, weighted_total

IMAGE = 16
DOT = 2
ACTIONS = 3
STEPS = 80


def reflect(start: torch.Tensor, velocity: torch.Tensor, T: int, limit: int) -> torch.Tensor:
    """Positions in [0, limit] of a point bouncing between 0 and limit, for T steps."""
    # start, velocity: [B] int64 -> [B, T] int64
    unfolded = (start[:, None] + velocity[:, None] * torch.arange(T)) % (2 * limit)
    return torch.where(unfolded <= limit, unfolded, 2 * limit - unfolded)


def bouncing_dot_batch(B: int, T: int, generator: torch.Generator) -> Batch:
    """A white 2×2 dot bouncing in a 16×16 frame; reward 1 on every frame it touches an edge."""
    limit = IMAGE - DOT
    rows, cols = (
        reflect(
            torch.randint(0, limit + 1, (B,), generator=generator),
            torch.randint(0, 2, (B,), generator=generator) * 2 - 1,
            T,
            limit,
        )
        for _ in range(2)
    )
    grid = torch.arange(IMAGE)
    in_rows = (grid >= rows[..., None]) & (grid < rows[..., None] + DOT)
    in_cols = (grid >= cols[..., None]) & (grid < cols[..., None] + DOT)
    dot = in_rows[..., :, None] & in_cols[..., None, :]
    obs = (dot[..., None].expand(B, T, IMAGE, IMAGE, 3) * 255).to(torch.uint8)
    touches = (rows == 0) | (rows == limit) | (cols == 0) | (cols == limit)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    no_flag = torch.zeros(B, T, dtype=torch.bool)
    action_index = torch.randint(0, ACTIONS, (B, T), generator=generator)
    return Batch(
        obs=obs,
        action=torch.eye(ACTIONS)[action_index],
        reward=touches.float(),
        is_first=is_first,
        is_last=no_flag,
        is_terminal=no_flag,
        subgoal=torch.zeros(B, T, 0),
        subgoal_code=torch.zeros(B, T, 0),
    )


def evaluation_losses(model: WorldModel, batch: Batch) -> dict[str, float]:
    """Decoder and reward loss on a held-out batch, without dropout."""
    model.eval()
    with torch.no_grad():
        losses, _, _ = model.loss(batch)
    model.train()
    return {name: losses[name].item() for name in ("decoder", "reward")}


def test_bouncing_dot_losses_halve(compose_config: Callable[..., Config]) -> None:
    cfg = compose_config("world_model=s5wm").world_model
    model = WorldModel(cfg, (IMAGE, IMAGE, 3), True, ACTIONS)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    held_out = bouncing_dot_batch(16, 16, generator)
    assert 0.05 < held_out.reward.mean().item() < 0.5
    before = evaluation_losses(model, held_out)
    for _ in range(STEPS):
        losses, _, _ = model.loss(bouncing_dot_batch(8, 16, generator))
        optimizer.zero_grad()
        weighted_total(losses, cfg.loss_scales).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
    after = evaluation_losses(model, held_out)
    for name in ("decoder", "reward"):
        assert after[name] <= 0.5 * before[name], f"{name}: {before[name]:.3f} -> {after[name]:.3f}"
