"""Normalisation layer factory."""
from __future__ import annotations

import functools
from typing import Callable

import torch.nn as nn

from util.errors import UserError

NormLayer = Callable[[int], nn.Module]

NORM_TYPES = ("batch", "instance", "none")


def get_norm_layer(norm_type: str) -> NormLayer:
    """``batch``: affine BatchNorm with running statistics; ``instance``: InstanceNorm without
    parameters or statistics (upstream pix2pix's choice); ``none``: identity."""
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":
        return lambda channels: nn.Identity()
    raise UserError(f"--norm must be one of {', '.join(NORM_TYPES)}, got {norm_type!r}")


def conv_bias_needed(norm_layer: NormLayer) -> bool:
    """Convolutions followed by batch norm need no bias (the norm's shift replaces it).

    Upstream also drops the bias with ``--norm none``, which leaves such layers without any
    offset; here only batch norm removes it. Batch- and instance-norm checkpoints keep
    upstream's exact key layout.
    """
    layer = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return layer is not nn.BatchNorm2d
