"""Subgoal autoencoder: h ↔ a G×V one-hot code (ALGORITHM.md §5.6, §12 D7).

The encoder maps symlog(h) to G categoricals of V classes and takes the one-hot mode of each
(straight-through); the decoder maps the flattened code back into symlog(h) space. The level
above acts in code space; this level decodes the code into its goal g̃ and scores novelty by the
reconstruction error.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hieros_pl.nn.distributions import OneHotCategorical, categorical_kl
from hieros_pl.nn.layers import NORM_EPS, init_hidden_, init_output_
from hieros_pl.nn.symlog import symlog


def gelu_stack(in_dim: int, width: int, layers: int, output_layer: bool) -> nn.Sequential:
    """``layers`` × [Linear (no bias) → LN → GELU] of ``width``, then optionally Linear (bias).

    The output Linear has the uniform initialisation with scale 1.0; without it the stack ends
    in LN + GELU, as the original (compat D7).
    """
    modules: list[nn.Module] = []
    for index in range(layers):
        modules.append(nn.Linear(in_dim if index == 0 else width, width, bias=False))
        modules += [nn.LayerNorm(width, eps=NORM_EPS), nn.GELU()]
    stack = nn.Sequential(*modules)
    init_hidden_(stack)
    if output_layer:
        output = nn.Linear(width, width)
        init_output_(output, 1.0)
        stack.append(output)
    return stack


def uniform_kl(log_probs: Tensor) -> Tensor:
    """KL(p ‖ Uniform(V)) over the last dim of (unimix'd) log-probabilities."""
    # log_probs: [..., V] float32 -> [...] float32
    return categorical_kl(log_probs, torch.zeros_like(log_probs))


class SubgoalAutoencoder(nn.Module):
    """symlog(h) → G×V one-hot code → reconstruction of symlog(h).

    ``output_layers=False`` is the original architecture without linear output layers (D7).
    """

    def __init__(
        self,
        deter_dim: int,
        groups: int,
        classes: int,
        layers: int,
        kl_scale: float,
        unimix: float,
        output_layers: bool,
    ) -> None:
        super().__init__()
        self.deter_dim, self.groups, self.classes = deter_dim, groups, classes
        self.kl_scale, self.unimix = kl_scale, unimix
        self.encoder = gelu_stack(deter_dim, groups * classes, layers, output_layers)
        self.decoder = gelu_stack(groups * classes, deter_dim, layers, output_layers)

    def scales(self) -> dict[str, float]:
        """Weight of each loss term, keyed like :meth:`loss`."""
        return {"reconstruction": 1.0, "kl": self.kl_scale}

    def code_distribution(self, deter: Tensor) -> OneHotCategorical:
        """The G unimix'd categoricals of the encoder at h."""
        # deter: [..., h] float32 -> distribution over [..., G, V]
        assert deter.shape[-1] == self.deter_dim, f"deter {tuple(deter.shape)}"
        logits = self.encoder(symlog(deter)).unflatten(-1, (self.groups, self.classes))
        return OneHotCategorical(logits, self.unimix)

    def encode(self, deter: Tensor) -> Tensor:
        """One-hot mode of each group, flattened; straight-through gradients."""
        # deter: [..., h] float32 -> code: [..., G*V] float32
        return self.code_distribution(deter).mode().flatten(-2)

    def decode(self, code: Tensor) -> Tensor:
        """A (one-hot or soft) code → a vector in symlog(h) space (the goal g̃)."""
        # code: [..., G*V] float32 -> [..., h] float32
        assert code.shape[-1] == self.groups * self.classes, f"code {tuple(code.shape)}"
        return self.decoder(code)

    def reconstruct(self, deter: Tensor) -> Tensor:
        """AE(h) = dec(enc(h)), in symlog(h) space."""
        # deter: [..., h] float32 -> [..., h] float32
        return self.decode(self.encode(deter))

    def loss(self, deter: Tensor) -> dict[str, Tensor]:
        """Unweighted loss terms keyed like :meth:`scales`; the input is treated as a constant.

        reconstruction: mean over samples and dims of (symlog(h) − AE(h))²;
        kl: mean over samples and groups of KL(unimix(softmax(ℓ_g)) ‖ Uniform(V)).
        """
        # deter: [..., h] float32 -> each loss: [] float32
        deter = deter.detach()
        distribution = self.code_distribution(deter)
        reconstruction = self.decode(distribution.mode().flatten(-2))
        losses = {
            "reconstruction": ((reconstruction - symlog(deter)) ** 2).mean(),
            "kl": uniform_kl(distribution.logits).mean(),
        }
        scales = self.scales()
        assert losses.keys() == scales.keys(), f"{sorted(losses)} != {sorted(scales)}"
        return losses
