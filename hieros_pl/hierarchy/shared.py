"""The shared-world-model ablation: levels above 0 imagine through level 0's world model.

``hierarchy.shared_world_model=true`` (the original's ``hierarchical_world_models: False``,
ALGORITHM.md §5.10, §13). Semantics (README, Implementation details):

- Level i > 0 owns no world model. Its state is level 0's posterior at the env step it acts;
  its actor and critics see level 0's features feat⁺ and, below the top, the code from above.
- Acting keeps the timing of §5.2 (every K**i env steps); a higher level's code is decoded by
  the level below's autoencoder into level 0's symlog(h) space.
- Training keeps the schedule (level i trains on the calls where its batch is present) but not
  its replay's sequences: it starts from level 0's posterior states of the same call.
- Joint imagination: one imagined step of level i is one step of level 0's world model. Level
  i's actor picks a code; each lower level's actor, frozen and sampled, turns the code from
  above into its own output down to level 0's env action, which level 0's prior executes.
- Level i's goal for a start state (below the top) is the code the levels above pick there,
  top-down, frozen and sampled, held for the rollout; its rewards are those of §5.7-5.9 on level
  0's imagined h, with r̂ from level 0's reward head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from hieros_pl.world_models.latent import LatentState

if TYPE_CHECKING:
    from hieros_pl.hierarchy.subactor import BehaviorOutput, Subactor


def lower_output(
    lower: list[Subactor], feature: Tensor, code: Tensor, sample: bool = True
) -> Tensor:
    """Hand a code down the levels below (their actors) to level 0's env action."""
    # lower: levels i-1, ..., 0   feature: [N, F] float32   code: [N, Gc] float32 -> [N, A]
    output = code
    for subactor in lower:
        goal_input = subactor.goal_input(output, subactor.decode_goal(output))
        dist = subactor.actor_critic.actor(torch.cat([feature.detach(), goal_input], -1))
        output = dist.sample() if sample else dist.mode()
    return output


class JointImaginationModel(nn.Module):
    """Level 0's world model seen from level i: the action is level i's code (ImaginationModel).

    A module so that imagination puts it in eval mode and, for the dynamics gradient, freezes
    the world model and every lower level for the rollout. Built per behaviour step; never
    registered in the hierarchy, so no parameter is counted twice.
    """

    def __init__(self, subactors: list[Subactor], level: int) -> None:
        super().__init__()
        self.world_model = subactors[0].world_model
        self.lower = nn.ModuleList(subactors[index] for index in reversed(range(level)))

    def imagine_step(self, prev: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        # prev: LatentState [N]   action: [N, Gc] level i's code -> LatentState [N]
        feature = self.world_model.actor_features(prev)
        lower: list[Subactor] = list(self.lower)  # type: ignore[arg-type]
        env_action = lower_output(lower, feature, action, sample)
        return self.world_model.imagine_step(prev, env_action, sample)

    def actor_features_and_heads(self, state: LatentState) -> tuple[Tensor, Tensor, Tensor]:
        return self.world_model.actor_features_and_heads(state)


@torch.no_grad()
def goal_codes_from_above(subactors: list[Subactor], level: int, start: LatentState) -> Tensor:
    """The code the levels above ``level`` pick at each start state, top-down (sampled)."""
    # start: LatentState [N] -> [N, Gc] float32 (width 0 at the top level)
    top = len(subactors) - 1
    feature = subactors[0].world_model.actor_features(start)
    code = torch.zeros(feature.shape[0], 0, device=feature.device)
    for index in range(top, level, -1):
        subactor = subactors[index]
        goal_input = subactor.goal_input(code, _decoded(subactor, code))
        code = subactor.actor_critic.actor(torch.cat([feature, goal_input], -1)).sample()
    return code


def _decoded(subactor: Subactor, code: Tensor) -> Tensor:
    if subactor.spec.goal_code_dim == 0:
        return code
    return subactor.decode_goal(code)


def shared_behavior_losses(
    subactors: list[Subactor], level: int, posterior: LatentState, is_terminal: Tensor
) -> BehaviorOutput:
    """One behaviour step of level ``level`` > 0 from level 0's posterior states [B, T]."""
    # posterior: LatentState [B, T] (level 0's)   is_terminal: [B, T] bool -> BehaviorOutput
    subactor = subactors[level]
    start = posterior.detach().flatten()
    goal_code = goal_codes_from_above(subactors, level, start)
    with torch.no_grad():
        goal = _decoded(subactor, goal_code)
    model = JointImaginationModel(subactors, level)
    return subactor.behavior_step(start, goal_code, goal, is_terminal.reshape(-1), model)
