"""DoubleU-Net (Jha et al., CBMS 2020) as an image-to-image generator, and the improved
variant of the three-stage cascade.

Network 1: VGG19 encoder -> ASPP -> decoder 1 (skips from encoder 1) -> output 1, a
sigmoid mask. Network 2 takes the input multiplied by the mask: encoder 2 -> ASPP ->
decoder 2 (skips from both encoders) -> output 2, the image (tanh, in [-1, 1]).
Convolution blocks are (3x3 conv -> norm -> ReLU) x 2 -> squeeze-and-excitation.

:data:`FAITHFUL` is the published layout (its PyTorch port's 2x2 image pooling; with
3 input channels and 1 output channel, 29,288,886 parameters as the port).
:data:`IMPROVED` is the cascade's stage 2: residual VGG19 encoder with normalisation,
global image pooling, Dropout(0.6) after each ASPP, edge sharpening before output 2, and
output 2 predicted as a residual on the coarse input image (``tanh(atanh(coarse) + head)``),
so stage 2 starts as the identity on stage 1's image (output 2's layer starts at zero)
and learns the detail to add.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.networks.aspp import ASPP
from models.networks.edge_sharpening import EdgeSharpening
from models.networks.norm import NormLayer, conv_bias_needed
from models.networks.se import SqueezeExcitation
from models.networks.tanh_residual import add_before_tanh
from models.networks.vgg_encoder import VGG19Encoder

DECODER_CHANNELS = (256, 128, 64, 32)  # decoder blocks, deepest first
ENCODER2_CHANNELS = (32, 64, 128, 256)
ASPP_CHANNELS = 64


@dataclass(frozen=True)
class DoubleUNetConfig:
    residual_encoder: bool = False  # shortcuts around each VGG19 group ("ResVGG19")
    encoder_norm: bool = False      # normalisation after each VGG19 convolution
    image_pooling: str = "grid2"    # ASPP image-level branch: "global" or "grid2"
    aspp_dropout: float = 0.0       # dropout after each ASPP
    edge_sharpening: bool = False   # edge-sharpening block before output 2
    residual_output: bool = False   # output 2 refines the input's first channels instead of replacing them
    se_ratio: int = 8
    width: float = 1.0              # scales every channel count


FAITHFUL = DoubleUNetConfig()
IMPROVED = DoubleUNetConfig(residual_encoder=True, encoder_norm=True, image_pooling="global", aspp_dropout=0.6,
                            edge_sharpening=True, residual_output=True)


class DoubleUNetOutput(NamedTuple):
    image: torch.Tensor  # output 2, tanh range
    mask: torch.Tensor   # output 1, sigmoid range


class ConvBlock(nn.Sequential):
    """(3x3 conv -> norm -> ReLU) x 2 -> squeeze-and-excitation."""

    def __init__(self, in_channels: int, out_channels: int, norm_layer: NormLayer, se_ratio: int) -> None:
        bias = conv_bias_needed(norm_layer)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias), norm_layer(out_channels), nn.ReLU(True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias), norm_layer(out_channels), nn.ReLU(True),
            SqueezeExcitation(out_channels, se_ratio),
        )


class DecoderBlock(nn.Module):
    """Upsample x2 (bilinear), concatenate the skips, convolution block."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, norm_layer: NormLayer,
                 se_ratio: int) -> None:
        super().__init__()
        self.block = ConvBlock(in_channels + skip_channels, out_channels, norm_layer, se_ratio)

    def forward(self, x: torch.Tensor, *skips: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.block(torch.cat([x, *skips], dim=1))


class Decoder(nn.Module):
    """Four decoder blocks from the 1/16-scale bottleneck to full resolution."""

    def __init__(self, in_channels: int, skip_channels: list[int], out_channels: list[int], norm_layer: NormLayer,
                 se_ratio: int) -> None:
        super().__init__()
        blocks, channels = [], in_channels
        for skip, out in zip(skip_channels, out_channels, strict=True):
            blocks.append(DecoderBlock(channels, skip, out, norm_layer, se_ratio))
            channels = out
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, skips: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
        for block, level_skips in zip(self.blocks, skips, strict=True):
            x = block(x, *level_skips)
        return x


class Encoder2(nn.Module):
    """Network 2's encoder: four (convolution block -> 2x2 max-pool) levels."""

    def __init__(self, in_channels: int, out_channels: list[int], norm_layer: NormLayer, se_ratio: int) -> None:
        super().__init__()
        blocks, channels = [], in_channels
        for out in out_channels:
            blocks.append(ConvBlock(channels, out, norm_layer, se_ratio))
            channels = out
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = []
        for block in self.blocks:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return skips, x


class DoubleUNet(nn.Module):
    """Two stacked U-Nets; ``forward`` returns output 2 (the image), and with ``with_mask``
    also output 1. Inputs need sides divisible by ``size_multiple`` (16)."""

    size_multiple = 16

    def __init__(self, input_nc: int, output_nc: int, norm_layer: NormLayer = nn.BatchNorm2d,
                 config: DoubleUNetConfig = FAITHFUL) -> None:
        super().__init__()
        if config.residual_output and input_nc < output_nc:
            raise ValueError(f"a residual output needs the {output_nc}-channel image among the {input_nc} "
                             "input channels")
        self.config = config

        def scaled(channels: int) -> int:
            return max(1, round(channels * config.width))

        decoder_channels = [scaled(c) for c in DECODER_CHANNELS]
        encoder2_channels = [scaled(c) for c in ENCODER2_CHANNELS]
        aspp_channels = scaled(ASPP_CHANNELS)

        self.encoder1 = VGG19Encoder(input_nc, norm_layer if config.encoder_norm else None, config.residual_encoder,
                                     config.width)
        skips1 = self.encoder1.out_channels[3::-1]  # s4, s3, s2, s1
        self.aspp1 = ASPP(self.encoder1.out_channels[4], aspp_channels, norm_layer=norm_layer,
                          image_pooling=config.image_pooling)
        self.decoder1 = Decoder(aspp_channels, skips1, decoder_channels, norm_layer, config.se_ratio)
        self.output1 = nn.Conv2d(decoder_channels[-1], 1, 1)

        self.encoder2 = Encoder2(input_nc, encoder2_channels, norm_layer, config.se_ratio)
        self.aspp2 = ASPP(encoder2_channels[-1], aspp_channels, norm_layer=norm_layer,
                          image_pooling=config.image_pooling)
        skips2 = [a + b for a, b in zip(skips1, encoder2_channels[::-1])]
        self.decoder2 = Decoder(aspp_channels, skips2, decoder_channels, norm_layer, config.se_ratio)
        self.sharpen = EdgeSharpening(decoder_channels[-1]) if config.edge_sharpening else nn.Identity()
        self.output2 = nn.Conv2d(decoder_channels[-1], output_nc, 1)
        self.dropout = nn.Dropout(config.aspp_dropout) if config.aspp_dropout > 0 else nn.Identity()

    def reset_own_parameters(self) -> None:
        """With a residual output, zero output 2's layer (called after generic initialisation)
        so the network starts as the identity on its coarse input rather than adding noise."""
        if self.config.residual_output:
            nn.init.zeros_(self.output2.weight)
            nn.init.zeros_(self.output2.bias)

    def forward(self, x: torch.Tensor, with_mask: bool = False) -> torch.Tensor | DoubleUNetOutput:
        """Output 2 (the image), or with ``with_mask`` the image and output 1 (the mask).
        One ``forward`` for both, so DDP and torch.compile wrappers see every call."""
        features1 = self.encoder1(x)
        skips1 = features1[3::-1]
        y = self.decoder1(self.dropout(self.aspp1(features1[4])), [(skip,) for skip in skips1])
        mask = torch.sigmoid(self.output1(y))

        skips2, bottom2 = self.encoder2(x * mask)
        y = self.decoder2(self.dropout(self.aspp2(bottom2)), list(zip(skips1, skips2[::-1])))
        head = self.output2(self.sharpen(y))
        output_nc = head.shape[1]
        image = add_before_tanh(x[:, :output_nc], head) if self.config.residual_output else torch.tanh(head)
        return DoubleUNetOutput(image, mask) if with_mask else image

