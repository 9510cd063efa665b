"""Symmetric log compression and its inverse (ALGORITHM.md §1), and the symlog squared error.

symlog(x) = sign(x)·ln(1 + |x|) and symexp(x) = sign(x)·(exp(|x|) − 1) are exact inverses; they
compress rewards, returns, vector observations and the extra actor features.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Per-element squared errors below this are set to zero in `symlog_squared_error`, as in the
# original `symlog_mse` vector distribution (ALGORITHM.md §3.9).
SYMLOG_ERROR_FLOOR = 1e-8


def symlog(x: Tensor) -> Tensor:
    """sign(x)·ln(1 + |x|), elementwise; odd, monotone, identity-like near 0."""
    # x: [...] float -> [...] float
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: Tensor) -> Tensor:
    """sign(x)·(exp(|x|) − 1), elementwise; the inverse of `symlog`."""
    # x: [...] float -> [...] float
    return torch.sign(x) * torch.expm1(torch.abs(x))


def symlog_squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    """Σ over the last dim of (prediction − symlog(target))², tiny per-element errors zeroed.

    `prediction` lives in symlog space; `target` in raw space (ALGORITHM.md §3.9 `symlog_mse`).
    """
    # prediction: [..., O] float32   target: [..., O] float32   -> [...] float32
    squared = (prediction - symlog(target)) ** 2
    squared = torch.where(squared < SYMLOG_ERROR_FLOOR, torch.zeros_like(squared), squared)
    return squared.sum(-1)
