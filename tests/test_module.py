"""HierosModule: one optimiser per (level, part), warm-up, NaN stops, counters and acting."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import Tensor, nn

from hieros_pl.bench.agent import plain_optimizers, synthetic_batch
from hieros_pl.config import Config
from hieros_pl.data.batch import HierarchyBatch
from hieros_pl.envs.factory import EnvSpec, to_env_action
from hieros_pl.hierarchy.rewards import level_reward_weights
from hieros_pl.module import HierosModule, NonFiniteLossError
from hieros_pl.world_models.world_model import weighted_total
from tests.conftest import compose

OBS_SHAPE = (16, 16, 3)
ACTIONS = 3
B, T = 2, 4


def _module(*overrides: str, action_dim: int = ACTIONS, discrete: bool = True) -> HierosModule:
    cfg = compose("hierarchy=depth2", *overrides)
    return HierosModule(cfg, OBS_SHAPE, True, action_dim, discrete=discrete)


def _all_levels(module: HierosModule, call_index: int = 0) -> HierarchyBatch:
    """A training call in which every level trains (call 0 includes every level)."""
    levels = [synthetic_batch(module, level, B, T) for level in range(len(module.specs))]
    return HierarchyBatch(call_index, list(levels))


def _params(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [param for group in optimizer.param_groups for param in group["params"]]


def _owners(module: HierosModule) -> dict[int, str]:
    """id(parameter) -> name of the optimiser that holds it."""
    named = zip(module.optimizer_names, module.configure_optimizers(), strict=True)
    return {id(param): name for name, optimizer in named for param in _params(optimizer)}


def _component(module: HierosModule, name: str) -> nn.Module:
    """The network that optimiser ``level{i}/{part}`` is meant to train."""
    level, part = name.split("/", 1)
    subactor = module.hierarchy.levels[int(level.removeprefix("level"))]
    if part == "world_model":
        return subactor.world_model
    if part == "actor":
        return subactor.actor_critic.actor
    if part.startswith("critic/"):
        return subactor.actor_critic.critic(part.removeprefix("critic/")).net
    assert part == "subgoal_ae" and subactor.autoencoder is not None, name
    return subactor.autoencoder


def _slow_critic_ids(module: HierosModule) -> set[int]:
    return {
        id(param)
        for subactor in module.hierarchy.levels
        for term in subactor.actor_critic.critics
        for param in subactor.actor_critic.critic(term).slow.parameters()
    }


def _expected_names(cfg: Config) -> list[str]:
    """Paper rule: a critic per reward term; an autoencoder below the top or for novelty."""
    levels = cfg.hierarchy.levels
    names = []
    for level in range(levels):
        terms = sorted(level_reward_weights(level, levels, cfg.reward))
        names += [f"level{level}/world_model", f"level{level}/actor"]
        names += [f"level{level}/critic/{term}" for term in terms]
        if level < levels - 1 or "novelty" in terms:
            names.append(f"level{level}/subgoal_ae")
    return names


# ----------------------------------------------------------------------------------------------
# optimiser layout


def test_depth2_has_the_documented_optimizers() -> None:
    module = _module()
    assert module.optimizer_names == [
        "level0/world_model",
        "level0/actor",
        "level0/critic/extrinsic",
        "level0/critic/subgoal",
        "level0/subgoal_ae",
        "level1/world_model",
        "level1/actor",
        "level1/critic/extrinsic",
        "level1/critic/novelty",
        "level1/subgoal_ae",
    ]


@pytest.mark.parametrize(
    "overrides",
    [("hierarchy=depth1",), ("hierarchy=depth2",), ("hierarchy=depth2", "reward=no_novelty")],
    ids=["depth1", "depth2", "depth2-no_novelty"],
)
def test_optimizer_names_follow_each_levels_reward_terms(overrides: tuple[str, ...]) -> None:
    cfg = compose(*overrides)
    module = HierosModule(cfg, OBS_SHAPE, True, ACTIONS, discrete=True)
    assert module.optimizer_names == _expected_names(cfg)
    assert len(module.configure_optimizers()) == len(module.optimizer_names)


def test_every_trainable_parameter_has_exactly_one_optimizer() -> None:
    module = _module()
    held = Counter(
        id(param) for optimizer in module.configure_optimizers() for param in _params(optimizer)
    )
    trainable = {id(param) for param in module.parameters() if param.requires_grad}
    assert set(held) == trainable
    assert set(held.values()) == {1}
    slow = _slow_critic_ids(module)
    assert slow, "no slow critics found"
    assert slow.isdisjoint(held)


def test_each_named_optimizer_holds_its_component_with_its_settings() -> None:
    module = _module()
    optim = module.cfg.optim
    for name, optimizer in plain_optimizers(module).items():
        expected = {id(p) for p in _component(module, name).parameters() if p.requires_grad}
        assert {id(param) for param in _params(optimizer)} == expected, name
        settings = getattr(optim, name.split("/")[1])
        assert optimizer.param_groups[0]["lr"] == settings.lr, name
        assert optimizer.param_groups[0]["eps"] == settings.eps, name


@pytest.mark.parametrize(("original", "decay"), [(False, 0.0), (True, 0.01)])
def test_weight_decay_is_zero_unless_compat_original(original: bool, decay: float) -> None:
    module = _module(f"compat.weight_decay_original={str(original).lower()}")
    decays = {
        group["weight_decay"] for opt in module.configure_optimizers() for group in opt.param_groups
    }
    assert decays == {decay}


# ----------------------------------------------------------------------------------------------
# each optimiser changes only its own parameters


def test_a_train_call_changes_only_optimized_parameters_and_steps_every_optimizer() -> None:
    module = _module()
    optimizers = plain_optimizers(module)
    before = {name: param.detach().clone() for name, param in module.named_parameters()}
    owned_before = {
        name: [p.detach().clone() for p in _params(opt)] for name, opt in optimizers.items()
    }
    module.count_env_steps(1)
    module.train_call(_all_levels(module), optimizers)

    assert module.updates.tolist() == [1, 1]
    # The slow critics move only by their EMA towards the fast ones, which starts from an exact
    # copy; before the first critic step it leaves them unchanged, so they must not show up here.
    held = set(_owners(module))
    changed = {
        name for name, param in module.named_parameters() if not torch.equal(param, before[name])
    }
    by_name = dict(module.named_parameters())
    assert changed, "the training call changed nothing"
    assert all(id(by_name[name]) in held for name in changed), sorted(
        name for name in changed if id(by_name[name]) not in held
    )
    for name, optimizer in optimizers.items():
        moved = [not torch.equal(p, q) for p, q in zip(_params(optimizer), owned_before[name])]
        assert any(moved), f"{name} did not change any of its parameters"
    # Every optimiser zeroes its gradients after stepping, so none leaks into the next call.
    assert all(param.grad is None for param in module.parameters())


def _reached(loss: Tensor, module: HierosModule, owners: dict[int, str]) -> set[str]:
    """Names of the optimisers whose parameters receive a gradient from ``loss``."""
    params = [param for param in module.parameters() if param.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return {
        owners.get(id(param), "<no optimiser>")
        for param, grad in zip(params, grads)
        if grad is not None
    }


@pytest.mark.parametrize("imag_gradient", ["reinforce", "dynamics"])
def test_each_loss_reaches_only_its_own_optimizer(imag_gradient: str) -> None:
    module = _module(f"behavior.imag_gradient={imag_gradient}")
    owners = _owners(module)
    for level, subactor in enumerate(module.hierarchy.levels):
        prefix = f"level{level}"
        batch = synthetic_batch(module, level, B, T)
        losses, posterior, _ = subactor.world_model_losses(batch)
        world_model_total = weighted_total(losses, module.cfg.world_model.loss_scales)
        assert _reached(world_model_total, module, owners) == {f"{prefix}/world_model"}

        behavior = subactor.behavior_losses(posterior.detach(), batch)
        assert _reached(behavior.actor_loss, module, owners) == {f"{prefix}/actor"}
        assert behavior.critic_losses.keys() == subactor.spec.reward_weights.keys()
        for term, critic_loss in behavior.critic_losses.items():
            assert _reached(critic_loss, module, owners) == {f"{prefix}/critic/{term}"}
        assert subactor.autoencoder is not None
        for term, autoencoder_loss in behavior.autoencoder_losses.items():
            assert _reached(autoencoder_loss, module, owners) == {f"{prefix}/subgoal_ae"}, term


def test_world_model_learning_rate_warms_up_linearly_then_stays() -> None:
    cfg = compose("hierarchy=depth1", "optim.world_model.warmup=3")
    module = HierosModule(cfg, OBS_SHAPE, True, ACTIONS, discrete=True)
    optimizers = plain_optimizers(module)
    base = cfg.optim.world_model.lr
    rates = []
    for call in range(5):
        module.train_call(HierarchyBatch(call, [synthetic_batch(module, 0, B, T)]), optimizers)
        rates.append(optimizers["level0/world_model"].param_groups[0]["lr"])
    expected = [base * min(1.0, (update + 1) / 3) for update in range(5)]
    assert rates == pytest.approx(expected, rel=1e-12)
    assert rates[0] == pytest.approx(base / 3)
    assert optimizers["level0/actor"].param_groups[0]["lr"] == cfg.optim.actor.lr


# ----------------------------------------------------------------------------------------------
# non-finite losses


@pytest.mark.parametrize(
    ("level", "section", "term"), [(0, "wm", "reward"), (1, "behavior", "critic/novelty")]
)
def test_check_finite_names_the_level_and_term(level: int, section: str, term: str) -> None:
    module = _module()
    finite = {"other": torch.tensor(1.0)}
    module._check_finite(level, section, finite)
    for bad in (float("nan"), float("inf")):
        losses = {**finite, term: torch.tensor(bad)}
        with pytest.raises(NonFiniteLossError, match=rf"level {level}: {section}/{term} ="):
            module._check_finite(level, section, losses)


def _poison(network: nn.Module) -> None:
    with torch.no_grad():
        for param in network.parameters():
            param.fill_(float("nan"))


@pytest.mark.parametrize(
    ("level", "part", "message"),
    [
        (0, "reward_head", r"level 0: wm/reward ="),
        (1, "reward_head", r"level 1: wm/reward ="),
        (0, "autoencoder", r"level 0: subgoal_ae/reconstruction ="),
    ],
    ids=["level0-reward_head", "level1-reward_head", "level0-autoencoder"],
)
def test_a_nan_loss_in_a_train_call_stops_with_level_and_term(
    level: int, part: str, message: str
) -> None:
    module = _module()
    subactor = module.hierarchy.levels[level]
    network = subactor.world_model.reward_head if part == "reward_head" else subactor.autoencoder
    assert network is not None
    _poison(network)
    module.count_env_steps(1)
    with pytest.raises(NonFiniteLossError, match=message):
        module.train_call(_all_levels(module), plain_optimizers(module))
    assert int(module.train_calls) == 0
    assert int(module.updates[level]) == 0


def test_a_nan_reward_in_the_batch_stops_with_level_and_term() -> None:
    # two_hot_encode maps a NaN target onto the top bin and the reward loss stays finite, so the
    # batch itself is checked before the world-model step.
    module = _module()
    batch = _all_levels(module)
    level0 = batch.levels[0]
    assert level0 is not None
    level0.reward[0, 1] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"level 0: batch/reward"):
        module.train_call(batch, plain_optimizers(module))


# ----------------------------------------------------------------------------------------------
# counters


def test_count_env_steps_advances_steps_and_frames() -> None:
    module = _module("env.action_repeat=4")
    module.count_env_steps(5)
    module.count_env_steps(3)
    assert int(module.env_steps) == 8
    assert int(module.env_frames) == 8 * 4


def test_active_levels_follow_activate_every() -> None:
    cfg = compose("hierarchy=depth3", "hierarchy.activate_every=10")
    module = HierosModule(cfg, OBS_SHAPE, True, ACTIONS, discrete=True)
    active = {}
    for target in (0, 9, 10, 19, 20, 1000):
        module.count_env_steps(target - int(module.env_steps))
        active[target] = module.active_levels()
    assert active == {0: 1, 9: 1, 10: 2, 19: 2, 20: 3, 1000: 3}


def test_train_call_skips_levels_that_are_not_active_yet() -> None:
    module = _module("hierarchy.activate_every=10")
    optimizers = plain_optimizers(module)
    level1_before = [p.detach().clone() for p in module.hierarchy.levels[1].parameters()]
    module.train_call(_all_levels(module), optimizers)
    assert module.updates.tolist() == [1, 0]
    level1_after = list(module.hierarchy.levels[1].parameters())
    assert all(torch.equal(p, q) for p, q in zip(level1_after, level1_before))
    module.count_env_steps(10)
    module.train_call(_all_levels(module, call_index=4), optimizers)
    assert module.updates.tolist() == [2, 1]
    assert int(module.train_calls) == 2


def test_replay_ratio_counts_replayed_steps_per_env_step_since_training_started() -> None:
    cfg = compose("hierarchy=depth1")
    module = HierosModule(cfg, OBS_SHAPE, True, ACTIONS, discrete=True)
    optimizers = plain_optimizers(module)
    replayed_per_call = cfg.replay.batch_size * cfg.replay.batch_length
    module.count_env_steps(100)
    assert module.replay_ratio() == 0.0
    module.train_call(HierarchyBatch(0, [synthetic_batch(module, 0, B, T)]), optimizers)
    assert int(module.first_train_env_step) == 100
    assert module.replay_ratio() == 0.0
    module.count_env_steps(4)
    assert module.replay_ratio() == pytest.approx(replayed_per_call / 4)
    module.train_call(HierarchyBatch(1, [synthetic_batch(module, 0, B, T)]), optimizers)
    module.count_env_steps(12)
    assert module.replay_ratio() == pytest.approx(2 * replayed_per_call / 16)


# ----------------------------------------------------------------------------------------------
# acting


def _act_twice(module: HierosModule, mode: str, num_envs: int = 3) -> list[Tensor]:
    """Actions of two env steps of ``num_envs`` envs; the first step starts every episode."""
    carry = module.hierarchy.initial_carry(num_envs, torch.device("cpu"))
    actions = []
    for is_first in (True, False):
        obs = torch.randint(0, 256, (num_envs, *OBS_SHAPE), dtype=torch.uint8)
        first = torch.full((num_envs,), is_first)
        done = torch.zeros(num_envs, dtype=torch.bool)
        reward = torch.zeros(num_envs)
        action, carry, _ = module.act(obs, reward, first, done, done, carry, mode)
        actions.append(action)
    return actions


@pytest.mark.parametrize("mode", ["train", "greedy"])
def test_discrete_act_returns_one_hot_actions(mode: str) -> None:
    module = _module()
    for action in _act_twice(module, mode):
        assert action.shape == (3, ACTIONS)
        assert action.dtype == torch.float32
        # Straight-through sampling (one_hot + probs − sg(probs)) is one-hot up to rounding.
        one_hot = torch.nn.functional.one_hot(action.argmax(-1), ACTIONS).float()
        torch.testing.assert_close(action, one_hot, atol=1e-6, rtol=0.0)
    assert module.training, "act must restore training mode"


def test_continuous_act_returns_bounded_actions() -> None:
    module = _module(action_dim=2, discrete=False)
    spec = EnvSpec(OBS_SHAPE, True, 2, False)
    for action in _act_twice(module, "greedy"):
        assert action.shape == (3, 2)
        assert bool(action.abs().le(1.0).all()), action
    for action in _act_twice(module, "train"):
        assert action.shape == (3, 2)
        assert bool(torch.isfinite(action).all())
        env_action = to_env_action(action.numpy(), spec)
        assert env_action.shape == (3, 2)
        assert float(abs(env_action).max()) <= 1.0
