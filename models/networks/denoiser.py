"""Stage-3 refinement: a DnCNN-style residual denoiser (Zhang et al., 2017).

The cascade paper names a "noise reduction network" without describing it; DnCNN's
residual formulation is our choice. The network predicts the noise of its input image
and subtracts it before the output's tanh (:func:`add_before_tanh`), so the output stays
in (-1, 1) and a zero noise estimate is exactly the identity.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.norm import NormLayer, conv_bias_needed
from models.networks.tanh_residual import add_before_tanh


class ResidualDenoiser(nn.Module):
    """``tanh(atanh(x) - residual_scale * noise(x))`` with ``noise`` a plain conv stack:
    conv+ReLU, ``depth - 2`` x (conv+norm+ReLU), conv."""

    size_multiple = 1

    def __init__(self, channels: int, features: int = 64, depth: int = 17, norm_layer: NormLayer = nn.BatchNorm2d,
                 residual_scale: float = 1.0) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"the denoiser needs at least 2 layers, got {depth}")
        use_bias = conv_bias_needed(norm_layer)
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=use_bias), norm_layer(features),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.noise = nn.Sequential(*layers)
        self.residual_scale = residual_scale

    def reset_own_parameters(self) -> None:
        """Zero the last layer (called after generic initialisation): the denoiser starts as
        the identity instead of adding the noise of a random residual to its input."""
        nn.init.zeros_(self.noise[-1].weight)
        nn.init.zeros_(self.noise[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return add_before_tanh(x, -self.residual_scale * self.noise(x))
