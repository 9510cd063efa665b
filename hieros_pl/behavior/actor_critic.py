"""Actor-critic losses of one behaviour step in imagination (ALGORITHM.md §4.4-4.9, §12 D2, D3).

One actor, and one critic and return normaliser per reward component j. Order of a behaviour
step (§4.9): the caller updates the slow critics, imagines, computes the rewards, then calls
:meth:`ActorCritic.losses`, which computes λ-returns, weights, the normaliser EMA and all losses.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hieros_pl.behavior.actor import Actor
from hieros_pl.behavior.critic import Critic
from hieros_pl.behavior.imagination import Imagination
from hieros_pl.behavior.normalizer import ReturnNormalizer
from hieros_pl.behavior.returns import discount_weights, lambda_return, transition_slices
from hieros_pl.config import BehaviorConfig


def normalised_advantage(
    returns: dict[str, Tensor],
    values: dict[str, Tensor],
    reward_weights: dict[str, float],
    scales: dict[str, Tensor],
) -> Tensor:
    """Σ_j w_j (R_j − v_j) / S_j (hieros-pl default, §4.7)."""
    # returns, values: each [N, H] float32   scales: each [] float32 -> advantage: [N, H] float32
    terms = [reward_weights[j] * (returns[j] - values[j]) / scales[j] for j in returns]
    return torch.stack(terms).sum(0)


def weight_averaged_advantage(
    returns: dict[str, Tensor], values: dict[str, Tensor], reward_weights: dict[str, float]
) -> Tensor:
    """Σ_j w_j (R_j − v_j) / Σ_j w_j, the original REINFORCE advantage (compat D3)."""
    # returns, values: each [N, H] float32 -> advantage: [N, H] float32
    terms = [reward_weights[j] * (returns[j] - values[j]) for j in returns]
    return torch.stack(terms).sum(0) / sum(reward_weights[j] for j in returns)


def actor_objective(
    log_prob: Tensor,
    advantage: Tensor,
    dynamics_objective: Tensor,
    imag_gradient: str,
    dynamics_mix: float,
) -> Tensor:
    """Per-step quantity the actor maximises: REINFORCE, through the dynamics, or a mix.

    REINFORCE uses log π(a_n) · sg(adv_n); "dynamics" uses Σ_j w_j Â_j differentiated through
    the imagined dynamics; "both" weighs the dynamics term by ``dynamics_mix``.
    """
    # log_prob, advantage, dynamics_objective: [N, H] float32 -> objective: [N, H] float32
    reinforce = log_prob * advantage.detach()
    if imag_gradient == "reinforce":
        return reinforce
    if imag_gradient == "dynamics":
        return dynamics_objective
    return dynamics_mix * dynamics_objective + (1.0 - dynamics_mix) * reinforce


def actor_loss(objective: Tensor, entropy: Tensor, weights: Tensor, entropy_scale: float) -> Tensor:
    """−mean_{n,b} w_n (objective_n + η H[π(· | s_n)]) (§4.7)."""
    # objective, entropy, weights: [N, H] float32 -> loss: [] float32
    return -(weights.detach() * (objective + entropy_scale * entropy)).mean()


class ActorCritic(nn.Module):
    """The actor, one critic and one return normaliser per reward term, and their losses."""

    def __init__(
        self,
        feature_dim: int,
        action_dim: int,
        action_kind: str,
        reward_terms: list[str],
        cfg: BehaviorConfig,
        subgoal_input_dim: int,
        groups: int,
        classes: int,
        lambda_return_original: bool,
        reinforce_advantage_original: bool,
    ) -> None:
        super().__init__()
        if not reward_terms:
            raise ValueError("ActorCritic needs at least one reward term")
        self.cfg = cfg
        self.lambda_return_original = lambda_return_original
        self.reinforce_advantage_original = reinforce_advantage_original
        in_dim = feature_dim + subgoal_input_dim
        self.actor = Actor(
            in_dim,
            action_dim,
            action_kind,
            groups,
            classes,
            cfg.units,
            cfg.layers,
            cfg.action_unimix,
            cfg.actor_min_std,
            cfg.actor_max_std,
        )
        self.critics = nn.ModuleDict(
            {j: Critic(in_dim, cfg.units, cfg.layers, cfg.value_bins) for j in reward_terms}
        )
        self.normalizers = nn.ModuleDict(
            {j: ReturnNormalizer(cfg.return_norm_rate) for j in reward_terms}
        )

    def critic(self, term: str) -> Critic:
        """The critic of reward term ``term``."""
        critic = self.critics[term]
        assert isinstance(critic, Critic)
        return critic

    def normalizer(self, term: str) -> ReturnNormalizer:
        """The return normaliser of reward term ``term``."""
        normalizer = self.normalizers[term]
        assert isinstance(normalizer, ReturnNormalizer)
        return normalizer

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters of the actor's optimiser."""
        return list(self.actor.parameters())

    def critic_parameters(self, term: str) -> list[nn.Parameter]:
        """Parameters of one critic's optimiser (its fast network only, never the slow copy)."""
        return self.critic(term).fast_parameters()

    def update_slow_critics(self) -> None:
        """θ_slow ← f·θ + (1 − f)·θ_slow for every critic (step 1 of §4.9)."""
        for term in self.critics:
            self.critic(term).update_slow(self.cfg.slow_critic_fraction)

    def losses(
        self,
        imagination: Imagination,
        rewards: dict[str, Tensor],
        reward_weights: dict[str, float],
        continues: Tensor,
        start_is_terminal: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Actor loss, one loss per critic and detached metrics of one behaviour step.

        ``rewards[j]`` and ``continues`` are per imagined state s_0..s_H; the indexing of
        ``lambda_return_original`` decides which state a transition takes them from (§4.5).
        Updates each return normaliser with this step's returns before using its scale.
        """
        # imagination: Imagination [N, H+1]   rewards: each [N, H+1] float32
        # continues: [N, H+1] float32 in [0, 1]   start_is_terminal: [N] bool
        # -> actor_loss: [] float32, critic_losses: each [] float32, metrics: each [] float32
        N, H_plus_1 = continues.shape
        H = H_plus_1 - 1
        assert rewards.keys() == reward_weights.keys() == self.critics.keys(), (
            f"{sorted(rewards)} != {sorted(reward_weights)} != {sorted(self.critics)}"
        )
        for term, reward in rewards.items():
            assert reward.shape == (N, H_plus_1), f"rewards[{term}] {tuple(reward.shape)}"
        assert start_is_terminal.shape == (N,), (
            f"start_is_terminal {tuple(start_is_terminal.shape)}"
        )
        assert imagination.actions.shape[:2] == (N, H_plus_1), (
            f"imagination.actions {tuple(imagination.actions.shape)}"
        )
        weights = discount_weights(
            continues, self.cfg.discount, start_is_terminal, self.lambda_return_original
        )
        returns, values = self._returns_and_values(imagination, rewards, continues)
        scales = self._update_normalizers(returns)
        value_input = imagination.value_input()[:, :H]
        critic_losses = {j: self.critic(j).loss(value_input, returns[j], weights) for j in returns}
        baselines = {j: values[j][:, :H].detach() for j in values}
        normalised = normalised_advantage(returns, baselines, reward_weights, scales)
        advantage = normalised
        if self.reinforce_advantage_original:
            advantage = weight_averaged_advantage(returns, baselines, reward_weights)
        loss, entropy = self._actor_loss(imagination, advantage.detach(), normalised, weights)
        metrics = self._metrics(returns, baselines, scales, critic_losses)
        metrics.update(
            actor_loss=loss.detach(),
            actor_entropy=entropy.mean().detach(),
            advantage_std=advantage.std().detach(),
        )
        return loss, critic_losses, metrics

    def _returns_and_values(
        self, imagination: Imagination, rewards: dict[str, Tensor], continues: Tensor
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """λ-returns R_j [N, H] and fast-critic values v_j [N, H+1] of every reward term.

        REINFORCE needs neither differentiable, so they are computed without a graph; the
        dynamics gradient keeps the graph through the features but never into critic weights.
        """
        # rewards: each [N, H+1] float32   continues: [N, H+1] float32
        # -> returns: each [N, H] float32, values: each [N, H+1] float32
        through_dynamics = self.cfg.imag_gradient != "reinforce"
        returns, values = {}, {}
        with torch.set_grad_enabled(through_dynamics and torch.is_grad_enabled()):
            value_input = imagination.value_input()
            for term, reward in rewards.items():
                values[term] = self.critic(term).value_through_features(value_input)
                sliced = transition_slices(reward, continues, self.lambda_return_original)
                returns[term] = lambda_return(
                    *sliced, values[term], self.cfg.discount, self.cfg.discount_lambda
                )
        return returns, values

    def _update_normalizers(self, returns: dict[str, Tensor]) -> dict[str, Tensor]:
        """Feed this step's returns to each normaliser and read back its scale S_j."""
        # returns: each [N, H] float32 -> scales: each [] float32
        scales = {}
        for term, term_returns in returns.items():
            self.normalizer(term).update(term_returns)
            scales[term] = self.normalizer(term).scale()
        return scales

    def _actor_loss(
        self,
        imagination: Imagination,
        advantage: Tensor,
        dynamics_objective: Tensor,
        weights: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Actor loss and the policy entropy at the H stored states."""
        # advantage, dynamics_objective, weights: [N, H] float32
        # -> loss: [] float32, entropy: [N, H] float32
        H = imagination.horizon
        distribution = self.actor(imagination.actor_input[:, :H])
        log_prob = distribution.log_prob(imagination.actions[:, :H].detach())
        entropy = distribution.entropy()
        objective = actor_objective(
            log_prob,
            advantage,
            dynamics_objective,
            self.cfg.imag_gradient,
            self.cfg.imag_gradient_mix,
        )
        return actor_loss(objective, entropy, weights, self.cfg.actor_entropy), entropy

    @staticmethod
    def _metrics(
        returns: dict[str, Tensor],
        baselines: dict[str, Tensor],
        scales: dict[str, Tensor],
        critic_losses: dict[str, Tensor],
    ) -> dict[str, Tensor]:
        """Per-term return, value, scale and critic-loss statistics, detached."""
        # returns, baselines: each [N, H] float32   scales, critic_losses: each [] float32
        metrics = {}
        for term in returns:
            metrics[f"return_mean/{term}"] = returns[term].mean().detach()
            metrics[f"return_std/{term}"] = returns[term].std().detach()
            metrics[f"value_mean/{term}"] = baselines[term].mean()
            metrics[f"return_scale/{term}"] = scales[term]
            metrics[f"critic_loss/{term}"] = critic_losses[term].detach()
        return metrics
