"""Gradient (edge) L1 loss: L1 distance between the edge maps of output and target."""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.filters import filter_channels, laplacian_kernel, sobel_kernels
from util.errors import UserError

EDGE_OPERATORS = ("sobel", "laplacian")


class EdgeL1Loss(nn.Module):
    """``mean |E(output) - E(target)|`` with E the Sobel derivatives (both directions) or
    the Laplacian of every channel. Penalises blurred or misplaced edges, which plain L1
    tolerates."""

    def __init__(self, operator: str = "sobel") -> None:
        super().__init__()
        if operator not in EDGE_OPERATORS:
            raise UserError(f"--edge_operator must be one of {', '.join(EDGE_OPERATORS)}, got {operator!r}")
        self.register_buffer("kernels", sobel_kernels() if operator == "sobel" else laplacian_kernel(),
                             persistent=False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (filter_channels(output, self.kernels) - filter_channels(target, self.kernels)).abs().mean()
