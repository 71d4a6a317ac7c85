"""Hostile input files for reliability tests: damaged images and checkpoints as users meet them.

Every writer takes the path to create. ``HOSTILE_IMAGES`` lists the image kinds with the part
of the error message that must name what is wrong, so a new loader can be run over all of them.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import tifffile
import torch

from util.image_io import write_image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature, IHDR (8-bit grey) and IEND: the header claims the size, no pixel follows."""
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        png_chunk(b"IEND", b"")


def side_by_side(width: int = 64, height: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def truncated_png(path: Path) -> None:
    """A side-by-side PNG cut after 200 bytes: the header reads, the pixels do not."""
    write_image(path, side_by_side())
    path.write_bytes(path.read_bytes()[:200])


def short_data_png(path: Path) -> None:
    """A side-by-side PNG whose header (with a valid CRC) claims twice the rows its data holds."""
    write_image(path, side_by_side())
    data = bytearray(path.read_bytes())
    width, height = struct.unpack(">II", data[16:24])
    data[8:33] = png_chunk(b"IHDR", struct.pack(">II", width, height * 2) + bytes(data[24:29]))
    path.write_bytes(bytes(data))


def odd_width_png(path: Path) -> None:
    """A side-by-side image 63 pixels wide: it cannot be two equal halves."""
    write_image(path, side_by_side(width=63))


def nonfinite_tiff(value: float) -> Callable[[Path], None]:
    """A float32 side-by-side TIFF with one ``value`` (NaN or +-Inf) pixel among finite ones."""
    def write(path: Path) -> None:
        array = side_by_side(seed=1).astype(np.float32)
        array[5, 7, 0] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, array, photometric="rgb")
    return write


# name: (writer, regular expression the error or skip reason must match)
HOSTILE_IMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated.png": (truncated_png, r"cannot read image .*truncated\.png: .*Replace or remove the file"),
    "short_data.png": (short_data_png, r"cannot read image .*short_data\.png: .*Replace or remove the file"),
    "odd_width.png": (odd_width_png, r"odd_width\.png has odd width 63"),
    "nan.tif": (nonfinite_tiff(float("nan")), r"nan\.tif has 1 NaN or infinite pixel values"),
    "inf.tif": (nonfinite_tiff(float("inf")), r"inf\.tif has 1 NaN or infinite pixel values"),
    "minus_inf.tif": (nonfinite_tiff(float("-inf")), r"minus_inf\.tif has 1 NaN or infinite pixel values"),
}


def write_hostile_image(folder: Path, name: str) -> Path:
    path = folder / name
    HOSTILE_IMAGES[name][0](path)
    return path


# ------------------------------------------------------------------ checkpoints
def random_bytes_in_the_middle(path: Path, count: int = 100) -> None:
    """Overwrite ``count`` bytes in the middle of a file (a bad disk block or a broken copy)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + count] = np.random.default_rng(0).bytes(count)
    path.write_bytes(bytes(data))


def bare_tensor(path: Path) -> None:
    """A loadable checkpoint file that holds a tensor instead of a dict."""
    torch.save(torch.zeros(3), path)


def _rewrite_weights(path: Path, change: Callable[[torch.Tensor], torch.Tensor]) -> None:
    state = torch.load(path, weights_only=True)
    torch.save({key: change(value) if value.is_floating_point() else value for key, value in state.items()}, path)


def nan_weights(path: Path) -> None:
    """A network file re-saved with every floating-point weight set to NaN (still a valid state dict)."""
    _rewrite_weights(path, lambda value: torch.full_like(value, float("nan")))


def changed_weights(path: Path) -> None:
    """A network file re-saved with finite but different weights: only its recorded digest tells."""
    _rewrite_weights(path, lambda value: value + 1)
