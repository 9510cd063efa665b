"""Subgoal autoencoder (ALGORITHM.md §5.6, §12 D7)."""

from __future__ import annotations

import math

import pytest
import torch

from hieros_pl.hierarchy.subgoal import SubgoalAutoencoder
from hieros_pl.nn.symlog import symlog

DETER, GROUPS, CLASSES = 16, 3, 4


def autoencoder(output_layers: bool = True, kl_scale: float = 0.5) -> SubgoalAutoencoder:
    return SubgoalAutoencoder(
        deter_dim=DETER,
        groups=GROUPS,
        classes=CLASSES,
        layers=2,
        kl_scale=kl_scale,
        unimix=0.01,
        output_layers=output_layers,
    )


def test_loss_keys_equal_scale_keys() -> None:
    model = autoencoder(kl_scale=0.25)
    losses = model.loss(torch.randn(5, DETER))
    assert losses.keys() == model.scales().keys() == {"reconstruction", "kl"}
    assert model.scales() == {"reconstruction": 1.0, "kl": 0.25}


def test_loss_values() -> None:
    model = autoencoder()
    deter = 5.0 * torch.randn(6, 2, DETER)
    losses = model.loss(deter)
    expected_reconstruction = ((symlog(deter) - model.reconstruct(deter)) ** 2).mean()
    torch.testing.assert_close(losses["reconstruction"], expected_reconstruction)
    logits = model.encoder(symlog(deter)).reshape(6, 2, GROUPS, CLASSES)
    probs = 0.99 * torch.softmax(logits, -1) + 0.01 / CLASSES
    expected_kl = (probs * torch.log(probs * CLASSES)).sum(-1).mean()
    torch.testing.assert_close(losses["kl"], expected_kl)


def test_code_is_one_hot_per_group_with_straight_through_gradient() -> None:
    model = autoencoder()
    code = model.encode(torch.randn(7, DETER))
    assert code.shape == (7, GROUPS * CLASSES)
    grouped = code.detach().reshape(7, GROUPS, CLASSES)
    torch.testing.assert_close(grouped.sum(-1), torch.ones(7, GROUPS))
    torch.testing.assert_close(grouped, grouped.round(), rtol=0.0, atol=1e-6)  # straight-through
    assert set(grouped.round().unique().tolist()) <= {0.0, 1.0}
    model.loss(torch.randn(7, DETER))["reconstruction"].backward()
    first_encoder_layer = model.encoder[0]
    assert isinstance(first_encoder_layer, torch.nn.Linear)
    assert first_encoder_layer.weight.grad is not None
    assert first_encoder_layer.weight.grad.abs().sum() > 0


def test_decode_shape_and_soft_codes() -> None:
    model = autoencoder()
    soft = torch.softmax(torch.randn(2, 5, GROUPS, CLASSES), -1).flatten(-2)
    assert model.decode(soft).shape == (2, 5, DETER)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def test_output_layer_switch_changes_parameter_set() -> None:
    fixed, original = autoencoder(output_layers=True), autoencoder(output_layers=False)
    code_dim = GROUPS * CLASSES
    extra = (code_dim * code_dim + code_dim) + (DETER * DETER + DETER)
    assert parameter_count(fixed) - parameter_count(original) == extra
    assert set(dict(original.named_parameters())) < set(dict(fixed.named_parameters()))


def test_original_reconstruction_bounded_below_by_gelu() -> None:
    # D7: without an output layer the reconstruction ends in LN + GELU (min ≈ −0.17) and cannot
    # reach symlog(h) far below zero.
    model = autoencoder(output_layers=False)
    reconstruction = model.reconstruct(-100.0 * torch.rand(50, DETER))
    assert reconstruction.min() >= -0.17
    assert model.loss(-100.0 * torch.ones(4, DETER))["reconstruction"] > (math.log(101) - 0.17) ** 2


@pytest.mark.parametrize("output_layers", [True, False])
def test_loss_input_is_detached(output_layers: bool) -> None:
    deter = torch.randn(3, DETER, requires_grad=True)
    losses = autoencoder(output_layers).loss(deter)
    (losses["reconstruction"] + losses["kl"]).backward()
    assert deter.grad is None
