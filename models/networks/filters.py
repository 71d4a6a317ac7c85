"""Fixed image filters (Gaussian, Laplacian, Sobel) applied channel by channel.

Shared by the edge-sharpening block, the gradient loss and the low-pass stage-1 target,
so all three agree on what an "edge" and a "coarse image" are.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def laplacian_kernel() -> torch.Tensor:
    """The 4-neighbour Laplacian, 3x3."""
    return torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def sobel_kernels() -> torch.Tensor:
    """Horizontal and vertical Sobel derivatives, shape 2 x 3 x 3."""
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    return torch.stack([gx, gx.t()])


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 2-D Gaussian truncated at 3 sigma (odd size, at least 3x3)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    profile = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    profile /= profile.sum()
    return torch.outer(profile, profile).float()


def filter_channels(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of ``N x C x H x W`` with each of ``kernels`` (K x h x w or h x w).

    Borders are reflected (replicated for images smaller than the kernel) so a flat image
    has no edges at its border. Returns ``N x C*K x H x W``, the K responses of channel 0 first.
    """
    kernels = kernels.reshape(-1, *kernels.shape[-2:]).to(images)
    count, height, width = kernels.shape
    channels = images.shape[1]
    pad_h, pad_w = height // 2, width // 2
    mode = "reflect" if pad_h < images.shape[-2] and pad_w < images.shape[-1] else "replicate"
    padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h), mode=mode)
    weight = kernels.repeat(channels, 1, 1).unsqueeze(1)  # (C*K) x 1 x h x w, grouped by channel
    return F.conv2d(padded, weight, groups=channels)
