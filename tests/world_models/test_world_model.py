"""World model with both dynamics: shapes, losses, observe vs fold, gradients (ALGORITHM.md §3)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch

from hieros_pl.config import Config, ConfigError, WorldModelConfig
from hieros_pl.data.batch import Batch
from hieros_pl.nn.distributions import TwoHot
from hieros_pl.nn.layers import count_parameters
from hieros_pl.world_models.dynamics import Dynamics
from hieros_pl.world_models.latent import LatentState
from hieros_pl.world_models.rssm import RSSM
from hieros_pl.world_models.s5wm import S5WM
from hieros_pl.world_models.world_model import (
    DYNAMICS,
    WorldModel,
    correlation,
    kl_balance,
    logit_balance,
    previous_actions,
    weighted_total,
)

A = 3
B, T = 2, 8
# is_first per sample: row 0 always, plus resets in the middle (twice in a row for sample 0).
RESETS = ((0, 3, 4), (0, 6))

ComposeConfig = Callable[..., Config]


def random_batch(
    obs_shape: tuple[int, ...], image: bool, resets: tuple[tuple[int, ...], ...] = RESETS
) -> Batch:
    """A [B, T] batch with random obs, one-hot actions, rewards and the given is_first rows."""
    if image:
        obs = torch.randint(0, 256, (B, T, *obs_shape), dtype=torch.uint8)
    else:
        obs = 3.0 * torch.randn(B, T, *obs_shape)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    for row, positions in enumerate(resets):
        is_first[row, list(positions)] = True
    is_terminal = torch.zeros(B, T, dtype=torch.bool)
    is_terminal[0, 2] = True
    return Batch(
        obs=obs,
        action=torch.eye(A)[torch.randint(0, A, (B, T))],
        reward=torch.randn(B, T),
        is_first=is_first,
        is_last=is_terminal.clone(),
        is_terminal=is_terminal,
        subgoal=torch.zeros(B, T, 0),
        subgoal_code=torch.zeros(B, T, 0),
    )


def tiny_world_model(
    compose_config: ComposeConfig,
    dynamics: str,
    *overrides: str,
    image: bool = True,
    original: bool = False,
) -> tuple[WorldModel, Batch]:
    """A world model from the composed tiny config (plus overrides) and a matching batch."""
    cfg = compose_config(f"world_model={dynamics}", *overrides)
    size = cfg.env.image_size
    obs_shape = (size, size, 3) if image else (5,)
    model = WorldModel(cfg.world_model, obs_shape, image, A, action_alignment_original=original)
    return model, random_batch(obs_shape, image)


def fold_obs_step(model: WorldModel, batch: Batch) -> LatentState:
    """The acting loop: obs_step over the sequence with the action taken at the previous row."""
    state = model.initial(B, "cpu")
    previous = torch.zeros(B, A)
    states = []
    for t in range(T):
        state = model.obs_step(state, previous, batch.obs[:, t], batch.is_first[:, t], sample=False)
        states.append(state)
        previous = batch.action[:, t]
    return LatentState.stack(states)


@pytest.fixture(params=["s5wm", "rssm"])
def dynamics(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_dynamics_registry_and_protocol() -> None:
    assert set(DYNAMICS) == {"s5wm", "rssm"}
    implementations: list[Dynamics] = [
        S5WM(WorldModelConfig(stoch=2, classes=2, deter=4, hidden=4), 6, A),
        RSSM(WorldModelConfig(stoch=2, classes=2, deter=4, hidden=4), 6, A),
    ]
    assert len(implementations) == 2


def test_unknown_dynamics_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"world_model\.dynamics"):
        WorldModel(WorldModelConfig(dynamics="lstm"), (16, 16, 3), True, A)


def test_loss_keys_shapes_and_finite(compose_config: ComposeConfig, dynamics: str) -> None:
    model, batch = tiny_world_model(compose_config, dynamics)
    cfg = model.cfg
    losses, posterior, metrics = model.loss(batch)
    assert losses.keys() == cfg.loss_scales.keys()
    for name, value in losses.items():
        assert value.shape == () and bool(torch.isfinite(value)), name
    # Free bits: the KL terms are at least free_nats; an untrained reward head is uniform.
    assert losses["dyn"].item() >= cfg.free_nats and losses["rep"].item() >= cfg.free_nats
    assert losses["reward"].item() == pytest.approx(torch.log(torch.tensor(255.0)).item(), rel=1e-4)
    S, Z, h = cfg.stoch, cfg.classes, cfg.deter
    assert posterior.stoch.shape == (B, T, S, Z) and posterior.logits.shape == (B, T, S, Z)
    assert posterior.deter.shape == (B, T, h) and posterior.deter.dtype == torch.float32
    assert posterior.feature().shape == (B, T, model.feature_dim) == (B, T, S * Z + h)
    torch.testing.assert_close(posterior.stoch.detach().sum(-1), torch.ones(B, T, S))
    expected_metrics = {"posterior_entropy", "prior_entropy", "kl", "obs_mse", "reward_error"}
    expected_metrics |= {"reward_abs", "reward_corr"}
    assert expected_metrics | set(losses) <= set(metrics)
    assert ("max_real_lambda" in metrics) == (dynamics == "s5wm")
    for name, value in metrics.items():
        assert value.shape == () and not value.requires_grad and bool(torch.isfinite(value)), name
    total = weighted_total(losses, cfg.loss_scales)
    expected = sum(cfg.loss_scales[name] * losses[name] for name in losses)
    torch.testing.assert_close(total, expected)


def test_recurrent_state_layout(compose_config: ComposeConfig, dynamics: str) -> None:
    model, batch = tiny_world_model(compose_config, dynamics)
    _, posterior, _ = model.loss(batch)
    if dynamics == "s5wm":
        s5 = model.cfg.s5
        assert posterior.recurrent.shape == (B, T, s5.num_blocks, 2 * s5.state_dim)
        assert posterior.recurrent.dtype == torch.complex64
    else:
        torch.testing.assert_close(posterior.recurrent, posterior.deter)


def test_step_modes_shapes(compose_config: ComposeConfig, dynamics: str) -> None:
    model, batch = tiny_world_model(compose_config, dynamics)
    model.eval()
    N = 4
    initial = model.initial(N, "cpu")
    assert initial.feature().shape == (N, model.feature_dim)
    # z_init is one-hot (the prior mode at h_0).
    torch.testing.assert_close(initial.stoch.sum(-1), torch.ones(N, model.cfg.stoch))
    obs = batch.obs[:, 0].repeat(2, 1, 1, 1)
    action = torch.eye(A)[torch.arange(N) % A]
    is_first = torch.tensor([True, False, True, False])
    posterior = model.obs_step(initial, action, obs, is_first)
    prior = model.imagine_step(posterior, action)
    for state in (posterior, prior):
        assert state.stoch.shape == (N, model.cfg.stoch, model.cfg.classes)
        assert state.deter.shape == (N, model.cfg.deter)
        assert state.recurrent.shape == initial.recurrent.shape
        assert state.recurrent.dtype == initial.recurrent.dtype
    feature = prior.feature()
    assert model.reward(feature).shape == (N,)
    probability = model.continue_prob(feature)
    assert probability.shape == (N,) and bool(((probability >= 0) & (probability <= 1)).all())
    actor_features = model.actor_features(prior)
    assert actor_features.shape == (N, model.actor_feature_dim) == (N, model.feature_dim + 3)
    image = model.decode(feature)
    assert image.shape == (N, *model.obs_shape)
    assert float(image.detach().min()) >= 0 and float(image.detach().max()) <= 1


def test_actions_are_rescaled_to_unit_magnitude(
    compose_config: ComposeConfig, dynamics: str
) -> None:
    model, _ = tiny_world_model(compose_config, dynamics)
    model.eval()
    start = model.initial(A, "cpu")
    with torch.no_grad():
        unit = model.imagine_step(start, torch.eye(A), sample=False)
        scaled = model.imagine_step(start, 4.0 * torch.eye(A), sample=False)
        halved = model.imagine_step(start, 0.5 * torch.eye(A), sample=False)
    torch.testing.assert_close(unit.deter, scaled.deter)
    assert not torch.allclose(unit.deter, halved.deter)


def test_imagine_step_detaches_only_the_s5_carry(compose_config: ComposeConfig) -> None:
    model, _ = tiny_world_model(compose_config, "s5wm")
    start = model.initial(3, "cpu")
    prior = model.imagine_step(start, torch.eye(A))
    assert prior.deter.requires_grad and not prior.recurrent.requires_grad


def test_actor_features_are_feature_plus_symlog_extras(compose_config: ComposeConfig) -> None:
    model, batch = tiny_world_model(compose_config, "s5wm")
    _, posterior, _ = model.loss(batch)
    extras = model.actor_features(posterior)[..., model.feature_dim :]
    entropy = -(posterior.logits.exp() * posterior.logits).sum((-2, -1))
    raw = torch.stack(
        [
            model.reward(posterior.feature()),
            model.continue_prob(posterior.feature()),
            entropy,
        ],
        dim=-1,
    )
    torch.testing.assert_close(extras, torch.sign(raw) * torch.log1p(raw.abs()))


def test_observe_equals_fold_of_obs_step(compose_config: ComposeConfig, dynamics: str) -> None:
    model, batch = tiny_world_model(compose_config, dynamics)
    model.eval()
    with torch.no_grad():
        posterior, _ = model.observe(batch.obs, batch.action, batch.is_first, sample=False)
        folded = fold_obs_step(model, batch)
    torch.testing.assert_close(posterior.deter, folded.deter, atol=1e-4, rtol=0)
    torch.testing.assert_close(posterior.logits, folded.logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(posterior.stoch, folded.stoch, atol=1e-4, rtol=0)


def test_original_action_alignment_does_not_match_acting(
    compose_config: ComposeConfig, dynamics: str
) -> None:
    """D1: with row t's action as input, training sees the action chosen AFTER o_t, so the
    parallel observe disagrees with the acting loop, which can only feed the previous action."""
    model, batch = tiny_world_model(compose_config, dynamics, original=True)
    model.eval()
    with torch.no_grad():
        posterior, _ = model.observe(batch.obs, batch.action, batch.is_first, sample=False)
        folded = fold_obs_step(model, batch)
    # Position 0 and reset rows see zero actions in both; every other position differs.
    assert torch.allclose(posterior.deter[:, 0], folded.deter[:, 0], atol=1e-4)
    assert not torch.allclose(posterior.deter[:, 1:], folded.deter[:, 1:], atol=1e-3)


def test_gradients_reach_every_component(compose_config: ComposeConfig, dynamics: str) -> None:
    model, batch = tiny_world_model(compose_config, dynamics)
    losses, _, _ = model.loss(batch)
    weighted_total(losses, model.cfg.loss_scales).backward()
    parts = {
        "encoder": model.encoder,
        "dynamics": model.get_submodule("dynamics"),
        "decoder": model.decoder,
        "reward_head": model.reward_head,
        "continue_head": model.continue_head,
    }
    for name, module in parts.items():
        norms = [p.grad.abs().sum() for p in module.parameters() if p.grad is not None]
        assert norms and float(torch.stack(norms).sum()) > 0, name
    # The learned initial state is trained through the straight-through z_init (S5WM) or h_0.
    initial_weight = model.get_submodule("dynamics").get_parameter("initial_weight")
    assert initial_weight.grad is not None and float(initial_weight.grad.abs().sum()) > 0


def test_vector_observations_use_one_decoder_term(
    compose_config: ComposeConfig, dynamics: str
) -> None:
    model, batch = tiny_world_model(compose_config, dynamics, image=False)
    losses, _, metrics = model.loss(batch)
    assert losses.keys() == model.cfg.loss_scales.keys()
    assert bool(torch.isfinite(losses["decoder"])) and losses["decoder"].item() > 0
    assert bool(torch.isfinite(metrics["obs_mse"]))
    model.eval()
    state = model.obs_step(
        model.initial(B, "cpu"), torch.zeros(B, A), batch.obs[:, 0], batch.is_first[:, 0]
    )
    assert model.decode(state.feature()).shape == (B, 5)


def test_no_stoch_uses_logits_as_latent(compose_config: ComposeConfig, dynamics: str) -> None:
    model, batch = tiny_world_model(compose_config, dynamics, "world_model.stochastic=false")
    assert model.actor_feature_dim == model.feature_dim + 2
    losses, posterior, _ = model.loss(batch)
    assert all(bool(torch.isfinite(value)) for value in losses.values())
    torch.testing.assert_close(posterior.stoch, posterior.logits)
    assert model.actor_features(posterior).shape == (B, T, model.feature_dim + 2)


def test_state_as_deter_false_takes_deter_from_output_path(compose_config: ComposeConfig) -> None:
    model, batch = tiny_world_model(compose_config, "s5wm", "world_model.s5.state_as_deter=false")
    dynamics_module = model.get_submodule("dynamics")
    assert isinstance(dynamics_module, S5WM) and dynamics_module.state_layer is None
    losses, posterior, _ = model.loss(batch)
    assert all(bool(torch.isfinite(value)) for value in losses.values())
    assert posterior.deter.shape == (B, T, model.cfg.deter)


def test_dropout_only_in_training_mode(compose_config: ComposeConfig) -> None:
    model, batch = tiny_world_model(compose_config, "s5wm", "world_model.s5.dropout=0.5")
    runs = []
    for training in (True, True, False, False):
        model.train(training)
        with torch.no_grad():
            posterior, _ = model.observe(batch.obs, batch.action, batch.is_first, sample=False)
        runs.append(posterior.deter)
    assert not torch.allclose(runs[0], runs[1])
    torch.testing.assert_close(runs[2], runs[3])


def test_previous_actions_shift_by_one_row() -> None:
    action = torch.arange(1.0, 7.0).reshape(1, 3, 2)
    shifted = previous_actions(action, original=False)
    torch.testing.assert_close(shifted, torch.tensor([[[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]]]))
    assert torch.equal(previous_actions(action, original=True), action)


def test_kl_free_bits_apply_after_summing_over_latents() -> None:
    S, Z = 32, 4
    posterior = torch.log_softmax(torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(1, 1, S, Z), -1)
    prior = torch.log_softmax(torch.zeros(1, 1, S, Z), -1)
    per_latent = (posterior.exp() * (posterior - prior)).sum(-1)
    assert per_latent.max().item() < 1.0 < per_latent.sum().item()
    dyn, rep = kl_balance(posterior, prior, free_nats=1.0)
    torch.testing.assert_close(dyn, per_latent.sum(-1))
    torch.testing.assert_close(rep, per_latent.sum(-1))
    # Below the free bits the terms are clipped to exactly free_nats.
    clipped_dyn, clipped_rep = kl_balance(posterior[..., :2, :], prior[..., :2, :], free_nats=1.0)
    assert clipped_dyn.item() == 1.0 and clipped_rep.item() == 1.0


def test_kl_balance_splits_gradients() -> None:
    posterior = torch.randn(2, 3, 32, 4).log_softmax(-1).requires_grad_()
    prior = torch.randn(2, 3, 32, 4).log_softmax(-1).requires_grad_()
    dyn, rep = kl_balance(posterior, prior, free_nats=0.0)
    dyn_grads = torch.autograd.grad(dyn.sum(), [posterior, prior], allow_unused=True)
    assert dyn_grads[0] is None and dyn_grads[1] is not None
    rep_grads = torch.autograd.grad(rep.sum(), [posterior, prior], allow_unused=True)
    assert rep_grads[0] is not None and rep_grads[1] is None


def test_logit_balance_clips_each_element() -> None:
    posterior = torch.zeros(1, 1, 2, 2, requires_grad=True)
    prior = torch.tensor([[[[0.5, 0.0], [3.0, 0.0]]]], requires_grad=True)
    dyn, rep = logit_balance(posterior, prior, free_nats=1.0)
    # Elements: 0.25, 0, 9, 0 → clipped 1, 1, 9, 1 → mean 3.
    torch.testing.assert_close(dyn, torch.tensor([[3.0]]))
    torch.testing.assert_close(rep, torch.tensor([[3.0]]))
    (grad,) = torch.autograd.grad(dyn.sum(), prior)
    # Only the element above the free bits receives gradient.
    assert torch.count_nonzero(grad).item() == 1


def test_weighted_total_asserts_matching_keys() -> None:
    losses = {"decoder": torch.tensor(2.0), "dyn": torch.tensor(3.0)}
    torch.testing.assert_close(
        weighted_total(losses, {"decoder": 1.0, "dyn": 0.5}), torch.tensor(3.5)
    )
    with pytest.raises(AssertionError, match="decoder"):
        weighted_total(losses, {"decoder": 1.0})


def test_paper_size_parameter_counts() -> None:
    """ALGORITHM.md §13: level-0 world model at A = 18, 64×64×3 ≈ 9.13 M."""
    model = WorldModel(WorldModelConfig(), (64, 64, 3), True, 18)
    dynamics_module = model.get_submodule("dynamics")
    assert isinstance(dynamics_module, S5WM)
    assert count_parameters(model.encoder) == 388_944
    assert count_parameters(dynamics_module.sequence) == 4 * 396_032
    assert count_parameters(dynamics_module) == pytest.approx(3.56e6, rel=0.005)
    assert count_parameters(model.decoder) == 4_323_795
    assert count_parameters(model.reward_head) == 459_775
    assert count_parameters(model.continue_head) == 394_497
    assert count_parameters(model) == pytest.approx(9.13e6, rel=0.005)


def test_latent_sizes_follow_config() -> None:
    cfg = dataclasses.replace(WorldModelConfig(), stoch=3, classes=5, deter=7, hidden=8)
    cfg = dataclasses.replace(
        cfg, s5=dataclasses.replace(cfg.s5, model_dim=8, state_dim=4, init_blocks=1, num_blocks=2)
    )
    model = WorldModel(cfg, (16, 16, 3), True, A)
    assert model.feature_dim == 3 * 5 + 7 and model.actor_feature_dim == 3 * 5 + 7 + 3


def test_reward_correlation_is_pearson_and_zero_without_rewards() -> None:
    target = torch.tensor([[0.0, 1.0, 0.0, 5.0], [0.0, 0.0, 2.0, 0.0]])
    torch.testing.assert_close(correlation(2 * target + 1, target), torch.tensor(1.0))
    torch.testing.assert_close(correlation(-target, target), torch.tensor(-1.0))
    noisy = target + torch.tensor([[0.5, -0.5, 0.5, -0.5], [0.0, 1.0, 0.0, -1.0]])
    stacked = torch.stack([noisy.flatten(), target.flatten()])
    torch.testing.assert_close(correlation(noisy, target), torch.corrcoef(stacked)[0, 1])
    assert correlation(target, torch.zeros_like(target)).item() == 0.0


@pytest.mark.parametrize("bins", ["symlog", "symexp"])
def test_reward_loss_and_prediction_use_the_configured_bins(
    compose_config: ComposeConfig, bins: str
) -> None:
    model, batch = tiny_world_model(compose_config, "s5wm", f"world_model.reward_bins={bins}")
    torch.manual_seed(0)
    with torch.no_grad():  # an output layer that is not zero: a non-uniform reward distribution
        model.reward_head.head.weight.normal_(std=0.1)
    losses, posterior, _ = model.loss(batch)
    feature = posterior.feature()
    logits = model.reward_head(feature)
    expected = -TwoHot(logits, bins).log_prob(batch.reward).mean()
    torch.testing.assert_close(losses["reward"], expected)
    torch.testing.assert_close(model.reward(feature), TwoHot(logits, bins).mean())
    other = "symlog" if bins == "symexp" else "symexp"
    assert not torch.allclose(model.reward(feature), TwoHot(logits, other).mean())


def test_reward_head_starts_at_zero_unless_an_output_scale_is_set(
    compose_config: ComposeConfig,
) -> None:
    paper, _ = tiny_world_model(compose_config, "s5wm")
    assert (paper.reward_head.head.weight == 0).all() and (paper.reward_head.head.bias == 0).all()
    torch.manual_seed(0)
    scaled, _ = tiny_world_model(compose_config, "s5wm", "world_model.reward_output_scale=1.0")
    weight = scaled.reward_head.head.weight
    fan_in, fan_out = weight.shape[1], weight.shape[0]
    limit = (3.0 / ((fan_in + fan_out) / 2)) ** 0.5
    assert weight.abs().max() <= limit and weight.abs().max() > 0.9 * limit
    assert (scaled.reward_head.head.bias == 0).all()
    with pytest.raises(ConfigError, match=r"world_model\.reward_output_scale must be >= 0, got -1"):
        compose_config("world_model.reward_output_scale=-1")
