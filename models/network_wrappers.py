"""How a model's networks run: memory layout, torch.compile and DistributedDataParallel.

``BaseModel.setup`` passes every network through :func:`wrap_network`; :func:`unwrap` gives
back the bare module, which saving and loading use, so checkpoint keys never carry the
wrappers' ``module.`` / ``_orig_mod.`` prefixes and stay upstream-compatible.

A wrapped network must be called (``net(x)``), not through another method: DDP averages the
gradients of what its ``forward`` computed, and torch.compile compiles ``forward`` only.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from models.gemm_convs import route_small_convs_through_gemm


class DistributedNetwork(DistributedDataParallel):
    """DDP that still answers the network's own attributes (``size_multiple``, ``scale``),
    so models use a wrapped and a bare network alike."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":  # not constructed yet
                raise
            return getattr(self.module, name)


def unwrap(net: nn.Module) -> nn.Module:
    """The bare module inside DDP / torch.compile wrappers."""
    while True:
        if isinstance(net, DistributedDataParallel):
            net = net.module
        elif hasattr(net, "_orig_mod"):
            net = net._orig_mod
        else:
            return net


def is_trainable(net: nn.Module) -> bool:
    return any(parameter.requires_grad for parameter in net.parameters())


def wrap_network(net: nn.Module, device: torch.device, channels_last: bool, compile_net: bool,
                 distributed: bool, sync_bn: bool, gemm_conv_max_side: int) -> nn.Module:
    """Apply the requested execution options to one network (in this order).

    - gemm_conv_max_side: convolutions on CPU inputs of at most this many px per side run as
      one matrix product (models/gemm_convs.py);
    - channels_last: NHWC weights, which oneDNN and cuDNN convolutions run faster;
    - distributed (trainable networks only; an EMA copy is not trained): batch norm
      optionally synchronised across processes, then DDP. Buffers are synchronised once at
      construction, not at every forward, so rank 0 can validate alone without waiting
      for the others;
    - compile: torch.compile around the (possibly DDP-wrapped) network.
    """
    route_small_convs_through_gemm(net, gemm_conv_max_side)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if distributed and is_trainable(net):
        if sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)  # reuses the same parameter objects
        net = DistributedNetwork(net, device_ids=[device.index] if device.type == "cuda" else None,
                                 forward_sync_buffers=False)
    if compile_net:
        net = torch.compile(net)
    return net


def to_memory_format(tensor: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """An image batch in the layout the networks use (4-D tensors only)."""
    if channels_last and tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor
