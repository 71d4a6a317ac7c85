"""Reading and writing infrared and visible images of any common bit depth.

Pillow squashes 16-bit colour images to 8 bit, so 16-bit colour PNGs are decoded with
OpenCV and TIFFs with tifffile; everything else goes through Pillow, whose ``load()``
detects truncated and corrupt files (OpenCV would silently return a partial image).

Images above ``MAX_IMAGE_PIXELS`` are refused from their header, before any pixel memory is
allocated, so a damaged or hostile header cannot exhaust memory.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import tifffile
import torch
from PIL import Image, UnidentifiedImageError

from util.errors import BadImageError, UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

BIT16_NORMALISATIONS = ("minmax", "fixed")

# Largest image read (width x height): 2**27 = 134,217,728 pixels, e.g. 11585 x 11585; as 3-channel
# float32 that is 1.6 GB. Infrared frames are far smaller; larger scenes should be tiled.
MAX_IMAGE_PIXELS = 2**27
# The limit above replaces Pillow's own (a warning at 89 MP, an error at 179 MP), so every
# reader refuses the same images with the same message.
Image.MAX_IMAGE_PIXELS = None

# ITU-R BT.601 luma weights, the same as Pillow's convert("L").
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def check_image_size(path: str | Path, width: int, height: int) -> None:
    """Refuse an image larger than ``MAX_IMAGE_PIXELS`` (called with the header's size)."""
    if width * height > MAX_IMAGE_PIXELS:
        raise BadImageError(
            f"image {path} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{MAX_IMAGE_PIXELS:,} (util.image_io.MAX_IMAGE_PIXELS); split it into tiles or remove it", path)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as an ``H x W x C`` array (C = 1 or 3) keeping its bit depth.

    Returns uint8, uint16 or float32 data. Alpha channels are dropped and palette images
    expanded to RGB. Any problem raises ``BadImageError`` naming the file.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            array = _read_tiff(path)
        else:
            array = _read_with_pillow(path)
    except UserError:
        raise
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, tifffile.TiffFileError) as error:
        raise BadImageError(f"cannot read image {path}: {error}. Replace or remove the file", path) from None
    return _as_hwc(array, path)


def _read_tiff(path: Path) -> np.ndarray:
    with tifffile.TiffFile(path) as tiff:
        shape = tiff.pages[0].shape
        planar = len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4)
        height, width = shape[1:3] if planar else shape[:2]
        check_image_size(path, int(width), int(height))
        array = tiff.asarray()
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # planar (C, H, W) storage
    return array


def _read_with_pillow(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        check_image_size(path, *image.size)
        image.load()  # forces a full decode so truncated files fail here
        if image.format == "PNG":
            _check_png_data(path)
        if image.mode in ("RGB", "RGBA") and image.format == "PNG" and _png_bit_depth(path) == 16:
            return _read_png16_colour(path)
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            return np.asarray(image, dtype=np.uint16)
        if image.mode == "I":  # Pillow's 32-bit container for 16-bit greyscale PNGs
            array = np.asarray(image)
            if array.min() < 0 or array.max() > 65535:
                raise BadImageError(f"cannot read image {path}: 32-bit integer images are not supported; convert it "
                                    f"to 16 bit", path)
            return array.astype(np.uint16)
        if image.mode == "F":
            return np.asarray(image, dtype=np.float32)
        if image.mode in ("1", "L", "LA"):
            return np.asarray(image.convert("L"))
        return np.asarray(image.convert("RGB"))


# Samples per pixel of each PNG colour type, and the Adam7 passes (x0, y0, dx, dy).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _check_png_data(path: Path) -> None:
    """Refuse a PNG whose compressed data ends before the rows its header declares: Pillow
    fills the missing rows with black without a word (a patched or damaged header)."""
    data = path.read_bytes()
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    bits = depth * _PNG_SAMPLES.get(colour, 1)
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    expected = sum(_ceil_div(height - y0, dy) * (1 + _ceil_div(_ceil_div(width - x0, dx) * bits, 8))
                   for x0, y0, dx, dy in passes if width > x0 and height > y0)  # a filter byte + pixels per row
    compressed, offset = bytearray(), 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"IDAT":
            compressed += data[offset + 8:offset + 8 + length]
        offset += 12 + length
    try:
        found = len(zlib.decompressobj().decompress(bytes(compressed), expected + 1))
    except zlib.error as error:
        raise BadImageError(f"cannot read image {path}: {error}. Replace or remove the file", path) from None
    if found < expected:
        raise BadImageError(f"cannot read image {path}: its pixel data ends after {found} of the {expected} bytes "
                            f"its header declares. Replace or remove the file", path)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as handle:
        header = handle.read(25)
    return header[24] if len(header) == 25 else 8  # IHDR bit-depth byte


def _read_png16_colour(path: Path) -> np.ndarray:
    array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise BadImageError(f"cannot read image {path}: OpenCV could not decode this 16-bit PNG. Replace or remove "
                            f"the file", path)
    channels = 3 if array.shape[2] >= 3 else 1
    return cv2.cvtColor(array[..., :3], cv2.COLOR_BGR2RGB) if channels == 3 else array[..., :1]


def _as_hwc(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise BadImageError(f"cannot read image {path}: unsupported shape {array.shape}; expected H x W x 1..4", path)
    if array.shape[2] == 2:  # grey + alpha
        array = array[..., :1]
    elif array.shape[2] == 4:  # colour + alpha
        array = array[..., :3]
    if array.dtype == np.uint8 or array.dtype == np.uint16:
        return np.ascontiguousarray(array)
    if array.dtype in (np.int16, np.int32, np.uint32, np.int64) and array.min() >= 0 and array.max() <= 65535:
        return np.ascontiguousarray(array.astype(np.uint16))
    if np.issubdtype(array.dtype, np.floating):
        # One NaN/Inf would make the image's min-max normalisation NaN everywhere.
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise BadImageError(f"image {path} has {bad} NaN or infinite pixel values; fix or remove the file "
                                f"(or pass --bad_image skip to leave it out)", path)
        return np.ascontiguousarray(array.astype(np.float32))
    raise BadImageError(f"cannot read image {path}: unsupported pixel type {array.dtype}", path)


def to_unit_range(
    array: np.ndarray, bit16_norm: str = "minmax", bit16_range: tuple[float, float] = (0.0, 65535.0)
) -> np.ndarray:
    """Map pixel values to float32 in [0, 1].

    8-bit data is divided by 255. 16-bit and float data (raw thermal counts or
    temperatures) is normalised either per image (``minmax``: its own minimum -> 0 and
    maximum -> 1) or with a fixed range (``fixed``: ``bit16_range`` low -> 0, high -> 1,
    clipped), which keeps absolute temperature levels comparable between images.
    """
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    values = array.astype(np.float32)
    if bit16_norm == "fixed":
        low, high = bit16_range
        return np.clip((values - low) / (high - low), 0.0, 1.0)
    if bit16_norm != "minmax":
        raise UserError(f"--bit16_norm must be one of {BIT16_NORMALISATIONS}, got {bit16_norm!r}")
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def convert_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """Convert an ``H x W x C`` float image to 1 (BT.601 luma) or 3 (replicated) channels."""
    have = array.shape[2]
    if have == channels:
        return array
    if channels == 1 and have == 3:
        return (array @ _LUMA_WEIGHTS)[..., None]
    if channels == 3 and have == 1:
        return np.repeat(array, 3, axis=2)
    raise UserError(f"cannot convert a {have}-channel image to {channels} channels; check --input_nc/--output_nc")


def tensor_to_image(tensor: torch.Tensor, bit16: bool = False) -> np.ndarray:
    """Convert a ``C x H x W`` tensor in [-1, 1] to uint8/uint16 ``H x W`` (C=1) or ``H x W x 3``.

    Values are clipped and rounded (not truncated), so no value wraps around.
    """
    if tensor.dim() != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"expected a 1- or 3-channel C x H x W tensor, got shape {tuple(tensor.shape)}")
    peak = 65535.0 if bit16 else 255.0
    unit = (tensor.detach().float().cpu().clamp(-1.0, 1.0) + 1.0) / 2.0
    array = torch.round(unit * peak).numpy().astype(np.uint16 if bit16 else np.uint8)
    return array[0] if array.shape[0] == 1 else np.ascontiguousarray(array.transpose(1, 2, 0))


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write an ``H x W`` (grey) or ``H x W x 3`` uint8/uint16 array as PNG/TIFF/JPEG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        if array.ndim == 3:
            if not cv2.imwrite(str(path), cv2.cvtColor(array, cv2.COLOR_RGB2BGR)):
                raise UserError(f"cannot write 16-bit colour image {path}; use a .png or .tif name")
            return
        Image.fromarray(array).save(path)  # Pillow stores uint16 greyscale as 16-bit PNG/TIFF
        return
    if array.dtype != np.uint8:
        raise ValueError(f"write_image expects uint8 or uint16 data, got {array.dtype}")
    Image.fromarray(array).save(path)
