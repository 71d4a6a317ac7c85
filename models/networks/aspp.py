"""Atrous spatial pyramid pooling (DeepLabv3), in DoubleU-Net's configuration."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.networks.norm import NormLayer, conv_bias_needed

# How the image-level branch pools: "global" as DeepLabv3 and DoubleU-Net's Keras code,
# "grid2" (a 2x2 average grid) as DoubleU-Net's PyTorch port.
IMAGE_POOLING = ("global", "grid2")


def conv_norm_relu(in_channels: int, out_channels: int, kernel_size: int, norm_layer: NormLayer,
                   dilation: int = 1) -> nn.Sequential:
    """Convolution ('same' padding) -> normalisation -> ReLU."""
    padding = dilation * (kernel_size // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                  bias=conv_bias_needed(norm_layer)),
        norm_layer(out_channels), nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Five parallel branches, ``out_channels`` each: image pooling, a 1x1 convolution and 3x3
    convolutions at each dilation ``rates``; concatenated and fused by a 1x1 convolution.

    With ``image_pooling="global"`` the pooled branch has one value per channel, where
    batch normalisation is undefined for a batch of one image; that branch then uses a
    convolution with bias and no normalisation (DeepLabv3's own code trains with large
    batches). ``"grid2"`` pools to 2x2 and keeps the normalisation, as the PyTorch port.
    """

    def __init__(self, in_channels: int, out_channels: int = 64, rates: Sequence[int] = (6, 12, 18),
                 norm_layer: NormLayer = nn.BatchNorm2d, image_pooling: str = "global") -> None:
        super().__init__()
        if image_pooling not in IMAGE_POOLING:
            raise ValueError(f"image_pooling must be one of {IMAGE_POOLING}, got {image_pooling!r}")
        if image_pooling == "global":
            self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1),
                                         nn.ReLU(inplace=True))
        else:
            self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(2),
                                         *conv_norm_relu(in_channels, out_channels, 1, norm_layer))
        self.branches = nn.ModuleList(
            [conv_norm_relu(in_channels, out_channels, 1, norm_layer)]
            + [conv_norm_relu(in_channels, out_channels, 3, norm_layer, dilation=rate) for rate in rates]
        )
        self.project = conv_norm_relu(out_channels * (len(rates) + 2), out_channels, 1, norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.pooling(x), size=x.shape[-2:], mode="bilinear", align_corners=True)
        return self.project(torch.cat([pooled, *(branch(x) for branch in self.branches)], dim=1))
