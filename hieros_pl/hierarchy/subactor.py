"""One level of the hierarchy: world model, imagination actor-critic and subgoal autoencoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hieros_pl.behavior.actor_critic import ActorCritic
from hieros_pl.behavior.imagination import Imagination, ImaginationModel, imagine
from hieros_pl.config import BehaviorConfig, CompatConfig, HierarchyConfig, WorldModelConfig
from hieros_pl.data.batch import Batch
from hieros_pl.hierarchy.rewards import novelty_reward, subgoal_reward
from hieros_pl.hierarchy.subgoal import SubgoalAutoencoder
from hieros_pl.world_models.latent import LatentState
from hieros_pl.world_models.world_model import WorldModel


@dataclass(frozen=True)
class LevelSpec:
    """What one level observes, outputs and is conditioned on."""

    level: int
    """Level index i (0 acts in the environment)."""
    obs_shape: tuple[int, ...]
    """Observation shape: the env image/vector at level 0, the stacked lower latents above."""
    obs_is_image: bool
    """True for uint8 [Himg, Wimg, C] images."""
    action_dim: int
    """A: env actions at level 0, G·V subgoal code above."""
    action_kind: str
    """Actor head: onehot | normal (level 0) or grouped (levels above 0)."""
    goal_code_dim: int
    """Width of the code received from the level above (0 at the top level)."""
    reward_weights: dict[str, float]
    """w_j of the reward components this level optimises (ALGORITHM.md §5.9)."""
    has_autoencoder: bool
    """Whether this level needs a subgoal autoencoder (decodes goals or scores novelty)."""


@dataclass
class BehaviorOutput:
    """Losses of one behaviour step and what the subgoal autoencoder trains on."""

    actor_loss: Tensor
    critic_losses: dict[str, Tensor]
    autoencoder_losses: dict[str, Tensor]
    metrics: dict[str, Tensor]


class Subactor(nn.Module):
    """World model + actor-critic + subgoal autoencoder of one level (ALGORITHM.md §2)."""

    def __init__(
        self,
        spec: LevelSpec,
        world_model_cfg: WorldModelConfig,
        behavior_cfg: BehaviorConfig,
        hierarchy_cfg: HierarchyConfig,
        compat: CompatConfig,
        subgoal_symlog: bool = True,
        novelty_symlog: bool = True,
        shared_world_model: WorldModel | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.compat = compat
        self.behavior_cfg = behavior_cfg
        self.subgoal_symlog = subgoal_symlog
        self.novelty_symlog = novelty_symlog
        self.decompress_goal = hierarchy_cfg.decompress_subgoal_input
        self.owns_world_model = shared_world_model is None
        if shared_world_model is not None:
            # Level 0's world model, held unregistered: its parameters, state-dict entries and
            # optimiser stay level 0's (hierarchy.shared_world_model; hierarchy/shared.py).
            self.__dict__["world_model"] = shared_world_model
        else:
            self.world_model = WorldModel(
                world_model_cfg,
                obs_shape=spec.obs_shape,
                obs_is_image=spec.obs_is_image,
                action_dim=spec.action_dim,
                action_alignment_original=compat.action_alignment_original,
            )
        goal_input_dim = self.goal_input_dim(world_model_cfg.deter)
        self.actor_critic = ActorCritic(
            feature_dim=self.world_model.actor_feature_dim,
            action_dim=spec.action_dim,
            action_kind=spec.action_kind,
            reward_terms=sorted(spec.reward_weights),
            cfg=behavior_cfg,
            subgoal_input_dim=goal_input_dim,
            groups=hierarchy_cfg.subgoal_groups,
            classes=hierarchy_cfg.subgoal_classes,
            lambda_return_original=compat.lambda_return_original,
            reinforce_advantage_original=compat.reinforce_advantage_original,
        )
        self.autoencoder: SubgoalAutoencoder | None = None
        if spec.has_autoencoder:
            self.autoencoder = SubgoalAutoencoder(
                deter_dim=world_model_cfg.deter,
                groups=hierarchy_cfg.subgoal_groups,
                classes=hierarchy_cfg.subgoal_classes,
                layers=hierarchy_cfg.subgoal_ae_layers,
                kl_scale=hierarchy_cfg.subgoal_ae_kl_scale,
                unimix=behavior_cfg.action_unimix,
                output_layers=not compat.subgoal_ae_output_original,
            )

    def goal_input_dim(self, deter_dim: int) -> int:
        """Width of the goal input of actor and critics: code, decoded goal, or nothing."""
        if self.spec.goal_code_dim == 0:
            return 0
        return deter_dim if self.decompress_goal else self.spec.goal_code_dim

    def goal_input(self, goal_code: Tensor, goal: Tensor) -> Tensor:
        """Actor/critic goal input: the raw code (default) or the decoded goal (ablation)."""
        # goal_code: [..., Gc] float32   goal: [..., h] float32 -> [..., goal_input_dim]
        if self.spec.goal_code_dim == 0:
            return goal_code[..., :0]
        return goal if self.decompress_goal else goal_code

    def decode_goal(self, goal_code: Tensor) -> Tensor:
        """Map a code from the level above into this level's symlog(deter) space (g̃)."""
        # goal_code: [..., Gc] float32 -> [..., h] float32
        assert self.autoencoder is not None, f"level {self.spec.level} has no autoencoder"
        return self.autoencoder.decode(goal_code)

    # ------------------------------------------------------------------------------------------
    # training

    def world_model_losses(self, batch: Batch) -> tuple[dict[str, Tensor], LatentState, dict]:
        """Unweighted world-model losses, the posterior [B, T] and metrics."""
        return self.world_model.loss(batch)

    def behavior_losses(self, posterior: LatentState, batch: Batch) -> BehaviorOutput:
        """One behaviour step: imagine from every posterior state, then the losses of §4 and §5.6.

        Sections: start states / imagination / rewards / actor-critic / subgoal autoencoder.
        """
        # posterior: LatentState [B, T]   batch: Batch [B, T]
        B, T = batch.reward.shape
        start = posterior.detach().flatten()
        goal_code = batch.subgoal_code.reshape(B * T, -1)
        goal = batch.subgoal.reshape(B * T, -1)
        return self.behavior_step(
            start, goal_code, goal, batch.is_terminal.reshape(B * T), self.world_model
        )

    def behavior_step(
        self,
        start: LatentState,
        goal_code: Tensor,
        goal: Tensor,
        start_is_terminal: Tensor,
        model: ImaginationModel,
    ) -> BehaviorOutput:
        """The behaviour step from N start states, imagining in ``model``."""
        # start: LatentState [N]   goal_code: [N, Gc]   goal: [N, h or 0]
        # start_is_terminal: [N] bool
        self.actor_critic.update_slow_critics()
        imagination = self._imagine(model, start, self.goal_input(goal_code, goal))
        # The intrinsic rewards keep a graph through the imagined states only for the dynamics
        # gradient (imag_gradient=dynamics|both); r̂ and ĉ come with the imagination.
        with torch.set_grad_enabled(self._dynamics_grad()):
            rewards = self._rewards(imagination, goal)
        actor_loss, critic_losses, metrics = self.actor_critic.losses(
            imagination,
            rewards,
            self.spec.reward_weights,
            imagination.continues,
            start_is_terminal,
        )
        autoencoder_losses: dict[str, Tensor] = {}
        if self.autoencoder is not None:
            deter = imagination.states.deter.detach().reshape(
                -1, imagination.states.deter.shape[-1]
            )
            autoencoder_losses = self.autoencoder.loss(deter)
        for term, reward in rewards.items():
            metrics[f"reward/{term}"] = reward.mean().detach()
        return BehaviorOutput(actor_loss, critic_losses, autoencoder_losses, metrics)

    def _imagine(
        self, model: ImaginationModel, start: LatentState, goal_input: Tensor
    ) -> Imagination:
        return imagine(
            model,
            self.actor_critic.actor,
            start,
            goal_input,
            self.behavior_cfg.horizon,
            sample=True,
            grad_through_dynamics=self._dynamics_grad(),
        )

    def _dynamics_grad(self) -> bool:
        return self.behavior_cfg.imag_gradient != "reinforce"

    def _rewards(self, imagination: Imagination, goal: Tensor) -> dict[str, Tensor]:
        """Reward components of every imagined state, keyed like the reward weights."""
        # goal: [N, h] float32 -> each reward [N, H+1] float32
        states = imagination.states
        rewards: dict[str, Tensor] = {}
        if "extrinsic" in self.spec.reward_weights:
            rewards["extrinsic"] = imagination.rewards
        if "subgoal" in self.spec.reward_weights:
            goal_per_step = goal[:, None].expand(-1, states.deter.shape[1], -1)
            rewards["subgoal"] = subgoal_reward(states.deter, goal_per_step, self.subgoal_symlog)
        if "novelty" in self.spec.reward_weights:
            assert self.autoencoder is not None
            rewards["novelty"] = novelty_reward(
                states.deter,
                self.autoencoder,
                self.novelty_symlog,
                self.compat.novelty_space_original,
            )
        assert rewards.keys() == self.spec.reward_weights.keys(), (
            f"{sorted(rewards)} != {sorted(self.spec.reward_weights)}"
        )
        return rewards

    # ------------------------------------------------------------------------------------------
    # parameter groups, one optimiser each

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters per optimiser: world_model (if owned), actor, critic/<term>,
        subgoal_ae."""
        groups: dict[str, list[nn.Parameter]] = {}
        if self.owns_world_model:
            groups["world_model"] = [p for p in self.world_model.parameters() if p.requires_grad]
        groups["actor"] = list(self.actor_critic.actor_parameters())
        for term in sorted(self.spec.reward_weights):
            groups[f"critic/{term}"] = list(self.actor_critic.critic_parameters(term))
        if self.autoencoder is not None:
            groups["subgoal_ae"] = list(self.autoencoder.parameters())
        return groups
