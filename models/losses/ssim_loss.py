"""Differentiable SSIM loss ``1 - SSIM`` (Wang et al., 2004), Gaussian window."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.networks.filters import gaussian_kernel

_K1, _K2 = 0.01, 0.03


class SSIMLoss(nn.Module):
    """``1 - mean SSIM`` over the valid region, on images in [-1, 1] (dynamic range 2).

    Same definition as the evaluation SSIM (11x11 Gaussian window of sigma 1.5, population
    covariances), so minimising it optimises the reported metric directly. SSIM's luminance
    term is not shift-invariant, so the images are moved to [0, 2] first, where it equals the
    SSIM of the saved [0, 255] images.
    """

    def __init__(self, sigma: float = 1.5, data_range: float = 2.0) -> None:
        super().__init__()
        self.register_buffer("window", gaussian_kernel(sigma), persistent=False)  # 11x11 for sigma 1.5
        self.c1, self.c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        output, target = output + 1, target + 1
        channels = output.shape[1]
        weight = self.window.to(output).expand(channels, 1, *self.window.shape)

        def blur(x: torch.Tensor) -> torch.Tensor:
            return F.conv2d(x, weight, groups=channels)

        mu_x, mu_y = blur(output), blur(target)
        var_x = blur(output * output) - mu_x**2
        var_y = blur(target * target) - mu_y**2
        cov = blur(output * target) - mu_x * mu_y
        ssim = ((2 * mu_x * mu_y + self.c1) * (2 * cov + self.c2)) / (
            (mu_x**2 + mu_y**2 + self.c1) * (var_x + var_y + self.c2))
        return 1.0 - ssim.mean()
