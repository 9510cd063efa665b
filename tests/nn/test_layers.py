"""MLP, conv encoder/decoder and initialisers (ALGORITHM.md §3.9, §7.2)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hieros_pl.nn.layers import (
    MLP,
    TRUNCATED_NORMAL_STD,
    ChannelLayerNorm,
    ConvDecoder,
    ConvEncoder,
    conv_stages,
    count_parameters,
    init_hidden_,
    init_output_,
    same_padding,
)
from hieros_pl.nn.symlog import symlog


@pytest.mark.parametrize(
    ("size", "expected"),
    [(64, (1, 1)), (16, (1, 1)), (6, (1, 1)), (5, (1, 2)), (7, (1, 2)), (1, (1, 2))],
)
def test_same_padding_matches_tensorflow_rule(size: int, expected: tuple[int, int]) -> None:
    assert same_padding(size, 4, 2) == expected


@pytest.mark.parametrize("image_size", [16, 64])
def test_conv_encoder_shapes(image_size: int) -> None:
    encoder = ConvEncoder(image_size, channels=3, depth=4, minres=4)
    stages = int(math.log2(image_size // 4))
    assert encoder.out_dim == 4 * 2 ** (stages - 1) * 16
    obs = torch.randint(0, 256, (2, 3, image_size, image_size, 3), dtype=torch.uint8)
    embed = encoder(obs)
    assert embed.shape == (2, 3, encoder.out_dim) and embed.dtype == torch.float32
    assert bool(torch.isfinite(embed).all())


def _conv_weights(encoder: ConvEncoder) -> list[torch.Tensor]:
    return [module.weight for module in encoder.modules() if isinstance(module, nn.Conv2d)]


def test_conv_encoder_weights_stay_channels_last_through_training_and_loading() -> None:
    # The convs see channels-last inputs; channels-first weights would be reordered per call.
    encoder = ConvEncoder(16, channels=3, depth=4, minres=4)
    reference = ConvEncoder(16, channels=3, depth=4, minres=4)
    reference.load_state_dict(encoder.state_dict())
    obs = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        encoder(obs).square().mean().backward()
        optimizer.step()
    encoder.load_state_dict(ConvEncoder(16, channels=3, depth=4, minres=4).state_dict())
    for weight in _conv_weights(encoder):
        assert weight.is_contiguous(memory_format=torch.channels_last)
        assert not weight.is_contiguous()
    # The layout changes speed only: channels-first weights give the same embedding.
    channels_first = ConvEncoder(16, channels=3, depth=4, minres=4)
    channels_first.load_state_dict(reference.state_dict())
    for weight in _conv_weights(channels_first):
        weight.data = weight.data.contiguous()
    torch.testing.assert_close(channels_first(obs), reference(obs), rtol=1e-5, atol=1e-5)


def test_conv_encoder_halves_down_to_a_non_power_of_two_minres() -> None:
    encoder = ConvEncoder(12, channels=1, depth=2, minres=3)
    embed = encoder(torch.zeros(5, 12, 12, 1, dtype=torch.uint8))
    assert embed.shape == (5, encoder.out_dim) == (5, 4 * 9)


@pytest.mark.parametrize("image_size", [16, 64])
def test_conv_decoder_shapes(image_size: int) -> None:
    decoder = ConvDecoder(feat_dim=10, image_size=image_size, channels=3, depth=4, minres=4)
    image = decoder(torch.randn(2, 3, 10))
    assert image.shape == (2, 3, image_size, image_size, 3) and image.dtype == torch.float32


def test_conv_stages_rejects_non_power_of_two() -> None:
    assert conv_stages(64, 4) == 4
    with pytest.raises(ValueError, match="cnn_minres"):
        conv_stages(48, 4)


def test_paper_size_encoder_and_decoder_parameter_counts() -> None:
    # ALGORITHM.md §13: CNN encoder ≈ 0.39 M, CNN decoder ≈ 4.32 M at 64×64×3, depth 24.
    assert count_parameters(ConvEncoder(64, 3, 24, 4)) == 388_944
    assert count_parameters(ConvDecoder(1280, 64, 3, 24, 4)) == 4_323_795


def test_hidden_init_std_and_zero_bias() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(400, 600)
    init_hidden_(layer)
    expected = math.sqrt(1.0 / 500.0) / TRUNCATED_NORMAL_STD
    assert layer.weight.std().item() == pytest.approx(expected, rel=0.02)
    assert layer.bias.abs().max().item() == 0.0


def test_hidden_init_conv_uses_kernel_area() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 64, 4)
    init_hidden_(conv)
    expected = math.sqrt(1.0 / ((32 + 64) * 16 / 2)) / TRUNCATED_NORMAL_STD
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.03)


def test_output_init_bounds_and_zero_scale() -> None:
    layer = nn.Linear(300, 100)
    init_output_(layer, 1.0)
    limit = math.sqrt(3.0 / 200.0)
    assert layer.weight.abs().max().item() <= limit
    assert layer.weight.abs().max().item() > 0.9 * limit
    init_output_(layer, 0.0)
    assert layer.weight.abs().max().item() == 0.0 and layer.bias.abs().max().item() == 0.0


def test_mlp_symlog_inputs_equals_symlog_then_mlp() -> None:
    plain = MLP(5, 8, 2, out_dim=3)
    squashed = MLP(5, 8, 2, out_dim=3, symlog_inputs=True)
    squashed.load_state_dict(plain.state_dict())
    x = 50.0 * torch.randn(4, 5)
    torch.testing.assert_close(squashed(x), plain(symlog(x)))
    assert not torch.allclose(squashed(x), plain(x))


def test_mlp_structure_and_zero_output() -> None:
    trunk = MLP(5, 8, 2, out_dim=None)
    assert trunk.out_dim == 8 and trunk(torch.randn(3, 5)).shape == (3, 8)
    linears = [m for m in trunk.modules() if isinstance(m, nn.Linear)]
    assert [lin.bias is None for lin in linears] == [True, True]
    norms = [m for m in trunk.modules() if isinstance(m, nn.LayerNorm)]
    assert all(norm.eps == 1e-3 for norm in norms)
    head = MLP(5, 8, 2, out_dim=7, output_scale=0.0)
    assert torch.equal(head(torch.randn(3, 5)), torch.zeros(3, 7))


def test_channel_layer_norm_normalises_over_channels() -> None:
    norm = ChannelLayerNorm(6, eps=1e-3)
    out = norm(5.0 + 3.0 * torch.randn(2, 6, 4, 4))
    torch.testing.assert_close(out.mean(1), torch.zeros(2, 4, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(1, unbiased=False), torch.ones(2, 4, 4), atol=1e-3, rtol=0)
