"""The latent state carried by both dynamics (ALGORITHM.md §3.1).

A `LatentState` has leading batch dims [...] = [N] (acting, imagination) or [B, T] (training)
shared by all four fields; trailing dims differ per field, so every batch-wise operation works
on the leading `batch_ndim` dims only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class LatentState:
    """stoch z, deter h, the logits z came from, and the recurrent carry of the dynamics.

    stoch: [..., S, Z] float32, a one-hot sample (or the logits themselves when not stochastic).
    deter: [..., h] float32.
    logits: [..., S, Z] float32, unimix'd log-probs of the distribution of z (raw when not
        stochastic).
    recurrent: S5WM [..., Nb, 2P] complex64 (the S5 states); RSSM [..., h] float32 (the GRU state).
    """

    stoch: Tensor
    deter: Tensor
    logits: Tensor
    recurrent: Tensor

    @property
    def batch_shape(self) -> torch.Size:
        """The leading batch dims [...]."""
        # -> [...] as torch.Size
        return self.deter.shape[:-1]

    def feature(self) -> Tensor:
        """feat = [flatten(z), h] (ALGORITHM.md §3.1)."""
        # -> [..., S*Z + h] float32
        return torch.cat([self.stoch.flatten(-2), self.deter], dim=-1)

    def map(self, function: Callable[[Tensor], Tensor]) -> LatentState:
        """Apply `function` to every field (it must keep the batch dims consistent)."""
        # LatentState [...] -> LatentState [...']
        return LatentState(*(function(getattr(self, f.name)) for f in fields(self)))

    def detach(self) -> LatentState:
        """A copy without gradient history."""
        # LatentState [...] -> LatentState [...]
        return self.map(Tensor.detach)

    def flatten(self) -> LatentState:
        """[B, T, ...] → [B*T, ...]."""
        # LatentState [B, T] -> LatentState [B*T]
        return self.map(lambda tensor: tensor.flatten(0, 1))

    def where(self, mask: Tensor, other: LatentState) -> LatentState:
        """Per sample: self where mask, else other. mask covers exactly the batch dims."""
        # mask: [...] bool -> LatentState [...]
        assert mask.shape == self.batch_shape, f"mask {tuple(mask.shape)}"
        chosen = []
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            expanded = mask.reshape(*mask.shape, *([1] * (mine.dim() - mask.dim())))
            chosen.append(torch.where(expanded, mine, theirs))
        return LatentState(*chosen)

    def at(self, t: int) -> LatentState:
        """Time step t of a [B, T, ...] state, giving [B, ...]."""
        # LatentState [B, T] -> LatentState [B]
        return self.map(lambda tensor: tensor[:, t])

    @staticmethod
    def stack(states: Sequence[LatentState], dim: int = 1) -> LatentState:
        """Stack [N, ...] states along a new batch dim (dim=1 gives [N, T, ...])."""
        # T × LatentState [N] -> LatentState [N, T]
        return LatentState(
            *(torch.stack([getattr(s, f.name) for s in states], dim) for f in fields(LatentState))
        )
