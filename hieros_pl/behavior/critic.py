"""One critic per reward component, with its slow EMA copy (ALGORITHM.md §4.4, §4.8)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call

from hieros_pl.nn.distributions import TWO_HOT_BINS, TwoHot
from hieros_pl.nn.layers import MLP


def critic_loss(
    distribution: TwoHot, returns: Tensor, slow_values: Tensor, weights: Tensor
) -> Tensor:
    """mean_{n,b} w_n (−log p(R_n) − log p(v_slow(s_n))): λ-return fit + slow-critic regulariser."""
    # distribution: over [N, H]   returns, slow_values, weights: [N, H] float32 -> loss: [] float32
    negative_log_likelihood = -distribution.log_prob(returns) - distribution.log_prob(slow_values)
    return (weights * negative_log_likelihood).mean()


class Critic(nn.Module):
    """v(s) as a two-hot distribution over ``bins`` space (TWO_HOT_SPACES); MLP with a
    zero-initialised output layer.

    ``slow`` is an exact copy at construction and afterwards an EMA of the fast weights
    (:meth:`update_slow`). Its parameters have requires_grad False, so no optimiser that filters
    on requires_grad (or uses :meth:`fast_parameters`) ever steps them; they are still saved in
    the state dict.
    """

    def __init__(self, in_dim: int, units: int, layers: int, bins: str = "symlog") -> None:
        super().__init__()
        self.in_dim = in_dim
        self.bins = bins
        self.net = MLP(in_dim, units, layers, TWO_HOT_BINS, output_scale=0.0)
        self.slow = copy.deepcopy(self.net).requires_grad_(False)

    def fast_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters (the fast network only)."""
        return list(self.net.parameters())

    def distribution(self, features: Tensor) -> TwoHot:
        """Fast critic's value distribution at ``features`` = [feat⁺, goal input]."""
        # features: [..., in_dim] float32 -> distribution over [...]
        assert features.shape[-1] == self.in_dim, f"features {tuple(features.shape)}"
        return TwoHot(self.net(features), self.bins)

    def value(self, features: Tensor) -> Tensor:
        """Fast critic's prediction v(s) (two-hot mean), differentiable in weights and features."""
        # features: [..., in_dim] float32 -> value: [...] float32
        return self.distribution(features).mean()

    def value_through_features(self, features: Tensor) -> Tensor:
        """v(s) with the critic's weights held constant: gradients reach only ``features``.

        For actor gradients through the dynamics, which must not touch the critic's weights.
        """
        # features: [..., in_dim] float32 -> value: [...] float32
        frozen = {name: parameter.detach() for name, parameter in self.net.named_parameters()}
        return TwoHot(functional_call(self.net, frozen, (features,)), self.bins).mean()

    @torch.no_grad()
    def slow_value(self, features: Tensor) -> Tensor:
        """Slow critic's prediction, without gradient."""
        # features: [..., in_dim] float32 -> value: [...] float32
        return TwoHot(self.slow(features), self.bins).mean()

    @torch.no_grad()
    def update_slow(self, fraction: float) -> None:
        """θ_slow ← f·θ + (1 − f)·θ_slow for every parameter (the MLP has no buffers)."""
        for slow, fast in zip(self.slow.parameters(), self.net.parameters()):
            slow.lerp_(fast, fraction)

    def loss(self, features: Tensor, returns: Tensor, weights: Tensor) -> Tensor:
        """Critic loss of §4.8 on the H start-of-transition states; inputs are detached here."""
        # features: [N, H, in_dim] float32   returns: [N, H] float32   weights: [N, H] float32
        # -> loss: [] float32
        N, H, _ = features.shape
        assert returns.shape == (N, H), f"returns {tuple(returns.shape)}"
        assert weights.shape == (N, H), f"weights {tuple(weights.shape)}"
        features = features.detach()
        distribution = self.distribution(features)
        slow_values = self.slow_value(features)
        return critic_loss(distribution, returns.detach(), slow_values, weights.detach())
