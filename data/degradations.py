"""Image degradations that turn high-resolution (HR) images into low-resolution (LR) inputs.

Every function works on float32 ``H x W x C`` arrays in [0, 1] (C = 1 or 3) and draws
every random choice from an explicit :class:`numpy.random.Generator`, so a degradation is
a pure function of the image and the generator's seed.

Two preset pipelines (``PRESETS``), each driven by a frozen dataclass of parameters:

* ``irsrgan``: IRSRGAN's random-order degradation. Two Gaussian blurs, two resize steps
  (random interpolation; together they reach the scale), Gaussian noise and JPEG, in a
  random order, then a final JPEG. IRSRGAN added positive-mean noise (mean 0.01), which
  brightens every degraded LR image; ``noise_mean`` defaults to 0 here.
* ``realesrgan``: Real-ESRGAN's second-order degradation (blur with a random kernel,
  random resize, Gaussian or Poisson noise, JPEG; twice; then a final sinc filter and
  resize in random order with the last JPEG) with its published parameter ranges.

Bit depth: JPEG is an 8-bit codec. :func:`jpeg_compress` therefore encodes the image
rounded to 8 bits and adds the codec's error (decoded - encoded) back onto the
full-precision image: for 8-bit data that is exactly an ordinary JPEG round trip, and for
16-bit data the blocking and ringing are applied without squashing the image to 256
levels. Quantising the final LR image to its source's bit depth is the caller's choice
(:func:`quantize`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Callable, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import special

RESIZE_MODES = ("area", "bilinear", "bicubic")
_CV2_INTERPOLATION = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
# Real-ESRGAN's blur kernel families, in the order of its kernel_prob list.
KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _with_channel_axis(result: np.ndarray) -> np.ndarray:
    """OpenCV returns ``H x W`` for single-channel input; keep ``H x W x C`` throughout."""
    return result[..., None] if result.ndim == 2 else result


# --------------------------------------------------------------------------- kernels


def bivariate_kernel(size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0,
                     beta: float = 1.0, plateau: bool = False) -> np.ndarray:
    """A ``size x size`` blur kernel (sum 1) of the bivariate Gaussian family.

    With covariance ``S`` (standard deviations ``sigma_x``, ``sigma_y`` along axes rotated by
    ``theta``) and ``q = x^T S^-1 x``: Gaussian ``exp(-q / 2)`` for ``beta = 1``, generalised
    Gaussian ``exp(-q^beta / 2)``, or plateau ``1 / (1 + q^beta)``.
    """
    sigma_y = sigma_x if sigma_y is None else sigma_y
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    covariance = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    offsets = np.arange(size) - (size - 1) / 2
    grid = np.stack(np.meshgrid(offsets, offsets, indexing="xy"), axis=-1)  # (..., [x, y])
    quadratic = np.einsum("...i,ij,...j->...", grid, np.linalg.inv(covariance), grid)
    kernel = 1.0 / (1.0 + quadratic**beta) if plateau else np.exp(-0.5 * quadratic**beta)
    return (kernel / kernel.sum()).astype(np.float32)


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Ideal circular low-pass filter with angular cutoff ``cutoff`` (radians/pixel), sum 1.

    The inverse Fourier transform of a disk: ``cutoff * J1(cutoff r) / (2 pi r)``, whose
    limit at ``r = 0`` is ``cutoff^2 / (4 pi)``. It reproduces ringing and overshoot.
    """
    offsets = np.arange(size) - (size - 1) / 2
    radius = np.hypot(*np.meshgrid(offsets, offsets))
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = np.where(radius > 0, cutoff * special.j1(cutoff * radius) / (2 * np.pi * radius),
                          cutoff**2 / (4 * np.pi))
    return (kernel / kernel.sum()).astype(np.float32)


def filter2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter every channel with ``kernel`` (reflected borders, as Real-ESRGAN pads), clipped
    to [0, 1] (a sinc kernel overshoots)."""
    filtered = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(_with_channel_axis(filtered), 0.0, 1.0)


def gaussian_blur(image: np.ndarray, size: int, sigma: float = 0.0) -> np.ndarray:
    """OpenCV's Gaussian blur; ``sigma = 0`` derives it from ``size`` (0.8 for 3x3)."""
    return _with_channel_axis(cv2.GaussianBlur(image, (size, size), sigma))


# --------------------------------------------------------------------------- resizing


def resize(image: np.ndarray, size_hw: tuple[int, int], mode: str) -> np.ndarray:
    """Resize without antialiasing (OpenCV ``area``/``bilinear``/``bicubic``), clipped to [0, 1]."""
    height, width = max(int(size_hw[0]), 1), max(int(size_hw[1]), 1)
    resized = cv2.resize(image, (width, height), interpolation=_CV2_INTERPOLATION[mode])
    return np.clip(_with_channel_axis(resized), 0.0, 1.0)


def downsample(image: np.ndarray, scale: int, mode: str = "bicubic") -> np.ndarray:
    """The clean LR image: antialiased ``bicubic``/``bilinear`` (like MATLAB's ``imresize``
    and PIL) or ``area`` (box average) downsampling by an integer ``scale``.

    The output is ``H // scale x W // scale``; pass an HR image cropped to a multiple of
    ``scale`` to keep LR and HR pixel grids aligned.
    """
    height, width = image.shape[0] // scale, image.shape[1] // scale
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    if mode == "area":
        tensor = F.interpolate(tensor, size=(height, width), mode="area")
    else:
        tensor = F.interpolate(tensor, size=(height, width), mode=mode, antialias=True, align_corners=False)
    return np.ascontiguousarray(tensor[0].numpy().transpose(1, 2, 0).clip(0.0, 1.0))


# --------------------------------------------------------------------------- noise and compression


def add_gaussian_noise(image: np.ndarray, rng: np.random.Generator, sigma: float, gray: bool = False,
                       mean: float = 0.0) -> np.ndarray:
    """Add ``N(mean, sigma^2)`` noise; ``gray`` uses one noise field for all channels."""
    shape = (*image.shape[:2], 1) if gray else image.shape
    noise = rng.normal(mean, sigma, shape).astype(np.float32)
    return np.clip(image + noise, 0.0, 1.0)


def add_poisson_noise(image: np.ndarray, rng: np.random.Generator, scale: float, gray: bool = False) -> np.ndarray:
    """Add shot noise as Real-ESRGAN does, amplified by ``scale``.

    The image is rounded to 8-bit levels; with ``n`` distinct levels, photon counts are
    ``Poisson(x * v) / v`` with ``v = 2^ceil(log2 n)``. ``gray`` draws the noise once from
    the luma and adds it to every channel.
    """
    source = image
    if gray and image.shape[2] == 3:
        source = _with_channel_axis(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    levels = np.round(source * 255.0) / 255.0
    vals = 2.0 ** math.ceil(math.log2(len(np.unique(levels))))
    noise = (rng.poisson(levels * vals) / vals - levels).astype(np.float32)
    return np.clip(image + scale * noise, 0.0, 1.0)


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Apply a JPEG round trip at ``quality`` (1-100) without losing bit depth.

    The image rounded to 8 bits is encoded and decoded with OpenCV; the codec's error is
    added to the full-precision image (see the module notes). Colour images are encoded as
    colour JPEGs (chroma subsampled), single-channel ones as greyscale JPEGs.
    """
    eight_bit = np.round(image * 255.0).astype(np.uint8)
    colour = image.shape[2] == 3
    encoded = cv2.cvtColor(eight_bit, cv2.COLOR_RGB2BGR) if colour else eight_bit
    ok, buffer = cv2.imencode(".jpg", encoded, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV could not JPEG-encode an image of shape {image.shape}")
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
    if colour:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    error = (_with_channel_axis(decoded).astype(np.float32) - eight_bit) / 255.0
    return np.clip(image + error, 0.0, 1.0)


def quantize(image: np.ndarray, levels: int | None) -> np.ndarray:
    """Round to ``levels + 1`` grey levels (255 for 8-bit data); ``None`` keeps the floats."""
    return image if levels is None else np.round(image * levels) / levels


# --------------------------------------------------------------------------- parameters


def _param(default: Any, help: str, check: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class IrsrganParams:
    """IRSRGAN's degradation (its scripts/img_degradation.py), with unbiased noise by default."""

    blur_size: int = _param(3, "Gaussian blur kernel size (odd); IRSRGAN uses 3x3", "odd_size")
    blur_sigma: float = _param(0.0, "Gaussian blur sigma; 0 derives it from the size (0.8 for 3x3), as IRSRGAN",
                               "nonnegative")
    resize_modes: tuple[str, ...] = _param(("bilinear", "bicubic", "area"),
                                           "interpolations drawn from for each of the two resize steps", "modes")
    noise_mean: float = _param(0.0, "mean of the Gaussian noise; IRSRGAN used 0.01, which brightens every "
                                    "degraded image")
    noise_sigma: float = _param(0.01, "standard deviation of the Gaussian noise (image range 0-1)", "nonnegative")
    jpeg_quality: tuple[int, int] = _param((70, 95), "JPEG quality LOW HIGH, drawn uniformly (inclusive)", "jpeg")


@dataclass(frozen=True)
class RealEsrganOrder:
    """One blur -> resize -> noise -> JPEG round of Real-ESRGAN's degradation."""

    blur_prob: float = _param(1.0, "probability of the blur step", "probability")
    kernel_range: tuple[int, int] = _param((7, 21), "blur kernel size range (odd sizes drawn uniformly)",
                                           "kernel_sizes")
    kernel_probs: tuple[float, ...] = _param((0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
                                             f"weights of the kernel families {', '.join(KERNEL_TYPES)}", "weights6")
    sinc_prob: float = _param(0.1, "probability of a sinc (ringing) kernel instead", "probability")
    blur_sigma: tuple[float, float] = _param((0.2, 3.0), "Gaussian kernel sigma range", "positive_range")
    betag_range: tuple[float, float] = _param((0.5, 4.0), "generalised Gaussian shape beta range", "positive_range")
    betap_range: tuple[float, float] = _param((1.0, 2.0), "plateau kernel shape beta range", "positive_range")
    resize_prob: tuple[float, float, float] = _param((0.2, 0.7, 0.1), "weights of resizing up, down, keep",
                                                     "weights3")
    resize_range: tuple[float, float] = _param((0.15, 1.5), "resize factor range", "positive_range")
    gaussian_noise_prob: float = _param(0.5, "probability of Gaussian (else Poisson) noise", "probability")
    noise_range: tuple[float, float] = _param((1.0, 30.0), "Gaussian noise sigma range, in 8-bit grey levels",
                                              "nonnegative_range")
    poisson_scale_range: tuple[float, float] = _param((0.05, 3.0), "Poisson noise scale range", "nonnegative_range")
    gray_noise_prob: float = _param(0.4, "probability that the noise is the same in every channel", "probability")
    jpeg_range: tuple[int, int] = _param((30, 95), "JPEG quality range", "jpeg")


@dataclass(frozen=True)
class RealEsrganParams:
    """Real-ESRGAN's second-order degradation (``train_realesrgan_x4plus.yml`` values)."""

    first: RealEsrganOrder = field(default=RealEsrganOrder(), metadata={"suffix": ""})
    second: RealEsrganOrder = field(
        default=RealEsrganOrder(blur_prob=0.8, blur_sigma=(0.2, 1.5), resize_prob=(0.3, 0.4, 0.3),
                                resize_range=(0.3, 1.2), noise_range=(1.0, 25.0), poisson_scale_range=(0.05, 2.5)),
        metadata={"suffix": "2"})
    final_sinc_prob: float = _param(0.8, "probability of the final sinc filter", "probability")


class ParameterSpec(NamedTuple):
    """One flattened parameter: its value, help text and validity check."""

    value: Any
    help: str
    check: str | None


def parameter_table(params: Any, suffix: str = "") -> dict[str, ParameterSpec]:
    """Flatten a parameter dataclass to ``{name: spec}``.

    Nested dataclasses (Real-ESRGAN's two orders) contribute their fields with the nested
    field's suffix: ``noise_range`` (first order) and ``noise_range2`` (second order), the
    names Real-ESRGAN's configuration files use.
    """
    table = {}
    for item in fields(params):
        value = getattr(params, item.name)
        if is_dataclass(value):
            table.update(parameter_table(value, suffix + item.metadata["suffix"]))
        else:
            table[item.name + suffix] = ParameterSpec(value, item.metadata["help"], item.metadata["check"])
    return table


def replace_parameters(params: Any, values: dict[str, Any], suffix: str = "") -> Any:
    """The inverse of :func:`parameter_table`: ``params`` with flattened ``values`` applied."""
    changes = {}
    for item in fields(params):
        value = getattr(params, item.name)
        if is_dataclass(value):
            changes[item.name] = replace_parameters(value, values, suffix + item.metadata["suffix"])
        elif item.name + suffix in values:
            new = values[item.name + suffix]
            changes[item.name] = tuple(new) if isinstance(value, tuple) else new
    return replace(params, **changes)


def _problem(check: str | None, value: Any) -> str | None:
    """Why ``value`` fails ``check``, or None when it is fine."""
    if check is None:
        return None
    if check == "probability":
        return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"
    if check == "nonnegative":
        return None if value >= 0 else "must not be negative"
    if check == "odd_size":
        return None if value >= 1 and value % 2 == 1 else "must be an odd kernel size"
    if check == "modes":
        return None if value and set(value) <= set(RESIZE_MODES) else f"must be some of {', '.join(RESIZE_MODES)}"
    if check.startswith("weights"):
        count = int(check[len("weights"):])
        if len(value) != count or min(value) < 0 or sum(value) <= 0:
            return f"needs {count} non-negative weights with a positive sum"
        return None
    low, high = value
    if low > high:
        return "needs LOW <= HIGH"
    bounds = {"positive_range": low > 0, "nonnegative_range": low >= 0, "jpeg": 1 <= low and high <= 100,
              "kernel_sizes": low >= 3 and low % 2 == 1 and high % 2 == 1}
    messages = {"positive_range": "must be positive", "nonnegative_range": "must not be negative",
                "jpeg": "qualities must be within 1-100", "kernel_sizes": "sizes must be odd and at least 3"}
    return None if bounds[check] else messages[check]


def check_parameters(params: Any) -> None:
    """Raise ``ValueError("<name> <problem>")`` for the first invalid parameter."""
    for name, spec in parameter_table(params).items():
        problem = _problem(spec.check, spec.value)
        if problem:
            raise ValueError(f"{name} {problem} (got {spec.value})")


# --------------------------------------------------------------------------- random draws


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _choose(rng: np.random.Generator, options: tuple, weights: tuple[float, ...] | None = None) -> Any:
    probabilities = None if weights is None else np.asarray(weights, float) / sum(weights)
    return options[int(rng.choice(len(options), p=probabilities))]


def _jpeg_quality(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _shape_beta(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A kernel shape: below or above 1 with equal probability when the range contains 1
    (as Real-ESRGAN), else uniform. (Real-ESRGAN's plateau range [1, 2] also gives exactly
    1 half of the time, a side effect of that rule which is not reproduced.)"""
    low, high = bounds
    if low < 1.0 < high:
        return _uniform(rng, (low, 1.0)) if rng.random() < 0.5 else _uniform(rng, (1.0, high))
    return _uniform(rng, bounds)


def random_kernel(rng: np.random.Generator, order: RealEsrganOrder) -> np.ndarray:
    """A blur kernel drawn as Real-ESRGAN does: random odd size, then a sinc kernel with
    ``sinc_prob``, else one of the :data:`KERNEL_TYPES` families with random sigma,
    rotation and shape."""
    size = 2 * int(rng.integers(order.kernel_range[0] // 2, order.kernel_range[1] // 2 + 1)) + 1
    if rng.random() < order.sinc_prob:
        return sinc_kernel(size, _random_cutoff(rng, size))
    family = _choose(rng, KERNEL_TYPES, order.kernel_probs)
    sigma_x = _uniform(rng, order.blur_sigma)
    if family.endswith("aniso"):
        sigma_y, theta = _uniform(rng, order.blur_sigma), _uniform(rng, (-math.pi, math.pi))
    else:
        sigma_y, theta = sigma_x, 0.0
    if family.startswith("generalized"):
        return bivariate_kernel(size, sigma_x, sigma_y, theta, _shape_beta(rng, order.betag_range))
    if family.startswith("plateau"):
        return bivariate_kernel(size, sigma_x, sigma_y, theta, _shape_beta(rng, order.betap_range), plateau=True)
    return bivariate_kernel(size, sigma_x, sigma_y, theta)


def _random_cutoff(rng: np.random.Generator, size: int) -> float:
    # Small kernels cannot represent low cutoffs, so Real-ESRGAN limits them to [pi/3, pi].
    return _uniform(rng, (math.pi / 3 if size < 13 else math.pi / 5, math.pi))


# --------------------------------------------------------------------------- pipelines


def irsrgan_degradation(image: np.ndarray, scale: int, params: IrsrganParams, rng: np.random.Generator) -> np.ndarray:
    """IRSRGAN's random-order degradation of an HR image to ``H // scale x W // scale``.

    Two blurs, two resize steps, noise and JPEG in a random order, then JPEG again. The
    first resize step goes to ``1 / sqrt(scale)`` of the size, the second to the LR size, so
    x4 is the seed's two halvings and x2/x3 follow the same pattern.
    """
    height, width = image.shape[:2]
    intermediate = (round(height / math.sqrt(scale)), round(width / math.sqrt(scale)))
    targets = [intermediate, (height // scale, width // scale)]
    operations = ["blur", "blur", "resize", "resize", "noise", "jpeg"]
    for index in rng.permutation(len(operations)):
        operation = operations[index]
        if operation == "blur":
            image = gaussian_blur(image, params.blur_size, params.blur_sigma)
        elif operation == "resize":
            image = resize(image, targets.pop(0), _choose(rng, params.resize_modes))
        elif operation == "noise":
            image = add_gaussian_noise(image, rng, params.noise_sigma, mean=params.noise_mean)
        else:
            image = jpeg_compress(image, _jpeg_quality(rng, params.jpeg_quality))
    return jpeg_compress(image, _jpeg_quality(rng, params.jpeg_quality))


def _noise(image: np.ndarray, rng: np.random.Generator, order: RealEsrganOrder) -> np.ndarray:
    gaussian = rng.random() < order.gaussian_noise_prob
    gray = rng.random() < order.gray_noise_prob
    if gaussian:
        return add_gaussian_noise(image, rng, _uniform(rng, order.noise_range) / 255.0, gray)
    return add_poisson_noise(image, rng, _uniform(rng, order.poisson_scale_range), gray)


def _realesrgan_order(image: np.ndarray, rng: np.random.Generator, order: RealEsrganOrder,
                      base_hw: tuple[int, int], compress: bool) -> np.ndarray:
    """Blur, resize relative to ``base_hw``, noise, and (if ``compress``) JPEG."""
    if rng.random() < order.blur_prob:
        image = filter2d(image, random_kernel(rng, order))
    direction = _choose(rng, ("up", "down", "keep"), order.resize_prob)
    factor = 1.0
    if direction == "up":
        factor = _uniform(rng, (1.0, order.resize_range[1]))
    elif direction == "down":
        factor = _uniform(rng, (order.resize_range[0], 1.0))
    image = resize(image, (int(base_hw[0] * factor), int(base_hw[1] * factor)), _choose(rng, RESIZE_MODES))
    image = _noise(image, rng, order)
    return jpeg_compress(image, _jpeg_quality(rng, order.jpeg_range)) if compress else image


def realesrgan_degradation(image: np.ndarray, scale: int, params: RealEsrganParams,
                           rng: np.random.Generator) -> np.ndarray:
    """Real-ESRGAN's second-order degradation of an HR image to ``H // scale x W // scale``.

    First order: blur, resize (relative to the HR size), noise, JPEG. Second order: blur
    (with ``blur_prob2``), resize (relative to the LR size), noise; then, in random order,
    [resize to the LR size + final sinc filter] and JPEG.
    """
    height, width = image.shape[:2]
    lr_hw = (height // scale, width // scale)
    image = _realesrgan_order(image, rng, params.first, (height, width), compress=True)
    image = _realesrgan_order(image, rng, params.second, lr_hw, compress=False)
    final_kernel = None
    if rng.random() < params.final_sinc_prob:
        first = params.first
        size = 2 * int(rng.integers(first.kernel_range[0] // 2, first.kernel_range[1] // 2 + 1)) + 1
        final_kernel = sinc_kernel(size, _uniform(rng, (math.pi / 3, math.pi)))

    def resize_and_sinc(current: np.ndarray) -> np.ndarray:
        current = resize(current, lr_hw, _choose(rng, RESIZE_MODES))
        return filter2d(current, final_kernel) if final_kernel is not None else current

    quality = _jpeg_quality(rng, params.second.jpeg_range)
    if rng.random() < 0.5:
        return jpeg_compress(resize_and_sinc(image), quality)
    return resize_and_sinc(jpeg_compress(image, quality))


class Preset(NamedTuple):
    """A degradation pipeline and its default parameters."""

    defaults: Any
    apply: Callable[[np.ndarray, int, Any, np.random.Generator], np.ndarray]


PRESETS: dict[str, Preset] = {
    "irsrgan": Preset(IrsrganParams(), irsrgan_degradation),
    "realesrgan": Preset(RealEsrganParams(), realesrgan_degradation),
}
