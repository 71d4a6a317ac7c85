"""PatchGAN discriminators (``basic``/``n_layers``) and the 1x1 ``pixel`` discriminator."""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.norm import NormLayer, conv_bias_needed


class NLayerDiscriminator(nn.Module):
    """Classifies overlapping patches as real/fake; ``n_layers=3`` is the 70x70 PatchGAN
    (a 256x256 input gives a 30x30 map of logits)."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        use_bias = conv_bias_needed(norm_layer)
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        multiplier = 1
        for level in range(1, n_layers + 1):
            previous, multiplier = multiplier, min(2**level, 8)
            stride = 2 if level < n_layers else 1
            layers += [nn.Conv2d(ndf * previous, ndf * multiplier, 4, stride=stride, padding=1, bias=use_bias),
                       norm_layer(ndf * multiplier), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * multiplier, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """Classifies every pixel on its own (1x1 convolutions)."""

    def __init__(self, input_nc: int, ndf: int = 64, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        use_bias = conv_bias_needed(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=use_bias), norm_layer(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
