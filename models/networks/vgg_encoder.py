"""The VGG19 convolution stack as a U-Net encoder, optionally residual ("ResVGG19").

Five groups of 3x3 convolutions (2, 2, 4, 4, 4 convolutions of 64, 128, 256, 512, 512
channels), a 2x2 max-pool before each group but the first, as ``torchvision``'s
``vgg19().features[:36]`` (the last pool excluded). The output of every group is
returned: the first four are skip connections, the fifth the bottleneck at 1/16 scale.

ImageNet weights come only from a local file (:meth:`VGG19Encoder.load_vgg19_weights`);
nothing is downloaded. Random initialisation is torchvision's He initialisation for VGG,
not the generic N(0, 0.02): sixteen plain convolutions initialised that small shrink the
signal by about 1e-8 and leave the encoder untrainable.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn

from models.networks.norm import NormLayer, conv_bias_needed
from util.checkpoint import load_state_dict_file
from util.errors import UserError

VGG19_GROUPS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # (channels, convolutions)
VGG19_CONVOLUTIONS = sum(count for _, count in VGG19_GROUPS)
# torchvision's ImageNet input statistics (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FEATURE_WEIGHT = re.compile(r"^(?:features\.)?(\d+)\.weight$")


class VGGGroup(nn.Module):
    """[pool] -> (conv -> [norm] -> ReLU) x n, plus a shortcut around the convolutions when residual."""

    def __init__(self, in_channels: int, out_channels: int, convolutions: int, norm_layer: NormLayer | None,
                 residual: bool, downsample: bool) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2) if downsample else nn.Identity()
        layers: list[nn.Module] = []
        for index in range(convolutions):
            channels_in = in_channels if index == 0 else out_channels
            bias = norm_layer is None or conv_bias_needed(norm_layer)
            layers.append(nn.Conv2d(channels_in, out_channels, 3, padding=1, bias=bias))
            if norm_layer is not None:
                layers.append(norm_layer(out_channels))
            layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module | None = None
        if residual:
            self.shortcut = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        out = self.body(x)
        return out if self.shortcut is None else out + self.shortcut(x)


class VGG19Encoder(nn.Module):
    """VGG19 features as five groups; ``forward`` returns each group's output.

    ``norm_layer`` adds normalisation after every convolution (as ``vgg19_bn``),
    ``residual`` a shortcut around every group (identity, or a 1x1 projection where the
    width changes), ``width`` scales all channel counts (1.0 is VGG19).
    """

    def __init__(self, in_channels: int, norm_layer: NormLayer | None = None, residual: bool = False,
                 width: float = 1.0) -> None:
        super().__init__()
        self.width = width
        groups, channels = [], in_channels
        for index, (base, convolutions) in enumerate(VGG19_GROUPS):
            out = max(1, round(base * width))
            groups.append(VGGGroup(channels, out, convolutions, norm_layer, residual, downsample=index > 0))
            channels = out
        self.groups = nn.ModuleList(groups)
        self.out_channels = [max(1, round(base * width)) for base, _ in VGG19_GROUPS]
        # Input normalisation, identity until ImageNet weights are loaded; saved with the
        # weights so a trained network keeps the statistics it was trained with.
        self.register_buffer("input_mean", torch.zeros(1, in_channels, 1, 1))
        self.register_buffer("input_std", torch.ones(1, in_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.input_mean) / self.input_std
        features = []
        for group in self.groups:
            x = group(x)
            features.append(x)
        return features

    def reset_own_parameters(self) -> None:
        """He initialisation, as torchvision initialises VGG (called after generic initialisation)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def convolutions(self) -> list[nn.Conv2d]:
        """The sixteen 3x3 convolutions in order (shortcut projections excluded)."""
        return [layer for group in self.groups for layer in group.body if isinstance(layer, nn.Conv2d)]

    @torch.no_grad()
    def load_vgg19_weights(self, path: str | Path) -> None:
        """Copy ImageNet VGG19 convolution weights from a local ``torchvision`` state dict file
        (``vgg19-dcbb9e9d.pth`` or ``vgg19_bn``; the classifier and batch-norm entries are ignored).

        The first convolution is adapted to the input channels (for a grey input the RGB
        filters are summed, which gives the same response as the grey image copied to RGB),
        and the inputs, in [-1, 1], are normalised with ImageNet's statistics.
        """
        if not Path(path).is_file():
            raise UserError(f"--vgg_weights {path} does not exist; give a local torchvision VGG19 state dict file "
                            f"(vgg19-dcbb9e9d.pth), or leave the option out for random initialisation")
        if self.width != 1.0:
            raise UserError(f"--vgg_weights {path}: ImageNet VGG19 weights need the full-width encoder "
                            f"(width 1.0, got {self.width})")
        state = load_state_dict_file(path)
        found = sorted((int(match.group(1)), tensor) for key, tensor in state.items()
                       if (match := _FEATURE_WEIGHT.match(key)) and tensor.dim() == 4)
        convolutions = self.convolutions()
        if len(found) != VGG19_CONVOLUTIONS:
            raise UserError(f"--vgg_weights {path} is not a VGG19 state dict: expected {VGG19_CONVOLUTIONS} "
                            f"convolution weights 'features.N.weight', found {len(found)}")
        for conv, (index, weight) in zip(convolutions, found):
            bias = state.get(f"features.{index}.bias", state.get(f"{index}.bias"))
            if conv is convolutions[0]:
                weight = _adapt_input_channels(weight, conv.in_channels)
            if weight.shape != conv.weight.shape:
                raise UserError(f"--vgg_weights {path}: features.{index}.weight has shape {tuple(weight.shape)}, "
                                f"the encoder expects {tuple(conv.weight.shape)}")
            conv.weight.copy_(weight)
            if conv.bias is not None and bias is not None:
                conv.bias.copy_(bias)
        mean, std = _imagenet_statistics(self.input_mean.shape[1])
        # x in [-1, 1] is (x + 1) / 2 in [0, 1]: (x01 - m) / s == (x - (2m - 1)) / (2s).
        self.input_mean.copy_((2 * mean - 1).view_as(self.input_mean))
        self.input_std.copy_((2 * std).view_as(self.input_std))


def _adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    if channels == weight.shape[1]:
        return weight
    return weight.sum(dim=1, keepdim=True).repeat(1, channels, 1, 1) / channels


def _imagenet_statistics(channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    if channels == 3:
        return mean, std
    return mean.mean().repeat(channels), std.mean().repeat(channels)
