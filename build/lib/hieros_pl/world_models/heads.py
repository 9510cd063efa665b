"""Categorical-latent heads of both dynamics: features → logits → z (ALGORITHM.md §3.2, §3.6).

A `LatentHead` is Linear (no bias) → LN (eps 1e-3) → SiLU → Linear (with bias) to S·Z logits
(posterior: W_e, W_q; prior: W_h, W_p). `latent_from_logits` turns raw logits into the latent z
and the logits stored in the `LatentState`.
"""

from __future__ import annotations

from torch import Tensor, nn

from hieros_pl.nn.distributions import OneHotCategorical
from hieros_pl.nn.layers import NORM_EPS, init_hidden_


def latent_from_logits(
    raw_logits: Tensor, unimix: float, stochastic: bool, sample: bool
) -> tuple[Tensor, Tensor]:
    """(z, stored logits): a one-hot sample or mode of the unimix'd categorical, both with
    straight-through gradients; when not stochastic (no_stoch ablation) z = logits = raw logits."""
    # raw_logits: [..., S, Z] float32 -> stoch: [..., S, Z] float32, logits: [..., S, Z] float32
    if not stochastic:
        return raw_logits, raw_logits
    distribution = OneHotCategorical(raw_logits, unimix)
    stoch = distribution.sample() if sample else distribution.mode()
    return stoch, distribution.logits


class LatentHead(nn.Module):
    """in_dim → hidden (no bias) → LN → SiLU → S·Z logits (with bias), reshaped to [..., S, Z]."""

    def __init__(self, in_dim: int, hidden: int, stoch: int, classes: int) -> None:
        super().__init__()
        self.stoch = stoch
        self.classes = classes
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden, bias=False),
            nn.LayerNorm(hidden, eps=NORM_EPS),
            nn.SiLU(),
            nn.Linear(hidden, stoch * classes),
        )
        # §7.2: the latent-logit layers use the hidden (normal) initialisation too.
        init_hidden_(self.net)

    def forward(self, x: Tensor) -> Tensor:
        # x: [..., in_dim] float32 -> raw_logits: [..., S, Z] float32
        return self.net(x).unflatten(-1, (self.stoch, self.classes))
