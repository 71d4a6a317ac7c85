"""Decoded training images kept in memory (``--image_cache_mb``), so a frame read every epoch is decoded once.

Training reads every image again each epoch, and super-resolution training decodes a whole frame for each small
random patch: on a 2-core machine, decoding 640x480 PNG frames for 96-pixel patches took a third of the CPU while
the network trained. The cache holds the arrays ``read_image`` returns, least recently used first out, within a
byte budget per data-loading process; a dataset larger than the budget is partly cached, never an error.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from util.image_io import read_image


class DecodedImageCache:
    """``read_image`` with the last ``max_bytes`` of decoded images kept; the arrays it returns are read-only."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.cached_bytes = 0
        self._images: OrderedDict[Path, np.ndarray] = OrderedDict()

    def read(self, path: str | Path) -> np.ndarray:
        path = Path(path)
        image = self._images.get(path)
        if image is not None:
            self._images.move_to_end(path)
            return image
        image = read_image(path)
        if image.nbytes <= self.max_bytes:
            image.flags.writeable = False  # later samples share it: a caller that wrote into it would corrupt them
            self._images[path] = image
            self.cached_bytes += image.nbytes
            while self.cached_bytes > self.max_bytes:
                _, oldest = self._images.popitem(last=False)
                self.cached_bytes -= oldest.nbytes
        return image

    def __len__(self) -> int:
        return len(self._images)
