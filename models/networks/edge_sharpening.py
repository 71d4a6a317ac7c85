"""Edge sharpening: a learnable high-frequency branch added to the features (residual).

The cascade paper names an "Edge Sharpening" block before DoubleU-Net's second output
without describing it. Here a fixed Laplacian extracts each channel's high frequencies
(like an unsharp mask) and two small convolutions learn how much of them to add back
where, so the block starts close to the identity and can only add detail.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.filters import filter_channels, laplacian_kernel


class EdgeSharpening(nn.Module):
    """``x + conv(relu(conv(laplacian(x))))`` with ``channels`` in and out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", laplacian_kernel(), persistent=False)
        self.detail = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.detail(filter_channels(x, self.kernel))
