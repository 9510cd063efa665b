"""Categorical, two-hot symlog, bounded normal and Bernoulli pieces (ALGORITHM.md §3.10, §15)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hieros_pl.nn.distributions import (
    TWO_HOT_BINS,
    TWO_HOT_SPACES,
    BoundedNormal,
    OneHotCategorical,
    TwoHot,
    bernoulli_log_prob,
    categorical_entropy,
    categorical_kl,
    two_hot_bins,
    two_hot_encode,
    two_hot_expectation,
    unimix_log_probs,
)
from hieros_pl.nn.symlog import symlog

SYMLOG_VALUES = st.lists(
    st.floats(min_value=-25.0, max_value=25.0, allow_nan=False, width=32), min_size=1, max_size=32
)


def test_bins_are_linspace_minus_20_to_20() -> None:
    bins = two_hot_bins()
    assert bins.shape == (TWO_HOT_BINS,)
    assert bins[0].item() == -20.0 and bins[-1].item() == 20.0
    torch.testing.assert_close(bins[1] - bins[0], torch.tensor(40.0 / 254.0))


@given(SYMLOG_VALUES)
def test_two_hot_round_trip_and_weights(values: list[float]) -> None:
    value = torch.tensor(values)
    bins = two_hot_bins()
    weights = two_hot_encode(value, bins)
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(value))
    assert bool((weights >= 0).all())
    nonzero = weights > 0
    assert bool((nonzero.sum(-1) <= 2).all())
    # The (at most two) occupied bins are neighbours.
    positions = torch.arange(TWO_HOT_BINS).expand_as(weights)
    spread = torch.where(nonzero, positions, -1).amax(-1) - torch.where(
        nonzero, positions, 999
    ).amin(-1)
    assert bool((spread <= 1).all())
    decoded = two_hot_expectation(weights, bins)
    torch.testing.assert_close(decoded, value.clamp(-20.0, 20.0), atol=2e-5, rtol=0)


def test_two_hot_on_a_bin_puts_all_weight_there() -> None:
    bins = two_hot_bins()
    weights = two_hot_encode(bins[[0, 7, 254]], bins)
    assert (
        weights[0, 0].item() == 1.0
        and weights[1, 7].item() == 1.0
        and weights[2, 254].item() == 1.0
    )


@pytest.mark.parametrize("raw", [-1000.0, -3.0, 0.0, 0.37, 42.0, 1e5])
def test_two_hot_symlog_mean_recovers_its_target(raw: float) -> None:
    target = torch.tensor([raw])
    weights = two_hot_encode(symlog(target), two_hot_bins())
    distribution = TwoHot(torch.log(weights + 1e-12))
    torch.testing.assert_close(distribution.mean(), target, rtol=1e-4, atol=1e-4)
    # The log-likelihood is highest at the encoded target.
    assert distribution.log_prob(target) > distribution.log_prob(target + 5.0)


def test_two_hot_log_prob_is_cross_entropy_with_the_encoding() -> None:
    logits = torch.randn(3, TWO_HOT_BINS)
    target = torch.tensor([0.0, -2.5, 7.0])
    expected = (two_hot_encode(symlog(target), two_hot_bins()) * logits.log_softmax(-1)).sum(-1)
    torch.testing.assert_close(TwoHot(logits).log_prob(target), expected)


def test_zero_logits_predict_zero_reward() -> None:
    assert TwoHot(torch.zeros(4, TWO_HOT_BINS)).mean().abs().max().item() < 1e-5


def test_unimix_mixes_with_uniform() -> None:
    logits = torch.tensor([[10.0, -10.0, -10.0, -10.0]])
    probs = unimix_log_probs(logits, 0.01).exp()
    expected = 0.99 * torch.softmax(logits, -1) + 0.01 / 4
    torch.testing.assert_close(probs, expected)
    assert probs.min().item() >= 0.01 / 4 - 1e-7
    torch.testing.assert_close(unimix_log_probs(logits, 0.0), logits.log_softmax(-1))


def test_one_hot_sample_is_one_hot_with_straight_through_gradient() -> None:
    torch.manual_seed(0)
    raw = torch.randn(5, 3, 4, requires_grad=True)
    weights = torch.randn(5, 3, 4)
    distribution = OneHotCategorical(raw, 0.01)
    sample = distribution.sample()
    torch.testing.assert_close(sample.sum(-1), torch.ones(5, 3))
    assert bool(((sample.detach() - sample.detach().round()).abs() < 1e-6).all())
    (sample * weights).sum().backward()
    expected = torch.autograd.grad((OneHotCategorical(raw, 0.01).probs * weights).sum(), raw)[0]
    assert raw.grad is not None and raw.grad.abs().sum() > 0
    torch.testing.assert_close(raw.grad, expected)


def test_one_hot_mode_is_argmax_with_log_prob_gradient() -> None:
    raw = torch.randn(6, 5, requires_grad=True)
    weights = torch.randn(6, 5)
    distribution = OneHotCategorical(raw, 0.01)
    mode = distribution.mode()
    torch.testing.assert_close(mode.detach().argmax(-1), raw.argmax(-1))
    (mode * weights).sum().backward()
    expected = torch.autograd.grad((OneHotCategorical(raw, 0.01).logits * weights).sum(), raw)[0]
    assert raw.grad is not None
    torch.testing.assert_close(raw.grad, expected)


def test_one_hot_sample_frequencies_follow_probs() -> None:
    generator = torch.Generator().manual_seed(0)
    raw = torch.tensor([0.0, 1.0, 2.0]).log()[None].clamp_min(-30.0).expand(20000, 3)
    distribution = OneHotCategorical(raw, 0.0)
    frequencies = distribution.sample(generator).detach().mean(0)
    torch.testing.assert_close(frequencies, torch.tensor([0.0, 1 / 3, 2 / 3]), atol=0.015, rtol=0)


def test_one_hot_log_prob_and_entropy() -> None:
    distribution = OneHotCategorical(torch.zeros(2, 8), 0.01)
    torch.testing.assert_close(distribution.entropy(), torch.full((2,), math.log(8.0)))
    torch.testing.assert_close(
        distribution.log_prob(torch.eye(8)[:2]), torch.full((2,), -math.log(8.0))
    )


@given(st.integers(min_value=0, max_value=10_000))
def test_kl_non_negative_and_zero_for_equal_inputs(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    p = unimix_log_probs(3.0 * torch.randn(4, 6, generator=generator), 0.01)
    q = unimix_log_probs(3.0 * torch.randn(4, 6, generator=generator), 0.01)
    assert bool((categorical_kl(p, q) >= -1e-6).all())
    torch.testing.assert_close(categorical_kl(p, p), torch.zeros(4), atol=1e-6, rtol=0)


def test_kl_known_value() -> None:
    p = torch.tensor([0.5, 0.5]).log()
    q = torch.tensor([0.25, 0.75]).log()
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    torch.testing.assert_close(categorical_kl(p, q), torch.tensor(expected))
    torch.testing.assert_close(
        categorical_entropy(q), torch.tensor(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    )


def test_bounded_normal_matches_torch_normal() -> None:
    raw_mean, raw_std = 3.0 * torch.randn(7, 2), 3.0 * torch.randn(7, 2)
    distribution = BoundedNormal(raw_mean, raw_std, 0.1, 1.0)
    assert bool((distribution.mean.abs() <= 1).all())
    assert bool(((distribution.std >= 0.1) & (distribution.std <= 1.0)).all())
    torch.testing.assert_close(distribution.std, 0.9 * torch.sigmoid(raw_std + 2.0) + 0.1)
    reference = torch.distributions.Normal(torch.tanh(raw_mean), distribution.std)
    action = torch.rand(7, 2) * 2 - 1
    torch.testing.assert_close(distribution.log_prob(action), reference.log_prob(action).sum(-1))
    torch.testing.assert_close(distribution.entropy(), reference.entropy().sum(-1))
    torch.testing.assert_close(distribution.mode(), torch.tanh(raw_mean))


def test_bounded_normal_sample_is_reparameterised() -> None:
    raw_mean = torch.zeros(3, 2, requires_grad=True)
    raw_std = torch.zeros(3, 2, requires_grad=True)
    BoundedNormal(raw_mean, raw_std, 0.1, 1.0).sample().sum().backward()
    assert raw_mean.grad is not None and torch.equal(raw_mean.grad, torch.ones(3, 2))
    assert raw_std.grad is not None and raw_std.grad.abs().sum() > 0


def test_bernoulli_log_prob() -> None:
    logits = torch.tensor([0.0, 2.0, -1.0])
    target = torch.tensor([1.0, 0.0, 1.0])
    expected = torch.tensor(
        [
            math.log(0.5),
            math.log(1 - torch.sigmoid(torch.tensor(2.0)).item()),
            math.log(torch.sigmoid(torch.tensor(-1.0)).item()),
        ]
    )
    torch.testing.assert_close(bernoulli_log_prob(logits, target), expected)


def test_inverse_cdf_sampler_matches_the_multinomial_reference() -> None:
    from scipy.stats import chisquare

    from hieros_pl.nn.distributions import sample_index_inverse_cdf, sample_index_multinomial

    generator = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.5, 0.25, 0.15, 0.07, 0.03])
    draws = 40_000
    rows = probs.expand(draws, -1).contiguous()
    for sampler in (sample_index_inverse_cdf, sample_index_multinomial):
        counts = torch.bincount(sampler(rows, generator), minlength=5).double()
        assert chisquare(counts.numpy(), (probs.double() * draws).numpy()).pvalue > 1e-3
    edge = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert sample_index_inverse_cdf(edge, generator).tolist() == [1, 0, 2]


def test_symexp_bins_are_the_symlog_bins_in_raw_units_mirrored_exactly() -> None:
    bins = two_hot_bins(space="symexp")
    assert bins.shape == (TWO_HOT_BINS,) and bool((bins[1:] > bins[:-1]).all())
    assert bins[TWO_HOT_BINS // 2].item() == 0.0
    torch.testing.assert_close(bins, -bins.flip(0), rtol=0, atol=0)
    torch.testing.assert_close(symlog(bins), two_hot_bins(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("raw", [-1000.0, -3.0, 0.0, 0.37, 21.0, 1e5])
def test_two_hot_symexp_mean_recovers_its_target(raw: float) -> None:
    target = torch.tensor([raw])
    weights = two_hot_encode(target, two_hot_bins(space="symexp"))
    distribution = TwoHot(torch.log(weights + 1e-12), "symexp")
    torch.testing.assert_close(distribution.mean(), target, rtol=1e-4, atol=1e-4)
    assert distribution.log_prob(target) > distribution.log_prob(target + 5.0)


def test_symexp_mean_is_the_expected_value_and_symlog_mean_lies_below_it() -> None:
    # A 3 % chance of reward 21 (a kill in Assault), else 0: the expected reward is 0.63.
    rare = torch.tensor([0.0, 21.0])
    for space in TWO_HOT_SPACES:
        encoded = symlog(rare) if space == "symlog" else rare
        weights = two_hot_encode(encoded, two_hot_bins(space=space))
        mixture = 0.97 * weights[0] + 0.03 * weights[1]
        mean = TwoHot(torch.log(mixture + 1e-12), space).mean().item()
        if space == "symexp":
            assert mean == pytest.approx(0.63, rel=1e-3)
        else:  # symexp(0.03 · symlog(21)) = 0.097
            assert mean == pytest.approx(math.expm1(0.03 * math.log1p(21.0)), rel=1e-3)


def test_zero_logits_predict_exactly_zero_over_symexp_bins() -> None:
    # uniform probabilities over bins up to ±4.9e8: the mirrored sum cancels exactly
    assert TwoHot(torch.zeros(4, TWO_HOT_BINS), "symexp").mean().abs().max().item() == 0.0


def test_unknown_two_hot_space_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'symsqrt'.*symlog.*symexp"):
        TwoHot(torch.zeros(2, TWO_HOT_BINS), "symsqrt")
