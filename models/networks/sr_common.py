"""Shared parts of the RRDB-family super-resolution generators (ESRGAN's RRDBNet, IRSRGAN's CRDB net).

Both generators are ``conv_first -> nb blocks -> conv_body (+ long skip) -> nearest-neighbour
upsampling convs -> conv_hr -> conv_last``; they differ only in the block. Module names
follow BasicSR's ``RRDBNet`` (``conv_first``, ``body.{i}.rdb{j}.conv{k}``, ``conv_body``,
``conv_up{n}``, ``conv_hr``, ``conv_last``), so BasicSR checkpoints load without renaming.
The output is linear (no tanh): images live in [-1, 1] and are clamped only when saved.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

# ESRGAN's residual scaling: each dense block adds 0.2 x its output to its input.
RESIDUAL_SCALE = 0.2
SUPPORTED_SCALES = (2, 3, 4)
_NEGATIVE_SLOPE = 0.2


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, _NEGATIVE_SLOPE)


def init_residual_branch(convs: list[nn.Conv2d], scale: float = 0.1) -> None:
    """Kaiming-normal weights x ``scale`` and zero biases: a block whose branch starts small is
    close to the identity, which keeps deep RRDB trunks trainable (ESRGAN's initialisation)."""
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
        conv.weight.data.mul_(scale)
        nn.init.zeros_(conv.bias)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs (growth ``gc``); returns ``0.2 * conv5(...) + x``."""

    def __init__(self, nf: int = 64, gc: int = 32) -> None:
        super().__init__()
        self.conv_names = tuple(f"conv{k}" for k in range(1, 6))
        for k, name in enumerate(self.conv_names):
            out_channels = gc if k < 4 else nf
            self.add_module(name, nn.Conv2d(nf + k * gc, out_channels, 3, padding=1))
        init_residual_branch([getattr(self, name) for name in self.conv_names])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for name in self.conv_names[:-1]:
            features.append(lrelu(getattr(self, name)(torch.cat(features, 1))))
        return getattr(self, self.conv_names[-1])(torch.cat(features, 1)) * RESIDUAL_SCALE + x


def upsampling_factors(scale: int) -> tuple[int, ...]:
    """Nearest-neighbour stages of the upsampler. x2 uses the x4 upsampler on a pixel-unshuffled
    input (as BasicSR), so x2 and x4 checkpoints share the layout; x3 has one x3 stage."""
    if scale not in SUPPORTED_SCALES:
        raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {scale}")
    return (3,) if scale == 3 else (2, 2)


class RRDBStyleGenerator(nn.Module):
    """The trunk and upsampler shared by :class:`RRDBNet` and :class:`CRDBNet`.

    ``size_multiple``: input sides must be divisible by it (2 for x2, whose input is
    pixel-unshuffled); models pad and crop back automatically.
    """

    def __init__(
        self, in_nc: int, out_nc: int, nf: int, nb: int, scale: int, make_block: Callable[[], nn.Module]
    ) -> None:
        super().__init__()
        factors = upsampling_factors(scale)
        self.scale = scale
        self.unshuffle = 2 if scale == 2 else 1
        self.size_multiple = self.unshuffle
        self.conv_first = nn.Conv2d(in_nc * self.unshuffle**2, nf, 3, padding=1)
        self.body = nn.Sequential(*(make_block() for _ in range(nb)))
        self.conv_body = nn.Conv2d(nf, nf, 3, padding=1)
        self.up_factors = factors
        for stage in range(1, len(factors) + 1):
            self.add_module(f"conv_up{stage}", nn.Conv2d(nf, nf, 3, padding=1))
        self.conv_hr = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        features = self.conv_first(x)
        features = features + self.conv_body(self.body(features))  # long skip over the whole trunk
        for stage, factor in enumerate(self.up_factors, start=1):
            upsampled = F.interpolate(features, scale_factor=factor, mode="nearest")
            features = lrelu(getattr(self, f"conv_up{stage}")(upsampled))
        return self.conv_last(lrelu(self.conv_hr(features)))
