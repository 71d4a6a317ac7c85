"""Weight initialisation schemes."""
from __future__ import annotations

import torch.nn as nn

from util.errors import UserError

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights with ``init_type`` (biases to 0) and batch-norm
    scales with N(1, init_gain), as in pix2pix."""
    if init_type not in INIT_TYPES:
        raise UserError(f"--init_type must be one of {', '.join(INIT_TYPES)}, got {init_type!r}")

    def init_module(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init_type == "normal":
                nn.init.normal_(module.weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(module.weight, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(module.weight, gain=init_gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, init_gain)
            nn.init.zeros_(module.bias)

    net.apply(init_module)
    return net
