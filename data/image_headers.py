"""Image headers without decoding: size, channels and bit depth as ``util.image_io.read_image``
returns them, and the cheap start-up check the datasets run on every file (a few header bytes
per file; the full report is ``scripts/check_dataset.py``, in ``data/offline/dataset_check.py``).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from util.errors import BadImageError, UserError
from util.image_io import check_image_size

# What util.image_io.read_image returns for each Pillow mode: (channels, bits per sample).
_MODE_CHANNELS_BITS = {
    "1": (1, 8), "L": (1, 8), "LA": (1, 8), "La": (1, 8), "P": (3, 8), "PA": (3, 8), "RGB": (3, 8),
    "RGBA": (3, 8), "RGBa": (3, 8), "RGBX": (3, 8), "CMYK": (3, 8), "YCbCr": (3, 8), "LAB": (3, 8), "HSV": (3, 8),
    "I;16": (1, 16), "I;16B": (1, 16), "I;16L": (1, 16), "I;16N": (1, 16), "I": (1, 16), "F": (1, 32),
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageHeader:
    """Size and sample format of an image as ``util.image_io.read_image`` will return it."""

    width: int
    height: int
    channels: int
    bits: int  # 8, 16, or 32 for floating point

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def read_header(path: str | Path) -> ImageHeader:
    """Read an image's size, channels and bit depth from its header, without decoding it.

    Raises ``BadImageError`` for empty files, unreadable headers and images above
    ``util.image_io.MAX_IMAGE_PIXELS``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(26)
        if not start:
            raise BadImageError(f"{path} is empty (0 bytes); download it again or delete it", path)
        if start[:8] == _PNG_SIGNATURE and start[12:16] == b"IHDR" and len(start) == 26:
            header = _png_header(start)
        elif path.suffix.lower() in (".tif", ".tiff"):
            header = _tiff_header(path)
        else:
            with Image.open(path) as image:
                header = ImageHeader(*image.size, *_MODE_CHANNELS_BITS.get(image.mode, (3, 8)))
    except UserError:
        raise
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, tifffile.TiffFileError) as error:
        raise BadImageError(f"cannot read image {path}: {error}. Replace or remove the file", path) from None
    check_image_size(path, header.width, header.height)
    return header


def _png_header(start: bytes) -> ImageHeader:
    # Parsed directly (PNG is what the converters write, so the start-up check meets it most):
    # the IHDR chunk also gives the true depth of 16-bit colour, which Pillow reports as 8-bit RGB.
    width, height = struct.unpack(">II", start[16:24])
    depth, colour_type = start[24], start[25]
    if colour_type == 0:  # grey
        return ImageHeader(width, height, 1, 16 if depth == 16 else 8)
    if colour_type == 4:  # grey + alpha: read as 8-bit grey
        return ImageHeader(width, height, 1, 8)
    if colour_type in (2, 6):  # RGB, RGBA
        return ImageHeader(width, height, 3, 16 if depth == 16 else 8)
    return ImageHeader(width, height, 3, 8)  # palette, expanded to RGB


def _tiff_header(path: Path) -> ImageHeader:
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        shape, dtype = page.shape, np.dtype(page.dtype)
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
        shape = (shape[1], shape[2], shape[0])  # planar storage
    channels = shape[2] if len(shape) == 3 else 1
    channels = 1 if channels in (1, 2) else 3
    bits = 32 if dtype.kind == "f" else (8 if dtype.itemsize == 1 else 16)
    return ImageHeader(int(shape[1]), int(shape[0]), channels, bits)


def header_problem(path: Path) -> str | None:
    """Why the image's header cannot be read, or None when it can."""
    try:
        read_header(path)
    except UserError as error:
        return str(error)
    return None


def check_files_quickly(paths: Sequence[Path], what: str) -> None:
    """Fail with one message (a ``BadImageError`` naming the first file) when any file is empty,
    has no readable image header or is larger than ``util.image_io.MAX_IMAGE_PIXELS``.

    Reads a few header bytes per file (PNG headers are parsed directly), so datasets can
    afford it at every start-up; truncated files are still caught when they are decoded.
    """
    problems = [(path, problem) for path in paths if (problem := header_problem(path))]
    if problems:
        others = (f"; {len(problems) - 1} more of the {len(paths)} files of {what} cannot be used either "
                  f"(e.g. {problems[1][1]})" if len(problems) > 1 else "")
        raise BadImageError(f"{problems[0][1]}{others}. Run python scripts/check_dataset.py on the dataset folder "
                            f"for a full report, or pass --bad_image skip to leave such files out", problems[0][0])
