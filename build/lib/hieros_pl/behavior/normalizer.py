"""Percentile return normalisation, one per reward component (ALGORITHM.md §4.6)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def return_percentiles(returns: Tensor) -> tuple[Tensor, Tensor]:
    """5th and 95th percentiles (linear interpolation) over all values of ``returns``."""
    # returns: [...] float32 -> low: [] float32, high: [] float32
    quantiles = torch.tensor([0.05, 0.95], dtype=returns.dtype, device=returns.device)
    low, high = torch.quantile(returns.detach().flatten(), quantiles, interpolation="linear")
    return low, high


class ReturnNormalizer(nn.Module):
    """EMA of the 5th/95th return percentiles; scale S = max(1, P95 − P5).

    Starts from (0, 0); each update does P ← rate·q + (1 − rate)·P. The statistics are buffers,
    so they are saved in checkpoints.
    """

    low: Tensor
    high: Tensor

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: Tensor) -> None:
        """Move the percentile EMA towards this batch of returns (any shape, at least one value)."""
        # returns: [...] float32
        assert returns.numel() > 0, "returns must not be empty"
        low, high = return_percentiles(returns)
        self.low.lerp_(low.to(self.low.dtype), self.rate)
        self.high.lerp_(high.to(self.high.dtype), self.rate)

    def scale(self) -> Tensor:
        """S = max(1, P95 − P5), a detached scalar."""
        # -> scale: [] float32
        return torch.clamp(self.high - self.low, min=1.0).detach()
