"""The interface shared by the S5WM and RSSM dynamics (ALGORITHM.md §3.7, §3.8).

Both take the observation embedding e_t and the action input of each position and produce
posterior and prior latents in three modes: `observe` (a whole [B, T] sequence, training),
`obs_step` (one acting step with a carried state) and `imagine_step` (one prior step).
Action alignment is the caller's business: `observe` receives at position t the action that
leads to o_t; both dynamics zero it where `is_first` and rescale it by 1/max(1, |a|).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from hieros_pl.world_models.latent import LatentState


def rescale_action(action: Tensor) -> Tensor:
    """a / max(1, |a|) elementwise; the identity for one-hot actions (ALGORITHM.md §3.3)."""
    # action: [..., A] float32 -> [..., A] float32
    return action / action.abs().clamp_min(1.0)


def dynamics_action(action: Tensor, start: Tensor) -> Tensor:
    """The action input of the sequence model: zero where a sequence starts, else rescaled."""
    # action: [..., A] float32   start: [...] bool -> [..., A] float32
    rescaled = rescale_action(action)
    return torch.where(start[..., None], torch.zeros_like(rescaled), rescaled)


def sequence_starts(is_first: Tensor) -> Tensor:
    """is_first with position 0 forced True: `observe` always starts from the initial state."""
    # is_first: [B, T] bool -> [B, T] bool
    starts = is_first.clone()
    starts[:, 0] = True
    return starts


class Dynamics(Protocol):
    """Latent dynamics of one world model; parameters only, every state is passed in and out."""

    def initial(self, batch_size: int, device: torch.device | str) -> LatentState:
        """The learned initial state, used at t = 0 and at every `is_first`."""
        ...

    def observe(
        self, embed: Tensor, action: Tensor, is_first: Tensor, sample: bool = True
    ) -> tuple[LatentState, LatentState]:
        """(posterior, prior) for all T steps from a fresh initial state, sharing h and carries.

        embed [B, T, E]; action [B, T, A] is the action input of position t; is_first [B, T].
        """
        ...

    def obs_step(
        self,
        prev: LatentState,
        prev_action: Tensor,
        embed: Tensor,
        is_first: Tensor,
        sample: bool = True,
    ) -> LatentState:
        """One posterior step: where is_first, prev := initial and prev_action := 0."""
        ...

    def imagine_step(self, prev: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        """One prior step from (z, a) with no reset; S5WM returns its S5 carry detached."""
        ...

    def prior_mode(self, deter: Tensor) -> tuple[Tensor, Tensor]:
        """(z, logits): the prior's mode at h through the prior MLP, as for the initial state."""
        ...

    def metrics(self) -> dict[str, Tensor]:
        """Detached scalar diagnostics of the parameters (e.g. max Re Λ)."""
        ...
