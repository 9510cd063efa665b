"""MLPs, the conv encoder/decoder and the DreamerV3-style initialisers (ALGORITHM.md §3.9, §7.2).

Every hidden unit is [Linear/Conv (no bias) → LayerNorm (eps 1e-3) → SiLU]. Hidden weights are
truncated-normal with std √(1/fan_avg)/0.87962566; output layers are uniform in ±√(3·scale/fan_avg).
Images enter the encoder as uint8 channels-last and leave the decoder as float32 channels-last.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hieros_pl.nn.symlog import symlog

NORM_EPS = 1e-3
# The original divides by the std of a [−2, 2]-truncated standard normal (§7.2).
TRUNCATED_NORMAL_STD = 0.87962566
CONV_KERNEL = 4
CONV_STRIDE = 2

_WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def fan_avg(weight: Tensor) -> float:
    """(fan_in + fan_out)/2, both times the kernel area; the same for conv and transposed conv."""
    # weight: [out, in] | [out, in, k, k] | [in, out, k, k]
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return (weight.shape[0] + weight.shape[1]) * receptive / 2.0


def init_hidden_(module: nn.Module) -> None:
    """Truncated-normal (±2) hidden weights, zero biases, unit LayerNorms, in every submodule."""
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED):
            std = math.sqrt(1.0 / fan_avg(layer.weight)) / TRUNCATED_NORMAL_STD
            nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-2.0, b=2.0)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.LayerNorm) and layer.elementwise_affine:
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


def init_output_(layer: nn.Linear, scale: float) -> None:
    """Uniform in ±√(3·scale/fan_avg), zero bias; scale 0 gives an all-zero output layer."""
    limit = math.sqrt(3.0 * scale / fan_avg(layer.weight))
    nn.init.uniform_(layer.weight, -limit, limit)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "same" padding (before, after), total max((⌈size/stride⌉ − 1)·stride + kernel − size, 0)
    split floor/ceil."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_stages(image_size: int, minres: int) -> int:
    """Stride-2 stages from image_size down to minres; raises unless the ratio is a power of 2."""
    stages = round(math.log2(image_size / minres)) if image_size >= minres > 0 else -1
    if stages < 1 or minres * 2**stages != image_size:
        raise ValueError(
            f"image size {image_size} / cnn_minres {minres} must be a power of 2 of at least 2"
        )
    return stages


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a channels-first image."""

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, C, Himg, Wimg] -> [N, C, Himg, Wimg]
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MLP(nn.Module):
    """`layers` × [Linear (no bias) → LN → SiLU] of width `units`, plus an optional output Linear.

    out_dim=None returns the last hidden layer (the embedding of an MLP encoder). The output
    layer has a bias and the uniform initialisation with `output_scale` (0 = zero output).
    """

    def __init__(
        self,
        in_dim: int,
        units: int,
        layers: int,
        out_dim: int | None,
        symlog_inputs: bool = False,
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.symlog_inputs = symlog_inputs
        trunk: list[nn.Module] = []
        width = in_dim
        for _ in range(layers):
            trunk += [nn.Linear(width, units, bias=False), nn.LayerNorm(units, eps=NORM_EPS)]
            trunk.append(nn.SiLU())
            width = units
        self.trunk = nn.Sequential(*trunk)
        init_hidden_(self.trunk)
        self.head: nn.Linear | None = None
        if out_dim is not None:
            self.head = nn.Linear(width, out_dim)
            init_output_(self.head, output_scale)
        self.out_dim = width if out_dim is None else out_dim

    def forward(self, x: Tensor) -> Tensor:
        # x: [..., in_dim] float32 -> [..., out_dim] float32
        hidden = self.trunk(symlog(x) if self.symlog_inputs else x)
        return hidden if self.head is None else self.head(hidden)


def _conv_unit(in_channels: int, out_channels: int, size: int) -> list[nn.Module]:
    """Stride-2 conv (TF same padding, no bias) → channel LN → SiLU at input size `size`."""
    before, after = same_padding(size, CONV_KERNEL, CONV_STRIDE)
    # `conv_stages` only admits even sizes, where TF "same" padding is symmetric.
    assert before == after, f"asymmetric padding at size {size}"
    conv = nn.Conv2d(in_channels, out_channels, CONV_KERNEL, CONV_STRIDE, before, bias=False)
    return [conv, ChannelLayerNorm(out_channels, eps=NORM_EPS), nn.SiLU()]


class ConvEncoder(nn.Module):
    """Stride-2 convs from image_size down to minres, channels depth·2^i (ALGORITHM.md §3.9).

    Input uint8 [..., Himg, Wimg, C] is scaled to x/255 − 0.5; output is the channel-major
    flatten of the last feature map, `out_dim` = depth·2^(stages−1)·minres².
    """

    def __init__(self, image_size: int, channels: int, depth: int, minres: int) -> None:
        super().__init__()
        stages = conv_stages(image_size, minres)
        self.image_size = image_size
        self.channels = channels
        units: list[nn.Module] = []
        in_channels, size = channels, image_size
        for index in range(stages):
            out_channels = depth * 2**index
            units += _conv_unit(in_channels, out_channels, size)
            in_channels, size = out_channels, size // 2
        self.convs = nn.Sequential(*units)
        init_hidden_(self.convs)
        # Every conv sees a channels-last input (the permuted images, then each
        # ChannelLayerNorm's output); with channels-first weights oneDNN reorders the weight on
        # every call. Channels-last weights: -8 % on the paper-size depth-1 policy step, depth 3
        # unchanged (README, Acting and evaluation speed). Optimisers and load_state_dict keep it.
        for conv in self.convs.modules():
            if isinstance(conv, nn.Conv2d):
                conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
        self.out_dim = in_channels * minres * minres

    def forward(self, obs: Tensor) -> Tensor:
        # obs: [..., Himg, Wimg, C] uint8 -> embed: [..., out_dim] float32
        batch_shape = obs.shape[:-3]
        assert obs.shape[-3:] == (self.image_size, self.image_size, self.channels), (
            f"obs {tuple(obs.shape)}"
        )
        images = obs.reshape(-1, *obs.shape[-3:]).float() / 255.0 - 0.5
        features = self.convs(images.permute(0, 3, 1, 2))
        return features.flatten(1).reshape(*batch_shape, self.out_dim)


class ConvDecoder(nn.Module):
    """Linear to a [minres, minres, top] map, then stride-2 transposed convs up to the image.

    Hidden transposed convs have no bias and are followed by channel LN and SiLU; the input
    Linear and the final transposed conv (with bias) keep PyTorch's default initialisation, as
    in the original (§7.2). The output is the mean image in the preprocessed range x/255 − 0.5.
    """

    def __init__(
        self, feat_dim: int, image_size: int, channels: int, depth: int, minres: int
    ) -> None:
        super().__init__()
        stages = conv_stages(image_size, minres)
        self.minres = minres
        self.top_channels = depth * 2 ** (stages - 1)
        self.project = nn.Linear(feat_dim, minres * minres * self.top_channels)
        units: list[nn.Module] = []
        in_channels = self.top_channels
        for _ in range(stages - 1):
            out_channels = in_channels // 2
            units.append(
                nn.ConvTranspose2d(
                    in_channels, out_channels, CONV_KERNEL, CONV_STRIDE, 1, bias=False
                )
            )
            units += [ChannelLayerNorm(out_channels, eps=NORM_EPS), nn.SiLU()]
            in_channels = out_channels
        self.hidden = nn.Sequential(*units)
        init_hidden_(self.hidden)
        self.output = nn.ConvTranspose2d(in_channels, channels, CONV_KERNEL, CONV_STRIDE, 1)

    def forward(self, feature: Tensor) -> Tensor:
        # feature: [..., F] float32 -> image: [..., Himg, Wimg, C] float32
        batch_shape = feature.shape[:-1]
        grid = self.project(feature.reshape(-1, feature.shape[-1]))
        # Read as channels-last [minres, minres, top] like the original (matters only for porting).
        grid = grid.reshape(-1, self.minres, self.minres, self.top_channels).permute(0, 3, 1, 2)
        image = self.output(self.hidden(grid)).permute(0, 2, 3, 1)
        return image.reshape(*batch_shape, *image.shape[1:])


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars (a complex parameter stored as a real pair counts twice)."""
    return sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)
