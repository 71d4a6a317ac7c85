"""Shared parts of the RRDB-family super-resolution generators (ESRGAN's RRDBNet, IRSRGAN's CRDB net).

Both generators are ``conv_first -> nb blocks -> conv_body (+ long skip) -> nearest-neighbour
upsampling convs -> conv_hr -> conv_last``; they differ only in the block. Module names
follow BasicSR's ``RRDBNet`` (``conv_first``, ``body.{i}.rdb{j}.conv{k}``, ``conv_body``,
``conv_up{n}``, ``conv_hr``, ``conv_last``), so BasicSR checkpoints load without renaming.
The output is linear (no tanh): images live in [-1, 1] and are clamped only when saved.

Two conventions are recorded with the weights as state-dict buffers, so every file that holds
them (checkpoints, EMA, blends of ``net_interp.py``) keeps its meaning:

* ``value_range``: the pixel range the weights were trained on. The project feeds [-1, 1];
  ESRGAN, BasicSR/Real-ESRGAN and IRSRGAN trained on [0, 1], and their files are loaded with
  (0, 1), so the network sees what it was trained on and its output is mapped back.
* ``bicubic_residual``: 1 when the network predicts the residual over bicubic upsampling of
  its input (VDSR's global residual learning), 0 for ESRGAN's plain mapping. The residual
  form starts at bicubic quality instead of at noise, which is what makes a CPU-sized budget
  of a few thousand steps beat bicubic (docs: the SR recipe).

Files written before these buffers existed load as (-1, 1) and 0: what they were trained as.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

# ESRGAN's residual scaling: each dense block adds 0.2 x its output to its input.
RESIDUAL_SCALE = 0.2
SUPPORTED_SCALES = (2, 3, 4)
_NEGATIVE_SLOPE = 0.2
# The recorded conventions (see the module docstring) and their values for files without them.
CONVENTION_BUFFERS = ("value_range", "bicubic_residual")
PROJECT_RANGE = (-1.0, 1.0)
FOREIGN_RANGE = (0.0, 1.0)  # ESRGAN, BasicSR/Real-ESRGAN, IRSRGAN


def legacy_conventions(value_range: tuple[float, float] = PROJECT_RANGE) -> dict[str, torch.Tensor]:
    """The convention buffers of a file that predates them: plain mapping on ``value_range``."""
    return {"value_range": torch.tensor(value_range), "bicubic_residual": torch.tensor(0.0)}


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
        self, in_nc: int, out_nc: int, nf: int, nb: int, scale: int, make_block: Callable[[], nn.Module],
        bicubic_residual: bool = False,
    ) -> None:
        super().__init__()
        self.register_buffer("value_range", torch.tensor(PROJECT_RANGE))
        self.register_buffer("bicubic_residual", torch.tensor(1.0 if bicubic_residual else 0.0))
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

        if bicubic_residual:
            # The residual head starts near zero, so the untrained network is bicubic upsampling.
            init_residual_branch([self.conv_last])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Branch-free arithmetic on the buffers, so tracing, export and compile see one graph.
        low, high = self.value_range[0], self.value_range[1]
        x = (x + 1.0) * (0.5 * (high - low)) + low  # [-1, 1] -> the weights' range
        features = self.conv_first(F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x)
        features = features + self.conv_body(self.body(features))  # long skip over the whole trunk
        for stage, factor in enumerate(self.up_factors, start=1):
            upsampled = F.interpolate(features, scale_factor=factor, mode="nearest")
            features = lrelu(getattr(self, f"conv_up{stage}")(upsampled))
        out = self.conv_last(lrelu(self.conv_hr(features)))
        out = out + self.bicubic_residual * F.interpolate(x, scale_factor=self.scale, mode="bicubic",
                                                          align_corners=False)
        return (out - low) * (2.0 / (high - low)) - 1.0  # back to [-1, 1]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # A file without the convention buffers predates them: it was trained as legacy_conventions() says.
        for name, value in legacy_conventions().items():
            state_dict.setdefault(prefix + name, value)
        super()._load_from_state_dict(state_dict, prefix, *args)
