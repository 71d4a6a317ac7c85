"""Base class for datasets and the shared image loading step."""
from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from util.image_io import convert_channels, read_image, to_unit_range

# A dataset item is addressed either by its index (evaluation) or by (epoch, index) during
# training, so random augmentation depends only on (seed, epoch, index): identical across
# worker counts and across an interrupted-and-resumed run.
SampleKey = int | tuple[int, int]


class BaseDataset(Dataset, ABC):
    """A split of a dataset; subclasses list their files and build sample dicts."""

    def __init__(self, opt: argparse.Namespace, phase: str) -> None:
        self.opt = opt
        self.phase = phase
        self.root = Path(opt.dataroot)
        # Only the training split is augmented; validation and test use centred crops.
        self.augment = bool(opt.isTrain) and phase == opt.phase

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Add dataset-specific options or change defaults."""
        return parser

    @classmethod
    def has_split(cls, opt: argparse.Namespace, phase: str) -> bool:
        """Whether the dataset root holds the split ``phase``."""
        return (Path(opt.dataroot) / phase).is_dir()

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, key: SampleKey) -> dict: ...

    def rng_for(self, key: SampleKey) -> tuple[int, np.random.Generator | None]:
        """The sample index and its augmentation generator (None when not augmenting)."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if not self.augment:
            return index, None
        return index, np.random.default_rng([self.opt.seed, epoch, index])

    def load_unit_image(self, path: str | Path, channels: int) -> np.ndarray:
        """Read an image as float32 ``H x W x channels`` in [0, 1]."""
        return self.to_unit(read_image(path), channels)

    def to_unit(self, raw: np.ndarray, channels: int) -> np.ndarray:
        """Raw pixels -> float32 ``H x W x channels`` in [0, 1] (see ``--bit16_norm``)."""
        return convert_channels(to_unit_range(raw, self.opt.bit16_norm, tuple(self.opt.bit16_range)), channels)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """``H x W x C`` float array in [0, 1] -> ``C x H x W`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def to_model_range(image: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range the generators' tanh outputs live in."""
    return image * 2.0 - 1.0
