"""Imagined rollouts of the policy in a world model (ALGORITHM.md §4.1).

From N start states the actor picks a_n ~ π(· | sg(feat⁺(s_n)), g) and the world model's prior
gives s_{n+1}, for n = 0..H−1. The result holds the H+1 states s_0..s_H and H+1 actions; the last
action a_H is drawn only so that every field has H+1 steps and is never used.

Graph policy: for REINFORCE the whole rollout runs under ``torch.no_grad()`` because the actor
is trained through log π of the stored actions at the stored features, recomputed in the loss.
With ``grad_through_dynamics`` the graph is kept (actions are straight-through samples), while
the world model's parameters are frozen for the rollout so the actor loss cannot reach them.
The world model is in eval mode during the rollout (no S5 dropout) and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from hieros_pl.behavior.actor import Actor
from hieros_pl.nn.modes import evaluation_mode
from hieros_pl.world_models.latent import LatentState


class ImaginationModel(Protocol):
    """The part of a world model that imagination uses."""

    def imagine_step(self, prev: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        """One prior step s_{n+1} from s_n and a_n."""
        ...

    def actor_features_and_heads(self, state: LatentState) -> tuple[Tensor, Tensor, Tensor]:
        """feat⁺ of a state (ALGORITHM.md §3.11), its predicted reward and continue probability."""
        ...


@dataclass
class Imagination:
    """One imagined rollout of H transitions from N start states; every field has H+1 steps.

    states: LatentState [N, H+1] (s_0 = start). actor_features: feat⁺ [N, H+1, F], carrying the
    graph through the dynamics only when imagined with grad_through_dynamics. goal_input:
    [N, H+1, Gin], the start's goal input repeated. actor_input: [N, H+1, F+Gin] =
    [sg(feat⁺), g], what the actor saw. actions: [N, H+1, A], a_H unused. rewards, continues:
    [N, H+1], the world model's r̂ and ĉ of each state (the ones inside feat⁺, with its graph).
    """

    states: LatentState
    actor_features: Tensor
    goal_input: Tensor
    actor_input: Tensor
    actions: Tensor
    rewards: Tensor
    continues: Tensor

    @property
    def horizon(self) -> int:
        """H, the number of imagined transitions."""
        return self.actions.shape[1] - 1

    def value_input(self) -> Tensor:
        """Critic input [feat⁺, g], with the graph through the dynamics when there is one."""
        # -> [N, H+1, F+Gin] float32
        return torch.cat([self.actor_features, self.goal_input], dim=-1)


@contextmanager
def frozen_parameters(module: object) -> Iterator[None]:
    """Temporarily set requires_grad False on a module's trainable parameters, then restore."""
    parameters = [] if not isinstance(module, nn.Module) else list(module.parameters())
    trainable = [parameter for parameter in parameters if parameter.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


def imagine(
    world_model: ImaginationModel,
    actor: Actor,
    start: LatentState,
    subgoal_input: Tensor,
    horizon: int,
    sample: bool = True,
    grad_through_dynamics: bool = False,
) -> Imagination:
    """Roll the actor out for ``horizon`` transitions in the world model's prior.

    ``sample`` draws actions and latents (training); False takes the modes of both.
    """
    # start: LatentState [N]   subgoal_input: [N, Gin] float32 -> Imagination [N, H+1]
    N = start.deter.shape[0]
    assert start.deter.dim() == 2, f"start.deter {tuple(start.deter.shape)} must be [N, h]"
    assert subgoal_input.dim() == 2 and subgoal_input.shape[0] == N, (
        f"subgoal_input {tuple(subgoal_input.shape)}"
    )
    # The world model runs in eval mode: imagination has no dropout (ALGORITHM.md §3.4).
    with evaluation_mode(world_model):
        if grad_through_dynamics:
            with frozen_parameters(world_model):
                return rollout(world_model, actor, start, subgoal_input, horizon, sample)
        with torch.no_grad():
            return rollout(world_model, actor, start, subgoal_input, horizon, sample)


def rollout(
    world_model: ImaginationModel,
    actor: Actor,
    start: LatentState,
    subgoal_input: Tensor,
    horizon: int,
    sample: bool,
) -> Imagination:
    """The imagination loop itself; the caller chooses the grad mode."""
    # start: LatentState [N]   subgoal_input: [N, Gin] float32 -> Imagination [N, H+1]
    state = start
    states, features, actor_inputs, actions, rewards, continues = [], [], [], [], [], []
    for n in range(horizon + 1):
        feature, reward, continue_prob = world_model.actor_features_and_heads(state)
        actor_input = torch.cat([feature.detach(), subgoal_input], dim=-1)
        distribution = actor(actor_input)
        action = distribution.sample() if sample else distribution.mode()
        states.append(state)
        features.append(feature)
        actor_inputs.append(actor_input)
        actions.append(action)
        rewards.append(reward)
        continues.append(continue_prob)
        if n < horizon:
            state = world_model.imagine_step(state, action, sample=sample)
    H_plus_1 = horizon + 1
    return Imagination(
        states=LatentState.stack(states, dim=1),
        actor_features=torch.stack(features, dim=1),
        goal_input=subgoal_input[:, None].expand(-1, H_plus_1, -1),
        actor_input=torch.stack(actor_inputs, dim=1),
        actions=torch.stack(actions, dim=1),
        rewards=torch.stack(rewards, dim=1),
        continues=torch.stack(continues, dim=1),
    )
