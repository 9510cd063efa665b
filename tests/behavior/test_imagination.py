"""Imagined rollouts: shapes and the graph policy (ALGORITHM.md §4.1)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from hieros_pl.behavior.actor import Actor
from hieros_pl.behavior.imagination import imagine
from hieros_pl.config import S5Config, WorldModelConfig
from hieros_pl.nn.symlog import symlog
from hieros_pl.world_models.latent import LatentState
from hieros_pl.world_models.world_model import WorldModel
from tests.behavior.test_critic import output_weight

STOCH, CLASSES, DETER, ACTIONS, GOAL = 2, 3, 5, 4, 3


class FakeWorldModel(nn.Module):
    """A differentiable toy world model with the imagination interface of WorldModel."""

    def __init__(self, action_dim: int = ACTIONS) -> None:
        super().__init__()
        self.transition = nn.Linear(DETER + action_dim, DETER + STOCH * CLASSES)
        self.reward_head = nn.Linear(STOCH * CLASSES + DETER, 1)
        self.continue_head = nn.Linear(STOCH * CLASSES + DETER, 1)
        self.actor_feature_dim = STOCH * CLASSES + DETER + 1

    def initial(self, batch_size: int) -> LatentState:
        stoch = torch.zeros(batch_size, STOCH, CLASSES)
        deter = torch.randn(batch_size, DETER)
        return LatentState(stoch=stoch, deter=deter, logits=stoch.clone(), recurrent=deter.clone())

    def imagine_step(self, prev: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        out = self.transition(torch.cat([prev.deter, action], dim=-1))
        deter, logits = out[..., :DETER].tanh(), out[..., DETER:].unflatten(-1, (STOCH, CLASSES))
        stoch = torch.softmax(logits, -1)
        return LatentState(stoch=stoch, deter=deter, logits=logits, recurrent=deter)

    def reward(self, feature: Tensor) -> Tensor:
        return self.reward_head(feature)[..., 0]

    def continue_prob(self, feature: Tensor) -> Tensor:
        return torch.sigmoid(self.continue_head(feature)[..., 0])

    def actor_features_and_heads(self, state: LatentState) -> tuple[Tensor, Tensor, Tensor]:
        feature = state.feature()
        reward = self.reward(feature)
        actor_features = torch.cat([feature, symlog(reward)[..., None]], dim=-1)
        return actor_features, reward, self.continue_prob(feature)


def make_actor(feature_dim: int, action_dim: int = ACTIONS, kind: str = "onehot") -> Actor:
    groups, classes = 2, action_dim // 2
    return Actor(feature_dim + GOAL, action_dim, kind, groups, classes, 16, 1, 0.01, 0.1, 1.0)


def test_shapes_and_start_state_with_fake_model() -> None:
    world_model = FakeWorldModel()
    actor = make_actor(world_model.actor_feature_dim)
    start, goal = world_model.initial(6), torch.randn(6, GOAL)
    imagination = imagine(world_model, actor, start, goal, horizon=4)
    F = world_model.actor_feature_dim
    assert imagination.horizon == 4
    assert imagination.states.deter.shape == (6, 5, DETER)
    assert imagination.states.stoch.shape == (6, 5, STOCH, CLASSES)
    assert imagination.actor_features.shape == (6, 5, F)
    assert imagination.actions.shape == (6, 5, ACTIONS)
    assert imagination.actor_input.shape == (6, 5, F + GOAL)
    assert imagination.value_input().shape == (6, 5, F + GOAL)
    torch.testing.assert_close(imagination.states.deter[:, 0], start.deter)
    for n in range(5):
        torch.testing.assert_close(imagination.actor_input[:, n, F:], goal)
    torch.testing.assert_close(imagination.actions.sum(-1), torch.ones(6, 5))


def test_states_follow_the_stored_actions() -> None:
    world_model = FakeWorldModel()
    imagination = imagine(
        world_model,
        make_actor(world_model.actor_feature_dim),
        world_model.initial(3),
        torch.zeros(3, GOAL),
        horizon=3,
    )
    states = imagination.states
    for n in range(3):
        previous = states.at(n)
        step = world_model.imagine_step(previous, imagination.actions[:, n])
        torch.testing.assert_close(step.deter, states.deter[:, n + 1])


def test_reinforce_keeps_no_graph() -> None:
    world_model = FakeWorldModel()
    actor = make_actor(world_model.actor_feature_dim)
    imagination = imagine(world_model, actor, world_model.initial(4), torch.randn(4, GOAL), 3)
    for tensor in (
        imagination.states.deter,
        imagination.states.stoch,
        imagination.actor_features,
        imagination.actor_input,
        imagination.actions,
    ):
        assert not tensor.requires_grad and tensor.grad_fn is None


def test_dynamics_gradient_reaches_actor_but_not_world_model() -> None:
    world_model = FakeWorldModel()
    actor = make_actor(world_model.actor_feature_dim)
    imagination = imagine(
        world_model,
        actor,
        world_model.initial(4),
        torch.randn(4, GOAL),
        3,
        grad_through_dynamics=True,
    )
    assert imagination.actor_features.requires_grad
    assert not imagination.actor_input.requires_grad  # the actor sees sg(feat⁺)
    imagination.actor_features[:, -1].sum().backward()
    gradient = output_weight(actor.net).grad
    assert gradient is not None and gradient.abs().sum() > 0
    assert all(parameter.grad is None for parameter in world_model.parameters())
    assert all(parameter.requires_grad for parameter in world_model.parameters())  # restored


def test_mode_rollout_is_deterministic() -> None:
    world_model = FakeWorldModel()
    actor = make_actor(world_model.actor_feature_dim)
    start, goal = world_model.initial(5), torch.randn(5, GOAL)
    first = imagine(world_model, actor, start, goal, 4, sample=False)
    second = imagine(world_model, actor, start, goal, 4, sample=False)
    torch.testing.assert_close(first.actions, second.actions)
    torch.testing.assert_close(first.states.deter, second.states.deter)


@pytest.mark.parametrize("dynamics", ["s5wm", "rssm"])
def test_real_world_model(dynamics: str) -> None:
    cfg = WorldModelConfig(
        dynamics=dynamics,
        stoch=4,
        classes=4,
        deter=16,
        hidden=16,
        mlp_units=16,
        head_units=16,
        s5=S5Config(model_dim=16, state_dim=4, init_blocks=2, num_blocks=1),
    )
    world_model = WorldModel(cfg, obs_shape=(5,), obs_is_image=False, action_dim=8).eval()
    actor = make_actor(world_model.actor_feature_dim, action_dim=8, kind="grouped")
    start = world_model.initial(6, "cpu")
    imagination = imagine(world_model, actor, start, torch.randn(6, GOAL), horizon=3)
    assert imagination.states.deter.shape == (6, 4, 16)
    assert imagination.states.recurrent.shape == (6, 4, *start.recurrent.shape[1:])
    assert imagination.actor_features.shape == (6, 4, world_model.actor_feature_dim)
    assert imagination.actions.shape == (6, 4, 8)
    assert not imagination.actor_features.requires_grad
    # The rollout's r̂ and ĉ are the heads' predictions at the imagined states.
    with torch.no_grad():
        features = imagination.states.feature()
        torch.testing.assert_close(imagination.rewards, world_model.reward(features))
        torch.testing.assert_close(imagination.continues, world_model.continue_prob(features))
    graph = imagine(world_model, actor, start, torch.randn(6, GOAL), 3, grad_through_dynamics=True)
    assert graph.actor_features.requires_grad
    assert graph.rewards.requires_grad and graph.continues.requires_grad


class ModeRecordingWorldModel(FakeWorldModel):
    """Records the training flag at every imagined step."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def imagine_step(self, prev: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        self.modes.append(self.training)
        return super().imagine_step(prev, action, sample)


def test_world_model_runs_in_eval_mode_and_flag_is_restored() -> None:
    world_model = ModeRecordingWorldModel().train()
    actor = make_actor(world_model.actor_feature_dim)
    imagine(world_model, actor, world_model.initial(2), torch.zeros(2, GOAL), 3)
    assert world_model.modes == [False, False, False]
    assert world_model.training
