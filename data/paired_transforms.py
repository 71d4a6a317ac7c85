"""Geometric preprocessing applied identically to both images of a pair.

Parameters are drawn once per sample (from a generator, so they are reproducible) and
then applied to A and B, which keeps the two images registered.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from util.errors import BadImageError


@dataclass(frozen=True)
class PairedTransform:
    """What to do to one sample: resize to ``resize_hw``, crop ``crop_box``, maybe flip."""

    resize_hw: tuple[int, int] | None
    crop_box: tuple[int, int, int, int] | None  # top, left, height, width
    flip: bool

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Apply to a ``C x H x W`` float image in [0, 1]."""
        if self.resize_hw is not None and tuple(image.shape[-2:]) != self.resize_hw:
            image = F.interpolate(image[None], size=self.resize_hw, mode="bicubic", antialias=True,
                                  align_corners=False)[0].clamp_(0.0, 1.0)
        if self.crop_box is not None:
            top, left, height, width = self.crop_box
            image = image[:, top:top + height, left:left + width]
        if self.flip:
            image = image.flip(-1)
        return image


def _scale_width_size(height: int, width: int, target_width: int, min_height: int) -> tuple[int, int]:
    return max(round(target_width * height / width), min_height), target_width


def sample_transform(
    opt: argparse.Namespace, height: int, width: int, rng: np.random.Generator | None, path: str = ""
) -> PairedTransform:
    """Draw the transform for an image of ``height x width``.

    With ``rng=None`` (evaluation) crops are centred and nothing is flipped.
    """
    preprocess, load, crop = opt.preprocess, opt.load_size, opt.crop_size
    resize_hw: tuple[int, int] | None = None
    if preprocess == "resize_and_crop":
        resize_hw = (load, load)
    elif preprocess.startswith("scale_width"):
        resize_hw = _scale_width_size(height, width, load, crop if preprocess.endswith("crop") else 1)
    size_hw = resize_hw or (height, width)

    crop_box = None
    if "crop" in preprocess:
        if size_hw[0] < crop or size_hw[1] < crop:
            raise BadImageError(
                f"image {path} is {size_hw[1]}x{size_hw[0]} after resizing, smaller than --crop_size {crop}; "
                f"lower --crop_size or raise --load_size", path)
        if rng is None:
            top, left = (size_hw[0] - crop) // 2, (size_hw[1] - crop) // 2
        else:
            top = int(rng.integers(0, size_hw[0] - crop + 1))
            left = int(rng.integers(0, size_hw[1] - crop + 1))
        crop_box = (top, left, crop, crop)

    flip = rng is not None and not opt.no_flip and bool(rng.integers(0, 2))
    return PairedTransform(resize_hw=resize_hw, crop_box=crop_box, flip=flip)
