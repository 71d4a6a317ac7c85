"""Network factories: ``--netG``/``--netD`` names -> initialised modules.

Each architecture lives in its own module; this file only maps option names to builders.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch.nn as nn

from models.networks.crdb import CRDBNet
from models.networks.doubleunet import FAITHFUL, DoubleUNet
from models.networks.init import init_weights
from models.networks.norm import get_norm_layer
from models.networks.patchgan import NLayerDiscriminator, PixelDiscriminator
from models.networks.resnet import ResnetGenerator
from models.networks.rrdb import RRDBNet
from models.networks.unet import UnetGenerator
from models.networks.vgg_discriminator import VGGStyleDiscriminator
from util.errors import UserError

GeneratorBuilder = Callable[..., nn.Module]

GENERATORS: dict[str, GeneratorBuilder] = {
    "unet_256": lambda i, o, ngf, norm, dropout: UnetGenerator(i, o, 8, ngf, norm, dropout),
    "unet_128": lambda i, o, ngf, norm, dropout: UnetGenerator(i, o, 7, ngf, norm, dropout),
    "resnet_9blocks": lambda i, o, ngf, norm, dropout: ResnetGenerator(i, o, ngf, norm, dropout, n_blocks=9),
    "resnet_6blocks": lambda i, o, ngf, norm, dropout: ResnetGenerator(i, o, ngf, norm, dropout, n_blocks=6),
    # The published DoubleU-Net (no dropout in its layout); --ngf 64 is its full width.
    "doubleunet": lambda i, o, ngf, norm, dropout: DoubleUNet(i, o, norm, replace(FAITHFUL, width=ngf / 64)),
}

DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {
    "basic": lambda i, ndf, n_layers, norm: NLayerDiscriminator(i, ndf, 3, norm),
    "n_layers": lambda i, ndf, n_layers, norm: NLayerDiscriminator(i, ndf, n_layers, norm),
    "pixel": lambda i, ndf, n_layers, norm: PixelDiscriminator(i, ndf, norm),
    # ESRGAN/IRSRGAN's discriminator: one logit per image, any patch of at least 32x32.
    "vgg": lambda i, ndf, n_layers, norm: VGGStyleDiscriminator(i, ndf, norm),
}

# Super-resolution generators take (in, out, nf, nb, gc, scale) and keep their own
# initialisation (ESRGAN's kaiming x 0.1 on the residual branches), so they have their own table.
SR_GENERATORS: dict[str, GeneratorBuilder] = {"crdb": CRDBNet, "rrdb": RRDBNet}


def define_G(
    input_nc: int, output_nc: int, ngf: int, netG: str, norm: str = "batch", use_dropout: bool = False,
    init_type: str = "normal", init_gain: float = 0.02,
) -> nn.Module:
    """Build and initialise a generator. The module exposes ``size_multiple``: inputs must
    have sides divisible by it (models pad and crop back automatically)."""
    if netG not in GENERATORS:
        raise UserError(f"unknown --netG {netG!r}; available: {', '.join(GENERATORS)}")
    net = GENERATORS[netG](input_nc, output_nc, ngf, get_norm_layer(norm), use_dropout)
    return initialise(net, init_type, init_gain)


def define_sr_G(input_nc: int, output_nc: int, nf: int, nb: int, gc: int, scale: int, netG: str,
                bicubic_residual: bool = False) -> nn.Module:
    """Build a super-resolution generator (``--netG crdb|rrdb``). Like ``define_G``'s
    networks it exposes ``size_multiple``, and also ``scale``; ``bicubic_residual``: predict
    the residual over bicubic upsampling (``--sr_residual bicubic``)."""
    if netG not in SR_GENERATORS:
        raise UserError(f"unknown --netG {netG!r} for super-resolution; available: {', '.join(SR_GENERATORS)}")
    return SR_GENERATORS[netG](input_nc, output_nc, nf, nb, gc, scale, bicubic_residual)


def initialise(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """``init_weights``, then parts with an initialisation of their own (a module defining
    ``reset_own_parameters``, such as the VGG19 encoder) re-apply it."""
    init_weights(net, init_type, init_gain)
    for module in net.modules():
        if hasattr(module, "reset_own_parameters"):
            module.reset_own_parameters()
    return net


def define_D(
    input_nc: int, ndf: int, netD: str, n_layers_D: int = 3, norm: str = "batch",
    init_type: str = "normal", init_gain: float = 0.02,
) -> nn.Module:
    """Build and initialise a discriminator."""
    if netD not in DISCRIMINATORS:
        raise UserError(f"unknown --netD {netD!r}; available: {', '.join(DISCRIMINATORS)}")
    net = DISCRIMINATORS[netD](input_nc, ndf, n_layers_D, get_norm_layer(norm))
    return init_weights(net, init_type, init_gain)


def count_parameters(net: nn.Module) -> int:
    return sum(parameter.numel() for parameter in net.parameters())
