"""Super-resolution data (``--dataset_mode sr``): HR images with LR inputs made on the fly,
real LR/HR pairs, or LR frames alone.

The split folder is ``<dataroot>/<phase>``; for test.py, a ``--dataroot`` without
train/val/test folders is itself the split folder. ``--sr_input auto`` picks the layout:

* ``paired``: ``<split>/HR/`` and ``<split>/LR/`` (or ``LR/x4/``, ``LR_x4/`` for
  ``--scale 4``), paired by relative path and name, ignoring ``x4``/``_lr``/``_hr``
  suffixes (``0001x4.png`` pairs with ``0001.png``). Real pairs: no synthetic degradation.
* ``hr``: every image under ``<split>/`` (recursively, e.g. CVC sequence folders or TISR
  camera folders), or under ``<split>/HR/``, is an HR image; its LR input is made on the
  fly. Training: clean downsampling (``--sr_downsample``, antialiased bicubic by default)
  with probability ``1 - --degradation_prob``, else the ``--degradation`` preset.
  Evaluation: clean downsampling of the HR image cropped to a multiple of the scale (or
  the preset with a fixed seed per image, ``--eval_degradation fixed``).
* ``lr`` (test only; ``auto`` picks it for a lone ``<split>/LR/``): the images are LR
  frames to upscale; samples have no ``HR`` and no metrics are computed.

Training samples are aligned patches: an HR ``--crop_size`` patch at a position on the
scale grid and the LR patch it maps to, then the same random flip/rotation of both. The
synthetic degradation is applied to the HR patch (so its cost does not grow with the
image and the LR patch is exactly ``crop_size / scale``).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.base_dataset import BaseDataset, SampleKey, to_model_range, to_tensor
from data.degradations import (
    PRESETS,
    RESIZE_MODES,
    ParameterSpec,
    check_parameters,
    downsample,
    parameter_table,
    quantize,
    replace_parameters,
)
from data.image_folder import find_images
from data.image_headers import check_files_quickly
from data.layout import detect_sr_layout, hr_folder, pair_sr
from util.errors import BadImageError, UserError
from util.image_io import convert_channels, to_unit_range

SPLIT_NAMES = ("train", "val", "test")
SR_INPUTS = ("auto", "hr", "lr", "paired")
# Evaluation images degraded with --eval_degradation fixed use this seed with their index,
# so the degraded evaluation set is the same for every experiment (whatever its --seed).
_EVAL_DEGRADATION_SEED = 20240905
# (HR path, LR path): no LR path when LR is made on the fly, no HR path for LR-only test data.
SrItem = tuple[Path | None, Path | None]


def preset_parameters(opt: argparse.Namespace) -> Any:
    """The parameters of the ``--degradation`` preset from its ``--<preset>_<name>`` options."""
    preset = PRESETS[opt.degradation]
    names = parameter_table(preset.defaults)
    params = replace_parameters(preset.defaults, {name: getattr(opt, f"{opt.degradation}_{name}") for name in names})
    try:
        check_parameters(params)
    except ValueError as error:
        raise UserError(f"--{opt.degradation}_{error}") from None
    return params


def dihedral(image: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations of an ``H x W x C`` image (mode 0 = unchanged)."""
    image = np.rot90(image, mode % 4, axes=(0, 1))
    return np.ascontiguousarray(image[:, ::-1] if mode >= 4 else image)


def _add_parameter_option(group: argparse._ArgumentGroup, flag: str, spec: ParameterSpec) -> None:
    value = spec.value
    if not isinstance(value, tuple):
        group.add_argument(flag, type=type(value), default=value, metavar=type(value).__name__.upper(), help=spec.help)
    elif isinstance(value[0], str):
        group.add_argument(flag, nargs="+", choices=RESIZE_MODES, default=value, metavar="MODE", help=spec.help)
    else:
        metavar = ("LOW", "HIGH") if len(value) == 2 else ("W",) * len(value)
        group.add_argument(flag, type=type(value[0]), nargs=len(value), default=value, metavar=metavar, help=spec.help)


class SrDataset(BaseDataset):
    """Returns ``{'LR', 'HR', 'LR_paths', 'HR_paths'}`` with tensors in [-1, 1]
    (no ``HR`` for LR-only splits, whose ``HR_paths`` repeat ``LR_paths``)."""

    default_dataroot = "./datasets/synthetic_sr"

    @classmethod
    def ensure_default_data(cls, root: str) -> None:
        from data.offline.synthetic_sr import ensure_synthetic_sr_dataset

        ensure_synthetic_sr_dataset(root, workers=os.cpu_count() or 1)

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        g = parser.add_argument_group("super-resolution data")
        g.add_argument("--scale", type=int, default=4, choices=[2, 3, 4], help="upscaling factor")
        g.add_argument("--sr_input", default="auto", choices=SR_INPUTS,
                       help="what the split folder holds: HR images (LR made on the fly), paired HR/ and LR/ "
                            "folders, LR images only (test), or auto-detect")
        g.add_argument("--sr_downsample", default="bicubic", choices=RESIZE_MODES,
                       help="how clean LR images are made from HR: antialiased bicubic or bilinear, or area")
        g.add_argument("--degradation_prob", type=float, default=0.25,
                       help="training: probability of the --degradation preset instead of clean downsampling")
        g.add_argument("--degradation", default="irsrgan", choices=list(PRESETS), help="random degradation preset")
        g.add_argument("--eval_degradation", default="none", choices=["none", "fixed"],
                       help="validation/test LR: clean downsampling, or the --degradation preset with a fixed "
                            "seed per image")
        for preset_name, preset in PRESETS.items():
            for name, spec in parameter_table(preset.defaults).items():
                _add_parameter_option(g, f"--{preset_name}_{name}", spec)
        return parser

    def __init__(self, opt: argparse.Namespace, phase: str) -> None:
        super().__init__(opt, phase)
        self.scale = opt.scale
        if not 0.0 <= opt.degradation_prob <= 1.0:
            raise UserError(f"--degradation_prob must be between 0 and 1, got {opt.degradation_prob}")
        if self.augment and opt.crop_size % self.scale:
            raise UserError(f"--crop_size {opt.crop_size} (the HR training patch) must be a multiple of "
                            f"--scale {self.scale}, e.g. {opt.crop_size - opt.crop_size % self.scale}")
        self.preset = PRESETS[opt.degradation]
        self.preset_params = preset_parameters(opt)
        split = self._split_folder()
        # test.py on a plain folder of images (no split, HR or LR folders): images to super-resolve.
        plain = split == self.root and opt.sr_input == "auto" and not hr_folder(split)
        self.layout = detect_sr_layout(split, "lr" if plain else opt.sr_input, self.scale)
        if self.layout.kind == "lr" and opt.isTrain:
            raise UserError(f"{self.layout.lr_folder} holds LR images only (--sr_input {opt.sr_input}); training and "
                            f"validation need HR images: give HR images or HR/ and LR/ folders")
        if self.layout.kind == "paired" and opt.eval_degradation == "fixed" and not self.augment:
            # The stored LR images would be used as they are: the degradation asked for would silently not happen.
            raise UserError(f"--eval_degradation fixed degrades LR made from HR, but {self.layout.lr_folder} holds "
                            f"fixed LR images; add --sr_input hr to make the LR from {self.layout.hr_folder}")
        if self.layout.kind == "paired":
            pairing = pair_sr(self.layout.hr_folder, self.layout.lr_folder, self.scale)
            self.unpaired(self.layout.hr_folder, pairing.only_first, self.layout.lr_folder, pairing.only_second,
                          ("HR", "LR"))
            self.items: list[SrItem] = [(hr, lr) for _, hr, lr in pairing.pairs]
        elif self.layout.kind == "hr":
            self.items = [(path, None) for path in find_images(self.layout.hr_folder)]
        else:
            self.items = [(None, path) for path in find_images(self.layout.lr_folder)]
        self.items = self.items[: opt.max_dataset_size]
        what = f"split {phase} of {self.root}"
        if self.skip_bad:
            self.items = self.usable(self.items, what)
        else:
            # Empty or non-image files fail now, not hours into training (headers only: fast).
            check_files_quickly(sorted({path for item in self.items for path in item if path is not None}), what)

    def _split_folder(self) -> Path:
        folder = self.root / self.phase
        if folder.is_dir():
            return folder
        if not self.opt.isTrain and not any((self.root / name).is_dir() for name in SPLIT_NAMES):
            return self.root  # test.py on a plain folder of images
        raise UserError(f"split folder {folder} does not exist; check --dataroot and --phase")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: SampleKey) -> dict:
        index, rng = self.rng_for(key)
        hr_path, lr_path = self.items[index]
        hr, lr, levels = self.read_item(self.items[index])
        if hr is None:
            return {"LR": self._model_tensor(lr), "LR_paths": str(lr_path), "HR_paths": str(lr_path)}
        if rng is not None:
            hr, lr = self._training_patches(hr, lr, rng)
        else:
            hr = hr[: hr.shape[0] // self.scale * self.scale, : hr.shape[1] // self.scale * self.scale]
            if lr is None and self.opt.eval_degradation == "fixed":
                rng = np.random.default_rng([_EVAL_DEGRADATION_SEED, index])
        if lr is None:
            lr = quantize(self._synthetic_lr(hr, rng), levels)
        return {"LR": self._model_tensor(convert_channels(lr, self.opt.input_nc)), "HR": self._model_tensor(hr),
                "LR_paths": str(lr_path or hr_path), "HR_paths": str(hr_path)}

    def read_item(self, item: SrItem) -> tuple[np.ndarray | None, np.ndarray | None, int | None]:
        """HR (None for LR-only data) and LR (None when made on the fly) in [0, 1], and the levels
        synthetic LR is rounded to; checks sizes against --scale and the training crop."""
        hr_path, lr_path = item
        if hr_path is None:
            return None, self.load_unit_image(lr_path, self.opt.input_nc), None
        raw_hr = self.read_raw(hr_path)
        crop = self.opt.crop_size
        if self.augment and (raw_hr.shape[0] < crop or raw_hr.shape[1] < crop):
            raise BadImageError(f"image {hr_path} is {raw_hr.shape[1]}x{raw_hr.shape[0]}, smaller than --crop_size "
                                f"{crop}; lower --crop_size or remove the image", hr_path)
        hr = self.to_unit(raw_hr, self.opt.output_nc)
        lr = None if lr_path is None else self._load_paired_lr(raw_hr, hr, hr_path, lr_path)
        # LR made from 8-bit HR is rounded to 8 bits, as a saved LR image would be.
        return hr, lr, 255 if raw_hr.dtype == np.uint8 else None

    @staticmethod
    def _model_tensor(image: np.ndarray) -> torch.Tensor:
        return to_model_range(to_tensor(image))

    def _load_paired_lr(self, raw_hr: np.ndarray, hr: np.ndarray, hr_path: Path, lr_path: Path) -> np.ndarray:
        raw_lr = self.read_raw(lr_path)
        expected_hw = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
        if raw_lr.shape[:2] != expected_hw:
            raise BadImageError(
                f"LR image {lr_path} is {raw_lr.shape[1]}x{raw_lr.shape[0]} but its HR image {hr_path} is "
                f"{hr.shape[1]}x{hr.shape[0]}; with --scale {self.scale} the LR image must be "
                f"{expected_hw[1]}x{expected_hw[0]}. Check --scale and the LR folder", lr_path)
        low, high = float(raw_hr.min()), float(raw_hr.max())
        if raw_hr.dtype != np.uint8 and raw_lr.dtype != np.uint8 and self.opt.bit16_norm == "minmax" and high > low:
            # Per-image min-max would stretch LR and HR differently; use the HR image's range for both.
            return convert_channels(to_unit_range(raw_lr, "fixed", (low, high)), self.opt.input_nc)
        return self.to_unit(raw_lr, self.opt.input_nc)

    def _training_patches(self, hr: np.ndarray, lr: np.ndarray | None,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """An HR ``crop_size`` patch on the scale grid, the LR patch under it, one shared flip/rotation."""
        crop, scale = self.opt.crop_size, self.scale
        lr_crop = crop // scale
        top = int(rng.integers(0, hr.shape[0] // scale - lr_crop + 1))
        left = int(rng.integers(0, hr.shape[1] // scale - lr_crop + 1))
        mode = 0 if self.opt.no_flip else int(rng.integers(0, 8))
        hr = dihedral(hr[top * scale:(top + lr_crop) * scale, left * scale:(left + lr_crop) * scale], mode)
        if lr is not None:
            lr = dihedral(lr[top:top + lr_crop, left:left + lr_crop], mode)
        return hr, lr

    def _synthetic_lr(self, hr: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Training: the preset with probability ``--degradation_prob``, else clean downsampling.
        Evaluation: clean downsampling, or the preset when given a (fixed) generator."""
        if rng is not None:
            probability = self.opt.degradation_prob if self.augment else 1.0
            if rng.random() < probability:
                return self.preset.apply(hr, self.scale, self.preset_params, rng)
        return downsample(hr, self.scale, self.opt.sr_downsample)
