"""IRSRGAN's generator (``--netG crdb``): the RRDBNet trunk with "comprehensive" residual dense blocks.

A CRDB runs its three dense blocks D1..D3 along two chains that share their weights:

    main = 0.2 * D3(D2(D1(x)))        the ordinary RRDB branch (before its "+ x")
    t1   = 0.2 * D1(x)                the tap chain scales each block's output by 0.2
    t2   = 0.2 * D2(t1)               before feeding it to the next block
    t3   = 0.2 * D3(t2)
    y    = fuse_1x1(cat[main, t1, t2, t3]) + x

IRSRGAN evaluates D1(x) twice; it is computed once here (numerically identical), so a block
costs five dense-block evaluations instead of six.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.sr_common import RESIDUAL_SCALE, ResidualDenseBlock, RRDBStyleGenerator, init_residual_branch


class CRDB(nn.Module):
    """Comprehensive residual dense block: 3 shared dense blocks, a tap chain and a 1x1 fusion."""

    def __init__(self, nf: int = 64, gc: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(nf, gc)
        self.rdb2 = ResidualDenseBlock(nf, gc)
        self.rdb3 = ResidualDenseBlock(nf, gc)
        self.fuse = nn.Conv2d(4 * nf, nf, 1)
        init_residual_branch([self.fuse])  # IRSRGAN scales every conv's init by 0.1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.rdb1(x)
        main = self.rdb3(self.rdb2(d1)) * RESIDUAL_SCALE
        tap1 = d1 * RESIDUAL_SCALE
        tap2 = self.rdb2(tap1) * RESIDUAL_SCALE
        tap3 = self.rdb3(tap2) * RESIDUAL_SCALE
        return self.fuse(torch.cat((main, tap1, tap2, tap3), 1)) + x


class CRDBNet(RRDBStyleGenerator):
    """The IRSRGAN generator (nf=64, nb=23, gc=32: 17.07 M parameters with 3 channels, 735,872 per CRDB).
    Keys: BasicSR's names plus ``body.{i}.fuse`` for the 1x1 convs."""

    def __init__(
        self, in_nc: int = 1, out_nc: int = 1, nf: int = 64, nb: int = 23, gc: int = 32, scale: int = 4,
        bicubic_residual: bool = False,
    ) -> None:
        super().__init__(in_nc, out_nc, nf, nb, scale, lambda: CRDB(nf, gc), bicubic_residual)
