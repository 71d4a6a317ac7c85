"""The VGG-style discriminator of ESRGAN/IRSRGAN (``--netD vgg``), for patches of any size.

Ten convolutions (five of them 4x4 stride 2) take a 128x128 patch to 4x4 features; the
original then flattens into ``Linear(8*ndf*16, 100)``, which fails for any other size. An
adaptive average pool to 4x4 before the classifier keeps that exact network at 128x128
(pooling a 4x4 map to 4x4 is the identity) and accepts any patch of at least 32x32.
One logit per image (relativistic GANs compare image-level scores).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.norm import NormLayer, conv_bias_needed

_POOLED_SIZE = 4
_STRIDED_CONVS = 5


class VGGStyleDiscriminator(nn.Module):
    """3x3 conv + LeakyReLU, then five stages of [3x3 stride-1 conv] + 4x4 stride-2 conv, each
    followed by the norm layer and LeakyReLU(0.2); widths ndf x (1, 2, 4, 8, 8)."""

    min_size = 2**_STRIDED_CONVS

    def __init__(self, input_nc: int, ndf: int = 64, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        use_bias = conv_bias_needed(norm_layer)

        def conv_norm_act(cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel, stride, padding=1, bias=use_bias), norm_layer(cout),
                    nn.LeakyReLU(0.2, True)]

        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 3, 1, 1), nn.LeakyReLU(0.2, True)]
        channels = ndf
        for stage, width in enumerate(ndf * m for m in (1, 2, 4, 8, 8)):
            if stage > 0:
                layers += conv_norm_act(channels, width, 3, 1)
            layers += conv_norm_act(width, width, 4, 2)
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(_POOLED_SIZE)
        self.classifier = nn.Sequential(nn.Linear(channels * _POOLED_SIZE**2, 100), nn.LeakyReLU(0.2, True),
                                        nn.Linear(100, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"the VGG-style discriminator needs patches of at least {self.min_size}x{self.min_size}, "
                             f"got {tuple(x.shape[-2:])}")
        return self.classifier(self.pool(self.features(x)).flatten(1))
