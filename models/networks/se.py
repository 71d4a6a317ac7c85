"""Squeeze-and-excitation channel attention (Hu et al., 2018)."""
from __future__ import annotations

import torch
import torch.nn as nn


class SqueezeExcitation(nn.Module):
    """Rescale channels by weights computed from their global averages:
    GAP -> FC(C -> C/ratio) -> ReLU -> FC(C/ratio -> C) -> sigmoid -> scale.

    DoubleU-Net uses ``ratio=8`` (SENet's default is 16) and FC layers with bias, as its
    PyTorch port does.
    """

    def __init__(self, channels: int, ratio: int = 8) -> None:
        super().__init__()
        reduced = max(1, channels // ratio)  # narrow test-sized networks keep one hidden unit
        self.excitation = nn.Sequential(
            nn.Linear(channels, reduced), nn.ReLU(inplace=True), nn.Linear(reduced, channels), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.excitation(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]
