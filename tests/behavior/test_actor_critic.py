"""Actor-critic losses: returns, normalisation, advantages, gradient isolation (ALGORITHM.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from hieros_pl.behavior.actor_critic import (
    ActorCritic,
    actor_loss,
    actor_objective,
    normalised_advantage,
    weight_averaged_advantage,
)
from hieros_pl.behavior.imagination import Imagination, frozen_parameters, imagine
from hieros_pl.behavior.returns import lambda_return_reference, transition_slices
from hieros_pl.config import BehaviorConfig
from hieros_pl.nn.distributions import TwoHot
from tests.behavior.test_critic import output_weight
from tests.behavior.test_imagination import GOAL, FakeWorldModel

E, S, N = "extrinsic", "subgoal", "novelty"
WEIGHTS = {E: 1.0, S: 0.3, N: 0.1}
STARTS = 6


@dataclass
class Setup:
    world_model: FakeWorldModel
    actor_critic: ActorCritic
    imagination: Imagination
    rewards: dict[str, Tensor]
    continues: Tensor
    start_is_terminal: Tensor

    def losses(self, weights: dict[str, float] = WEIGHTS):
        return self.actor_critic.losses(
            self.imagination, self.rewards, weights, self.continues, self.start_is_terminal
        )


def behavior_config(compose_config, *overrides: str) -> BehaviorConfig:
    return compose_config("behavior.units=16", "behavior.horizon=4", *overrides).behavior


def make_setup(cfg: BehaviorConfig, kind: str = "onehot", **compat: bool) -> Setup:
    action_dim = 3 if kind == "normal" else 4
    world_model = FakeWorldModel(action_dim)
    actor_critic = ActorCritic(
        feature_dim=world_model.actor_feature_dim,
        action_dim=action_dim,
        action_kind=kind,
        reward_terms=sorted(WEIGHTS),
        cfg=cfg,
        subgoal_input_dim=GOAL,
        groups=2,
        classes=2,
        lambda_return_original=compat.get("lambda_return_original", False),
        reinforce_advantage_original=compat.get("reinforce_advantage_original", False),
    )
    with torch.no_grad():  # non-zero critics, so values and baselines matter
        for term in WEIGHTS:
            output_weight(actor_critic.critic(term).net).normal_(std=0.05)
    through_dynamics = cfg.imag_gradient != "reinforce"
    start, goal = world_model.initial(STARTS), torch.randn(STARTS, GOAL)
    imagination = imagine(
        world_model,
        actor_critic.actor,
        start,
        goal,
        cfg.horizon,
        grad_through_dynamics=through_dynamics,
    )
    # The world model's heads are evaluated with frozen weights: only the actor may learn here.
    with frozen_parameters(world_model):
        continues = world_model.continue_prob(imagination.states.feature())
    H_plus_1 = cfg.horizon + 1
    rewards = {term: 2.0 * torch.randn(STARTS, H_plus_1) for term in WEIGHTS}
    start_is_terminal = torch.tensor([False, True] + [False] * (STARTS - 2))
    return Setup(world_model, actor_critic, imagination, rewards, continues, start_is_terminal)


def grads_present(parameters) -> list[bool]:
    return [
        parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in parameters
    ]


def test_losses_keys_and_detached_metrics(compose_config) -> None:
    setup = make_setup(behavior_config(compose_config))
    loss, critic_losses, metrics = setup.losses()
    assert loss.shape == () and loss.requires_grad
    assert critic_losses.keys() == WEIGHTS.keys()
    for term in WEIGHTS:
        for name in ("return_mean", "return_std", "value_mean", "return_scale", "critic_loss"):
            assert f"{name}/{term}" in metrics
    for name in ("actor_entropy", "advantage_std", "actor_loss"):
        assert name in metrics
    assert all(value.shape == () and not value.requires_grad for value in metrics.values())


def test_reward_keys_must_match_weights_and_critics(compose_config) -> None:
    setup = make_setup(behavior_config(compose_config))
    with pytest.raises(AssertionError, match="novelty"):
        setup.losses({E: 1.0, S: 0.3})
    del setup.rewards[N]
    with pytest.raises(AssertionError, match="novelty"):
        setup.losses({E: 1.0, S: 0.3})


@pytest.mark.parametrize(
    "overrides",
    [
        ("behavior.imag_gradient=reinforce",),
        ("behavior.imag_gradient=dynamics",),
        ("behavior.imag_gradient=both", "behavior.imag_gradient_mix=0.5"),
    ],
)
def test_actor_loss_gradients_reach_only_the_actor(compose_config, overrides) -> None:
    setup = make_setup(behavior_config(compose_config, *overrides))
    loss, _, _ = setup.losses()
    loss.backward()
    actor_critic = setup.actor_critic
    assert any(grads_present(actor_critic.actor_parameters()))
    assert not any(grads_present(actor_critic.critics.parameters()))
    assert not any(grads_present(setup.world_model.parameters()))


def test_each_critic_loss_reaches_only_its_critic(compose_config) -> None:
    setup = make_setup(behavior_config(compose_config))
    _, critic_losses, _ = setup.losses()
    actor_critic = setup.actor_critic
    for term, critic_loss in critic_losses.items():
        actor_critic.zero_grad(set_to_none=True)
        critic_loss.backward(retain_graph=True)
        assert any(grads_present(actor_critic.critic_parameters(term)))
        for other in WEIGHTS.keys() - {term}:
            assert not any(grads_present(actor_critic.critics[other].parameters()))
        assert not any(grads_present(actor_critic.critic(term).slow.parameters()))
        assert not any(grads_present(actor_critic.actor_parameters()))


@pytest.mark.parametrize("original", [False, True])
def test_returns_and_normalizer_follow_the_indexing(compose_config, original: bool) -> None:
    cfg = behavior_config(compose_config)
    setup = make_setup(cfg, lambda_return_original=original)
    _, _, metrics = setup.losses()
    value_input = setup.imagination.value_input()
    for term, reward in setup.rewards.items():
        values = setup.actor_critic.critic(term).value(value_input).detach()
        assert values.abs().max() > 0.01  # the bootstrap must matter for this test
        sliced = transition_slices(reward, setup.continues.detach(), original)
        expected = lambda_return_reference(*sliced, values, cfg.discount, cfg.discount_lambda)
        torch.testing.assert_close(metrics[f"return_mean/{term}"], expected.mean())
        high = torch.quantile(expected.flatten(), 0.95)
        normalizer = setup.actor_critic.normalizer(term)
        torch.testing.assert_close(normalizer.high, cfg.return_norm_rate * high)
        torch.testing.assert_close(metrics[f"return_scale/{term}"], normalizer.scale())


def test_original_advantage_divides_by_weight_sum(compose_config) -> None:
    setup = make_setup(behavior_config(compose_config))
    weights = {term: 0.5 for term in WEIGHTS}
    _, _, default = setup.losses(weights)
    setup.actor_critic.reinforce_advantage_original = True
    _, _, original = setup.losses(weights)
    # Scales are still 1 after two small EMA steps, so default = Σ 0.5·δ, original = Σ 0.5·δ / 1.5.
    assert setup.actor_critic.normalizer(E).scale() == 1.0
    torch.testing.assert_close(default["advantage_std"], 1.5 * original["advantage_std"])


def test_advantage_formulas_by_hand() -> None:
    returns = {E: torch.tensor([[3.0]]), N: torch.tensor([[1.0]])}
    values = {E: torch.tensor([[1.0]]), N: torch.tensor([[0.0]])}
    weights = {E: 1.0, N: 0.5}
    scales = {E: torch.tensor(2.0), N: torch.tensor(1.0)}
    # 1·(3 − 1)/2 + 0.5·(1 − 0)/1 = 1.5 ;  (1·2 + 0.5·1) / 1.5 = 5/3
    torch.testing.assert_close(
        normalised_advantage(returns, values, weights, scales), torch.tensor([[1.5]])
    )
    torch.testing.assert_close(
        weight_averaged_advantage(returns, values, weights), torch.tensor([[5.0 / 3.0]])
    )


def test_actor_objective_and_loss_by_hand() -> None:
    log_prob = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    advantage = torch.tensor([[2.0, -1.0]], requires_grad=True)
    dynamics = torch.tensor([[10.0, 20.0]])
    reinforce = actor_objective(log_prob, advantage, dynamics, "reinforce", 0.5)
    torch.testing.assert_close(reinforce, torch.tensor([[-2.0, 2.0]]))
    reinforce.sum().backward()
    assert advantage.grad is None  # sg(adv)
    torch.testing.assert_close(
        actor_objective(log_prob, advantage, dynamics, "dynamics", 0.5), dynamics
    )
    both = actor_objective(log_prob, advantage, dynamics, "both", 0.25)
    torch.testing.assert_close(both, 0.25 * dynamics + 0.75 * torch.tensor([[-2.0, 2.0]]))
    loss = actor_loss(
        torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.5]]), 0.1
    )
    torch.testing.assert_close(loss, -torch.tensor((1.0 * 1.3 + 0.5 * 2.4) / 2))


def test_update_slow_critics_and_parameter_groups(compose_config) -> None:
    cfg = behavior_config(compose_config, "behavior.slow_critic_fraction=0.1")
    actor_critic = make_setup(cfg).actor_critic
    critic = actor_critic.critic(S)
    old = output_weight(critic.slow).clone()
    actor_critic.update_slow_critics()
    expected = 0.1 * output_weight(critic.net) + 0.9 * old
    torch.testing.assert_close(output_weight(critic.slow), expected)
    groups = [actor_critic.actor_parameters()] + [
        actor_critic.critic_parameters(j) for j in WEIGHTS
    ]
    ids = [id(parameter) for group in groups for parameter in group]
    assert len(ids) == len(set(ids))
    trainable = {id(p) for p in actor_critic.parameters() if p.requires_grad}
    assert set(ids) == trainable


@pytest.mark.parametrize("kind", ["grouped", "normal"])
def test_other_action_kinds_train(compose_config, kind: str) -> None:
    setup = make_setup(behavior_config(compose_config), kind=kind)
    loss, critic_losses, _ = setup.losses()
    loss.backward()
    assert any(grads_present(setup.actor_critic.actor_parameters()))
    assert torch.isfinite(torch.stack(list(critic_losses.values()))).all()


@pytest.mark.parametrize("bins", ["symlog", "symexp"])
def test_value_bins_reach_every_critic_and_its_loss(compose_config, bins: str) -> None:
    setup = make_setup(behavior_config(compose_config, f"behavior.value_bins={bins}"))
    features = torch.randn(5, setup.actor_critic.critics["extrinsic"].in_dim)
    for critic in setup.actor_critic.critics.values():
        assert critic.bins == bins and critic.distribution(features).space == bins
        expected = TwoHot(critic.net(features), bins).mean()
        torch.testing.assert_close(critic.value(features), expected)
        slow = TwoHot(critic.slow(features), bins).mean()
        torch.testing.assert_close(critic.slow_value(features), slow)
