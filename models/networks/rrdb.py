"""ESRGAN's generator (``--netG rrdb``): residual-in-residual dense blocks (Wang et al., 2018)."""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.sr_common import RESIDUAL_SCALE, ResidualDenseBlock, RRDBStyleGenerator


class RRDB(nn.Module):
    """Three dense blocks in a chain with a scaled residual: ``0.2 * D3(D2(D1(x))) + x``."""

    def __init__(self, nf: int = 64, gc: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(nf, gc)
        self.rdb2 = ResidualDenseBlock(nf, gc)
        self.rdb3 = ResidualDenseBlock(nf, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


class RRDBNet(RRDBStyleGenerator):
    """BasicSR's ``RRDBNet`` with the same state-dict keys (nf=64, nb=23, gc=32: 16.7 M parameters)."""

    def __init__(
        self, in_nc: int = 1, out_nc: int = 1, nf: int = 64, nb: int = 23, gc: int = 32, scale: int = 4,
        bicubic_residual: bool = False,
    ) -> None:
        super().__init__(in_nc, out_nc, nf, nb, scale, lambda: RRDB(nf, gc), bicubic_residual)
