"""Convolutions on tiny CPU inputs computed as one matrix product.

At batch 1 a U-Net's inner layers (inputs of 1-16 px per side) hold most of its weights but do
little arithmetic: a 1024->512 transposed convolution on a 2x2 input multiplies 8 M weights by four
pixels. oneDNN runs such layers far below its speed on large inputs (a third of a pix2pix step for a
seventh of its FLOPs, docs/speed.md). Written as ``unfold`` + one matrix product (a transposed
convolution: matrix product + ``fold``), the same arithmetic runs on the plain weight layout through
BLAS, forward and backward (autograd differentiates unfold, fold and the product): per layer 1.1-6x
faster on the project's CPU (one thread, forward + backward), the whole pix2pix step in
``python scripts/speed_vs_upstream.py``. Results equal the native convolution's to float rounding.

:func:`route_small_convs_through_gemm` switches a network's ``nn.Conv2d`` / ``nn.ConvTranspose2d``
modules to the subclasses below in place (same parameters and state-dict keys, so optimizers and
checkpoints are untouched). They take the matrix-product path only on CPU tensors whose sides are at
most ``max_side`` px, and never while tracing, scripting, compiling or exporting (those see the
native convolution, which every backend knows).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _exporting_or_compiling() -> bool:
    return (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export())


def conv2d_as_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` (groups 1, dilation 1) as unfold + matmul."""
    n, _, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    out_h = (height + 2 * padding[0] - kh) // stride[0] + 1
    out_w = (width + 2 * padding[1] - kw) // stride[1] + 1
    columns = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # n, in*kh*kw, out_h*out_w
    out = weight.reshape(out_channels, -1) @ columns
    if bias is not None:
        out = out + bias.to(out.dtype).view(1, -1, 1)
    return out.view(n, out_channels, out_h, out_w)


def conv_transpose2d_as_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                             stride: tuple[int, int], padding: tuple[int, int],
                             output_padding: tuple[int, int]) -> torch.Tensor:
    """``F.conv_transpose2d`` (groups 1, dilation 1) as matmul + fold: every input pixel scatters
    its weighted kernel into the output, which is what ``fold`` sums."""
    n, in_channels, height, width = x.shape
    _, out_channels, kh, kw = weight.shape
    out_h = (height - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0]
    out_w = (width - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1]
    columns = weight.reshape(in_channels, -1).t() @ x.reshape(n, in_channels, height * width)
    out = F.fold(columns, (out_h, out_w), (kh, kw), padding=padding, stride=stride)
    if bias is not None:
        out = out + bias.to(out.dtype).view(1, -1, 1, 1)  # autocast: the product's precision
    return out


def _plain(module: nn.Conv2d | nn.ConvTranspose2d) -> bool:
    """Zero padding given as numbers, no groups or dilation: what the matrix-product forms compute."""
    return (module.groups == 1 and module.dilation == (1, 1) and module.padding_mode == "zeros"
            and isinstance(module.padding, tuple))


class GemmConv2d(nn.Conv2d):
    """``nn.Conv2d`` that runs as a matrix product on inputs of at most ``gemm_max_side`` px."""

    gemm_max_side: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not _exporting_or_compiling() and x.device.type == "cpu" and x.dim() == 4
                and max(x.shape[-2:]) <= self.gemm_max_side):
            return conv2d_as_gemm(x, self.weight, self.bias, self.stride, self.padding)
        return super().forward(x)


class GemmConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` that runs as a matrix product on inputs of at most ``gemm_max_side`` px
    (when the output size is not requested explicitly)."""

    gemm_max_side: int = 0

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if (output_size is None and not _exporting_or_compiling() and x.device.type == "cpu" and x.dim() == 4
                and max(x.shape[-2:]) <= self.gemm_max_side):
            return conv_transpose2d_as_gemm(x, self.weight, self.bias, self.stride, self.padding,
                                            self.output_padding)
        return super().forward(x, output_size)


def route_small_convs_through_gemm(net: nn.Module, max_side: int) -> nn.Module:
    """Switch ``net``'s plain 2-D convolutions to the matrix-product form for CPU inputs of at most
    ``max_side`` px per side (0: leave the network as it is). Returns ``net``."""
    if max_side <= 0:
        return net
    for module in net.modules():
        if type(module) is nn.Conv2d and _plain(module):
            module.__class__ = GemmConv2d
        elif type(module) is nn.ConvTranspose2d and _plain(module):
            module.__class__ = GemmConvTranspose2d
        else:
            continue
        module.gemm_max_side = max_side
    return net
