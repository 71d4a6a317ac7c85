"""The ResNet generator (``resnet_9blocks``, ``resnet_6blocks``) with upstream's key layout."""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.norm import NormLayer, conv_bias_needed


class ResnetBlock(nn.Module):
    """conv-norm-ReLU-[dropout]-conv-norm with reflection padding and an identity skip."""

    def __init__(self, dim: int, norm_layer: NormLayer, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim),
                                   nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Two stride-2 downsamplings, ``n_blocks`` residual blocks, two upsamplings; input
    sizes must be a multiple of 4."""

    size_multiple = 4

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        norm_layer: NormLayer = nn.BatchNorm2d,
        use_dropout: bool = False,
        n_blocks: int = 9,
    ) -> None:
        super().__init__()
        use_bias = conv_bias_needed(norm_layer)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias),
                                   norm_layer(ngf), nn.ReLU(True)]
        for level in range(2):
            channels = ngf * 2**level
            layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=use_bias),
                       norm_layer(channels * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for level in range(2, 0, -1):
            channels = ngf * 2**level
            layers += [nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=use_bias),
                       norm_layer(channels // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
