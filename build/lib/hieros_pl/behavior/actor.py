"""The policy network and its action distributions (ALGORITHM.md §4.2, §12 D8)."""

from __future__ import annotations

from typing import Protocol

from torch import Tensor, nn

from hieros_pl.nn.distributions import BoundedNormal, OneHotCategorical
from hieros_pl.nn.layers import MLP

ACTION_KINDS = ("onehot", "grouped", "normal")


class ActionDistribution(Protocol):
    """What the behaviour code needs from a policy's distribution over actions [..., A]."""

    def sample(self) -> Tensor: ...

    def mode(self) -> Tensor: ...

    def log_prob(self, action: Tensor) -> Tensor: ...

    def entropy(self) -> Tensor: ...


class GroupedCategorical:
    """G independent unimix'd categoricals of V classes; the action is their flattened one-hots.

    log_prob and entropy are the MEAN over the G groups (not the sum), as in the original
    higher-level actors (ALGORITHM.md §4.2). sample() and mode() are one-hot per group with
    straight-through gradients; soft_mode() returns the unimix'd probabilities (compat D8).
    """

    def __init__(self, logits: Tensor, groups: int, classes: int, unimix: float) -> None:
        # logits: [..., G*V] float32 (raw)
        self.groups, self.classes = groups, classes
        self.categorical = OneHotCategorical(logits.unflatten(-1, (groups, classes)), unimix)

    def sample(self) -> Tensor:
        # -> action: [..., G*V] float32
        return self.categorical.sample().flatten(-2)

    def mode(self) -> Tensor:
        # -> action: [..., G*V] float32
        return self.categorical.mode().flatten(-2)

    def soft_mode(self) -> Tensor:
        """The original evaluation output: unimix'd probabilities per group, flattened (D8)."""
        # -> probs: [..., G*V] float32
        return self.categorical.probs.flatten(-2)

    def log_prob(self, action: Tensor) -> Tensor:
        # action: [..., G*V] float32 -> [...] float32
        grouped = action.unflatten(-1, (self.groups, self.classes))
        return self.categorical.log_prob(grouped).mean(-1)

    def entropy(self) -> Tensor:
        # -> [...] float32
        return self.categorical.entropy().mean(-1)


def output_width(kind: str, action_dim: int) -> int:
    """Outputs of the actor's last layer: logits for categoricals, mean and std for normals."""
    return 2 * action_dim if kind == "normal" else action_dim


class Actor(nn.Module):
    """π(a | [feat⁺, g]): MLP (layers × units, LN, SiLU) + output layer (uniform init, scale 1).

    kind "onehot": one categorical over A actions; "grouped": G categoricals of V classes with
    A = G·V (subgoal codes); "normal": a BoundedNormal over A continuous dims in [−1, 1].
    """

    def __init__(
        self,
        in_dim: int,
        action_dim: int,
        kind: str,
        groups: int,
        classes: int,
        units: int,
        layers: int,
        unimix: float,
        min_std: float,
        max_std: float,
    ) -> None:
        super().__init__()
        if kind not in ACTION_KINDS:
            raise ValueError(f"actor kind must be one of {list(ACTION_KINDS)}, got '{kind}'")
        if kind == "grouped" and action_dim != groups * classes:
            raise ValueError(
                f"grouped actor needs action_dim = groups·classes = {groups * classes}, "
                f"got {action_dim}"
            )
        self.in_dim, self.action_dim, self.kind = in_dim, action_dim, kind
        self.groups, self.classes = groups, classes
        self.unimix, self.min_std, self.max_std = unimix, min_std, max_std
        self.net = MLP(in_dim, units, layers, output_width(kind, action_dim), output_scale=1.0)

    def forward(self, features: Tensor) -> ActionDistribution:
        """The action distribution at ``features`` = [feat⁺, goal input]."""
        # features: [..., in_dim] float32 -> distribution over [..., A]
        assert features.shape[-1] == self.in_dim, f"features {tuple(features.shape)}"
        outputs = self.net(features)
        if self.kind == "onehot":
            return OneHotCategorical(outputs, self.unimix)
        if self.kind == "grouped":
            return GroupedCategorical(outputs, self.groups, self.classes, self.unimix)
        raw_mean, raw_std = outputs.chunk(2, dim=-1)
        return BoundedNormal(raw_mean, raw_std, self.min_std, self.max_std)
