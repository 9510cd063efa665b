"""Output distributions of the world model, actor and critics (ALGORITHM.md §3.10, §4.2).

The event is always the last dim; callers reduce over groups (the S latents, the G subgoal
categoricals). Categoricals are unimix'd before any use, including inside the KL.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hieros_pl.config import TWO_HOT_SPACES
from hieros_pl.nn.symlog import symexp, symlog

TWO_HOT_BINS = 255
TWO_HOT_LOW = -20.0
TWO_HOT_HIGH = 20.0


def unimix_log_probs(logits: Tensor, unimix: float) -> Tensor:
    """log((1 − u)·softmax(logits) + u/K) over the last dim; log_softmax when u = 0."""
    # logits: [..., K] float32 -> log_probs: [..., K] float32
    if unimix <= 0.0:
        return F.log_softmax(logits, dim=-1)
    probs = F.softmax(logits, dim=-1)
    mixed = (1.0 - unimix) * probs + unimix / logits.shape[-1]
    return torch.log(mixed)


def categorical_entropy(log_probs: Tensor) -> Tensor:
    """−Σ p log p over the last dim of normalised log-probabilities."""
    # log_probs: [..., K] float32 -> [...] float32
    return -(log_probs.exp() * log_probs).sum(-1)


def categorical_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p ‖ q) over the last dim; inputs are (unimix'd) log-probs and are renormalised anyway."""
    # logits_p, logits_q: [..., K] float32 -> [...] float32
    log_p = F.log_softmax(logits_p, dim=-1)
    log_q = F.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def bernoulli_log_prob(logits: Tensor, target: Tensor) -> Tensor:
    """log p(target) of a Bernoulli with p = sigmoid(logits); target in [0, 1]."""
    # logits: [...] float32   target: [...] float32 -> [...] float32
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def sample_index_multinomial(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Reference sampler: torch.multinomial, one draw per row (slow on CPU: exponential draws)."""
    # probs: [N, K] float32 -> index: [N] int64
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def sample_index_inverse_cdf(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Fast sampler: one uniform per row against the cumulative probabilities.

    Same distribution as :func:`sample_index_multinomial` (tested by χ²) with N uniforms instead
    of N·K exponentials, which dominated imagination time at the paper size.
    """
    # probs: [N, K] float32 -> index: [N] int64
    cdf = probs.cumsum(-1)
    uniform = torch.rand(
        probs.shape[0], 1, generator=generator, device=probs.device, dtype=probs.dtype
    )
    index = (cdf < uniform * cdf[:, -1:]).sum(-1)
    return index.clamp_max(probs.shape[-1] - 1)


class OneHotCategorical:
    """Categorical over the last dim with unimix u; samples and modes are one-hot (§3.10).

    `logits` holds the unimix'd log-probs, `probs` their exponent. Gradients pass straight
    through: sample() via + probs − sg(probs), mode() via + log-probs − sg(log-probs).
    """

    def __init__(self, logits: Tensor, unimix: float) -> None:
        # logits: [..., K] float32 (raw)
        self.logits = unimix_log_probs(logits, unimix)
        self.probs = self.logits.exp()

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A one-hot draw with straight-through gradients to `probs`."""
        # -> [..., K] float32
        K = self.probs.shape[-1]
        flat = self.probs.detach().reshape(-1, K)
        index = sample_index_inverse_cdf(flat, generator).reshape(self.probs.shape[:-1])
        one_hot = F.one_hot(index, K).to(self.probs.dtype)
        return one_hot + self.probs - self.probs.detach()

    def mode(self) -> Tensor:
        """One-hot argmax with straight-through gradients to the log-probs."""
        # -> [..., K] float32
        K = self.logits.shape[-1]
        one_hot = F.one_hot(self.logits.argmax(-1), K).to(self.logits.dtype)
        return one_hot + self.logits - self.logits.detach()

    def log_prob(self, one_hot: Tensor) -> Tensor:
        """log p of a one-hot (or soft) event."""
        # one_hot: [..., K] float32 -> [...] float32
        return (one_hot * self.logits).sum(-1)

    def entropy(self) -> Tensor:
        """Entropy of the unimix'd distribution."""
        # -> [...] float32
        return categorical_entropy(self.logits)


# TWO_HOT_SPACES (from the config) says where a two-hot head's bins and expectation live:
# ``symlog`` (the paper's `symlog_disc`: bins linspace(−20, 20) in symlog space, prediction
# symexp(Σ p b)) or ``symexp`` (DreamerV3's later `symexp_twohot`: bins symexp(linspace(−20, 20))
# in raw units, prediction Σ p b). The first is the expectation in symlog space and lies below the
# expected value wherever the distribution is spread (a 3 % chance of reward 21 predicts 0.10,
# not 0.63); the second is the expected value.


def two_hot_bins(device: torch.device | str | None = None, space: str = "symlog") -> Tensor:
    """The 255 ascending bin centres: linspace(−20, 20) in symlog space, or for ``symexp`` the
    same points mapped to raw units, mirrored exactly around the middle bin 0."""
    # -> [K] float32
    if space == "symlog":
        return torch.linspace(TWO_HOT_LOW, TWO_HOT_HIGH, TWO_HOT_BINS, device=device)
    half = symexp(torch.linspace(TWO_HOT_LOW, 0.0, TWO_HOT_BINS // 2 + 1, device=device))
    return torch.cat([half, -half[:-1].flip(0)])


def two_hot_encode(value: Tensor, bins: Tensor) -> Tensor:
    """Weights on the two bins around `value` (linear interpolation), clipped to the bin range.

    Σ weights = 1 and Σ weights·bins = clip(value, bins[0], bins[-1]).
    """
    # value: [...] float32 (in the bins' space)   bins: [K] float32 ascending
    # -> weights: [..., K] float32
    K = bins.shape[0]
    at_or_below = torch.searchsorted(bins, value.detach().contiguous(), right=True)
    below = (at_or_below - 1).clamp(0, K - 1)
    above = at_or_below.clamp(0, K - 1)
    distance_below = (bins[below] - value).abs()
    distance_above = (bins[above] - value).abs()
    total = distance_below + distance_above
    same = below == above
    weight_below = torch.where(
        same, torch.ones_like(value), distance_above / total.clamp_min(1e-12)
    )
    weight_above = 1.0 - weight_below
    return (
        F.one_hot(below, K).to(value.dtype) * weight_below[..., None]
        + F.one_hot(above, K).to(value.dtype) * weight_above[..., None]
    )


def two_hot_expectation(probs: Tensor, bins: Tensor) -> Tensor:
    """Σ_k probs_k · bins_k, the decode of `two_hot_encode` (in the bins' space)."""
    # probs: [..., K] float32   bins: [K] float32 -> [...] float32
    return (probs * bins).sum(-1)


def mirrored_expectation(probs: Tensor, bins: Tensor) -> Tensor:
    """Σ_k probs_k · bins_k for bins mirrored around a middle 0 (the ``symexp`` bins), summing
    each half from its largest magnitude inwards so that mirrored probabilities give exactly 0
    (a plain sum over ±4.9e8 bins leaves float32 rounding of order 10 at uniform probabilities)."""
    # probs: [..., K] float32   bins: [K] float32, bins[K-1-k] = −bins[k] -> [...] float32
    middle = bins.shape[0] // 2
    negative = (probs[..., :middle] * bins[:middle]).sum(-1)
    positive = (probs[..., middle + 1 :].flip(-1) * bins[middle + 1 :].flip(0)).sum(-1)
    return negative + positive


class TwoHot:
    """Discrete regression over 255 bins in ``space`` (TWO_HOT_SPACES; ALGORITHM.md §3.10 is
    ``symlog``, the paper's `symlog_disc`)."""

    def __init__(self, logits: Tensor, space: str = "symlog") -> None:
        # logits: [..., 255] float32
        assert logits.shape[-1] == TWO_HOT_BINS, f"logits {tuple(logits.shape)}"
        if space not in TWO_HOT_SPACES:  # configs are checked at composition (config.py)
            raise ValueError(f"two-hot space {space!r}: expected one of {TWO_HOT_SPACES}")
        self.space = space
        self.log_probs = F.log_softmax(logits, dim=-1)
        self.bins = two_hot_bins(logits.device, space)

    def mean(self) -> Tensor:
        """The prediction in raw units: symexp(Σ p b) (symlog) or Σ p b (symexp); the mode is
        defined to be the same."""
        # -> [...] float32
        probs = self.log_probs.exp()
        if self.space == "symlog":
            return symexp(two_hot_expectation(probs, self.bins))
        return mirrored_expectation(probs, self.bins)

    def mode(self) -> Tensor:
        """Same as `mean` (the original's convention)."""
        # -> [...] float32
        return self.mean()

    def log_prob(self, target: Tensor) -> Tensor:
        """Σ_k twohot(target)_k · log p_k for a raw-space target, encoded in the bins' space."""
        # target: [...] float32 -> [...] float32
        encoded = symlog(target) if self.space == "symlog" else target
        weights = two_hot_encode(encoded, self.bins)
        return (weights * self.log_probs).sum(-1)


class BoundedNormal:
    """Diagonal Normal for continuous actions: mean tanh(raw), std in [min_std, max_std].

    std = (max_std − min_std)·sigmoid(raw_std + 2) + min_std. log_prob and entropy are summed
    over the A action dims; sample() is a reparameterised draw; mode() is the mean.
    """

    def __init__(self, raw_mean: Tensor, raw_std: Tensor, min_std: float, max_std: float) -> None:
        # raw_mean: [..., A] float32   raw_std: [..., A] float32
        self.mean = torch.tanh(raw_mean)
        self.std = (max_std - min_std) * torch.sigmoid(raw_std + 2.0) + min_std

    def sample(self) -> Tensor:
        """mean + std·ε with ε ~ N(0, I); differentiable in mean and std."""
        # -> [..., A] float32
        return self.mean + self.std * torch.randn_like(self.mean)

    def mode(self) -> Tensor:
        """The mean, in [−1, 1]."""
        # -> [..., A] float32
        return self.mean

    def log_prob(self, action: Tensor) -> Tensor:
        """Σ_A log N(action; mean, std²)."""
        # action: [..., A] float32 -> [...] float32
        z = (action - self.mean) / self.std
        per_dim = -0.5 * z**2 - torch.log(self.std) - 0.5 * math.log(2.0 * math.pi)
        return per_dim.sum(-1)

    def entropy(self) -> Tensor:
        """Σ_A ½·log(2πe·std²)."""
        # -> [...] float32
        return (0.5 * math.log(2.0 * math.pi * math.e) + torch.log(self.std)).sum(-1)
