"""Base class for datasets, the shared image loading step and ``--bad_image``.

``--bad_image error`` (default): the first unusable file stops the run with one message naming
it. ``--bad_image skip``: every item is read once when the dataset is built (``read_item``, in
``--num_threads`` processes) and the unusable ones are left out, each logged, before any
sampler sees the dataset. Filtering at construction, rather than substituting another sample
when a read fails, keeps the item list fixed for the whole run, so the data order of a resumed
run is the same, no image is used twice in an epoch, and evaluation never counts one twice.
"""
from __future__ import annotations

import argparse
import logging
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from data.image_cache import DecodedImageCache
from util.errors import BadImageError, UserError
from util.image_io import convert_channels, read_image, to_unit_range

logger = logging.getLogger(__name__)

BAD_IMAGE_POLICIES = ("error", "skip")
Item = TypeVar("Item")
# Below this many items the check runs in this process (starting workers would cost more).
_PARALLEL_CHECK_MIN_ITEMS = 64

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
        self.skip_bad = opt.bad_image == "skip"
        self.skipped: list[tuple[str, str]] = []  # (file, why) left out under --bad_image skip
        # Training reads each image every epoch; evaluation reads it once, so only training caches.
        self.cache = DecodedImageCache(opt.image_cache_mb * 2**20) if self.augment and opt.image_cache_mb else None

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

    @abstractmethod
    def read_item(self, item: Any) -> Any:
        """Read and check the files of one item (no augmentation); raise ``BadImageError``
        when they cannot be used. ``__getitem__`` builds samples from what it returns."""

    # ------------------------------------------------------------ --bad_image
    def leave_out(self, path: str | Path, why: str) -> None:
        """Record and log one file left out under ``--bad_image skip``."""
        self.skipped.append((str(path), why))
        logger.warning("--bad_image skip: leaving out %s (%s)", path, why)

    def unpaired(self, first: Path, only_first: list[Path], second: Path, only_second: list[Path],
                 roles: tuple[str, str]) -> None:
        """Files of folder ``first`` or ``second`` without a partner of the same name: one
        error, or under ``--bad_image skip`` each is left out."""
        if not (only_first or only_second):
            return
        if self.skip_bad:
            for path, other in [(path, second) for path in only_first] + [(path, first) for path in only_second]:
                self.leave_out(path, f"no partner of the same name in {other}")
            return
        examples = [str(path) for path in only_first[:3] + only_second[:3]]
        raise UserError(
            f"{len(only_first)} images in {first} and {len(only_second)} in {second} have no partner with the same "
            f"name (e.g. {', '.join(examples)}); every {roles[0]} image needs a {roles[1]} image of the same name "
            f"(or pass --bad_image skip to leave them out)")

    def usable(self, items: list[Item], what: str) -> list[Item]:
        """Under ``--bad_image skip``, the items ``read_item`` accepts (the others are logged and
        left out); otherwise all of them. A split left without items is an error."""
        if not self.skip_bad:
            return items
        workers = self.opt.num_threads if len(items) >= _PARALLEL_CHECK_MIN_ITEMS else 0
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                problems = list(pool.map(self._problem, items, chunksize=16))
        else:
            problems = [self._problem(item) for item in items]
        for problem in problems:
            if problem is not None:
                self.leave_out(*problem)
        kept = [item for item, problem in zip(items, problems) if problem is None]
        if not kept:
            first = f" (first: {self.skipped[0][1]})" if self.skipped else ""
            raise UserError(f"no usable images in {what}: --bad_image skip left out all of them{first}")
        if self.skipped:
            logger.warning("--bad_image skip: %d files left out of %s; %d items remain", len(self.skipped), what,
                           len(kept))
        return kept

    def _problem(self, item: Any) -> tuple[str, str] | None:
        try:
            self.read_item(item)
        except BadImageError as error:
            return error.path or str(item), str(error)
        return None

    def log_skipped(self, when: str) -> None:
        """Repeat, e.g. at the end of an epoch, how many files ``--bad_image skip`` left out."""
        if self.skipped:
            names = ", ".join(path for path, _ in self.skipped[:5]) + (", ..." if len(self.skipped) > 5 else "")
            logger.warning("%s: %d files of the %s split were left out by --bad_image skip (%s)", when,
                           len(self.skipped), self.phase, names)

    def rng_for(self, key: SampleKey) -> tuple[int, np.random.Generator | None]:
        """The sample index and its augmentation generator (None when not augmenting)."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if not self.augment:
            return index, None
        return index, np.random.default_rng([self.opt.seed, epoch, index])

    def read_raw(self, path: str | Path) -> np.ndarray:
        """``read_image``, through the training cache (``--image_cache_mb``): the array may be read-only."""
        return self.cache.read(path) if self.cache is not None else read_image(path)

    def load_unit_image(self, path: str | Path, channels: int) -> np.ndarray:
        """Read an image as float32 ``H x W x channels`` in [0, 1]."""
        return self.to_unit(self.read_raw(path), channels)

    def to_unit(self, raw: np.ndarray, channels: int) -> np.ndarray:
        """Raw pixels -> float32 ``H x W x channels`` in [0, 1] (see ``--bit16_norm``)."""
        return convert_channels(to_unit_range(raw, self.opt.bit16_norm, tuple(self.opt.bit16_range)), channels)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """``H x W x C`` float array in [0, 1] -> ``C x H x W`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def to_model_range(image: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range the generators' tanh outputs live in."""
    return image * 2.0 - 1.0
