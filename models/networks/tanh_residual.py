"""Residual refinement of images in tanh range."""
from __future__ import annotations

import torch

# Images are clamped this far inside (-1, 1) before atanh, which is infinite at +-1.
_ATANH_MARGIN = 1e-3


def add_before_tanh(image: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``tanh(atanh(image) + residual)``: the result stays in (-1, 1), and a zero residual
    returns the image itself (no range compression, gradients everywhere)."""
    return torch.tanh(torch.atanh(image.clamp(-1.0 + _ATANH_MARGIN, 1.0 - _ATANH_MARGIN)) + residual)
