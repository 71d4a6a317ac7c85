"""Super-resolve an image of any size tile by tile, so memory stays bounded.

The low-resolution image is cut into ``tile`` x ``tile`` tiles; each is run with a margin of
``tile_pad`` pixels of real context on every side (clamped at the image border) and only the
output of its own area is kept. Where the margin covers the network's receptive field the
result equals the untiled output (up to floating-point summation order); with a smaller
margin (Real-ESRGAN's default is 10) seams can differ slightly near tile borders.

Tiles are read from the input's device and results written back there, one tile on the
network's device at a time (Real-ESRGAN moves the whole image first, which can still run out
of GPU memory, Real-ESRGAN#184).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from models.networks.padding import crop_to, pad_to_multiple


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def upscale(net: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Run an SR generator on ``N x C x h x w`` of any size: pad to ``net.size_multiple``, crop back."""
    padded, (height, width) = pad_to_multiple(image, net.size_multiple)
    return crop_to(net(padded), (height * net.scale, width * net.scale))


def tiled_upscale(net: nn.Module, image: torch.Tensor, tile: int, tile_pad: int) -> torch.Tensor:
    """``upscale`` computed tile by tile (``tile`` > 0 input pixels per tile side).

    Tile origins and margins are rounded up to ``net.size_multiple`` so that a network that
    regroups pixels (x2: pixel-unshuffle by 2) sees the same grouping as on the whole image.
    """
    multiple, scale = net.size_multiple, net.scale
    tile, tile_pad = _round_up(tile, multiple), _round_up(tile_pad, multiple)
    batch, _, height, width = image.shape
    device = next(net.parameters()).device
    output: torch.Tensor | None = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            in_top, in_left = max(top - tile_pad, 0), max(left - tile_pad, 0)
            in_bottom, in_right = min(bottom + tile_pad, height), min(right + tile_pad, width)
            result = upscale(net, image[..., in_top:in_bottom, in_left:in_right].to(device)).to(image.device)
            if output is None:
                output = image.new_empty(batch, result.shape[1], height * scale, width * scale, dtype=result.dtype)
            rows = slice((top - in_top) * scale, (bottom - in_top) * scale)
            cols = slice((left - in_left) * scale, (right - in_left) * scale)
            output[..., top * scale:bottom * scale, left * scale:right * scale] = result[..., rows, cols]
    assert output is not None
    return output
