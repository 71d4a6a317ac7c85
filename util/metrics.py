"""Full-reference image quality metrics (PSNR, SSIM, RMSE) on batches of torch tensors.

The visible-to-infrared (V2IR) papers report per-image PSNR, SSIM and RMSE computed on
the 0..255 scale of the single-channel infrared images, averaged over the test images;
use ``data_range=255`` on 8-bit-valued tensors and :func:`summarize` to reproduce that.

Every metric takes ``pred`` and ``target`` shaped (N, C, H, W), (C, H, W) or (H, W), on any
device, and returns one float64 value per image, shape (N,). The results equal
scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` (see :func:`ssim`
for the two window conventions); computation is done in float64.

``psnr_y`` and ``ssim_y`` are the super-resolution papers' convention (BasicSR, ESRGAN,
IRSRGAN): PSNR and SSIM of the BT.601 luma Y in [16, 235] (MATLAB's ``rgb2ycbcr``); a grey
image is the grey value in all three channels, so its Y is 16 + 219 g / 255. Y compresses the
range by 219/255, so ``psnr_y`` is about 1.32 dB above ``psnr`` on grey images.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from util.metric_kernels import SSIMWindow, plane_statistics

__all__ = [
    "psnr",
    "rmse",
    "ssim",
    "rgb_to_y",
    "luma_y",
    "compute_metrics",
    "summarize",
    "format_markdown_table",
    "precision",
    "METRIC_NAMES",
]

# BT.601 luma weights for R, G, B in [0, 1], giving Y in [16, 235] (MATLAB's rgb2ycbcr).
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)

_UNIFORM_WINDOW_SIZE = 7  # scikit-image's default window
_GAUSSIAN_TRUNCATE = 3.5  # scikit-image's truncation: sigma 1.5 gives an 11-tap window

METRIC_NAMES = ("psnr", "ssim", "rmse", "psnr_y", "ssim_y")
_DEFAULT_NAMES = ("psnr", "ssim", "rmse")  # the V2IR papers' trio
_Y_METRICS = {"psnr_y": "psnr", "ssim_y": "ssim"}  # computed like their plain twin, on luma_y
_PRECISION = {"psnr": 3, "ssim": 5, "rmse": 5, "psnr_y": 3, "ssim_y": 5}
_DEFAULT_PRECISION = 4


def _check_image(image: torch.Tensor, name: str) -> None:
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype, got {image.dtype}; convert it with .float()")
    if image.dim() not in (2, 3, 4):
        raise ValueError(f"{name} must be shaped (N, C, H, W), (C, H, W) or (H, W), got {tuple(image.shape)}")


def _check_data_range(data_range: float) -> None:
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")


def rgb_to_y(img: torch.Tensor, data_range: float) -> torch.Tensor:
    """BT.601 luma of RGB images (channel dimension -3), in MATLAB's ``rgb2ycbcr`` convention.

    Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1], i.e. Y in [16, 235] / 255,
    returned on the input's ``data_range`` with a channel dimension of size 1.
    """
    if not img.is_floating_point():
        raise ValueError(f"img must have a floating-point dtype, got {img.dtype}")
    if img.dim() < 3 or img.shape[-3] != 3:
        raise ValueError(f"rgb_to_y needs 3 channels in dimension -3, got shape {tuple(img.shape)}")
    _check_data_range(data_range)
    weights = torch.tensor(_Y_WEIGHTS, dtype=img.dtype, device=img.device).view(3, 1, 1)
    luma = (img * weights).sum(dim=-3, keepdim=True) / 255.0
    return luma + _Y_OFFSET / 255.0 * data_range


def luma_y(img: torch.Tensor, data_range: float) -> torch.Tensor:
    """BT.601 luma Y in [16, 235] / 255 of grey (1-channel, as if copied to RGB) or RGB images
    (channel dimension -3) on the input's ``data_range``."""
    if img.dim() >= 3 and img.shape[-3] == 1:
        _check_data_range(data_range)
        return img * (sum(_Y_WEIGHTS) / 255.0) + _Y_OFFSET / 255.0 * data_range
    return rgb_to_y(img, data_range)


def _prepare(
    pred: torch.Tensor, target: torch.Tensor, data_range: float, crop_border: int, y_channel: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a pair, convert it to float64 (N, C, H, W), take luma and crop the border."""
    _check_image(pred, "pred")
    _check_image(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(f"pred and target must be on the same device, got {pred.device} and {target.device}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    height, width = pred.shape[-2:]
    if 2 * crop_border >= min(height, width):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {height}x{width} image")
    batch_shape = (1,) * (4 - pred.dim()) + tuple(pred.shape)  # (H, W) and (C, H, W) -> (N, C, H, W)
    pred = pred.detach().double().reshape(batch_shape)
    target = target.detach().double().reshape(batch_shape)
    if y_channel and pred.shape[1] != 1:
        pred, target = rgb_to_y(pred, data_range), rgb_to_y(target, data_range)
    if crop_border:
        pred = pred[..., crop_border:-crop_border, crop_border:-crop_border]
        target = target[..., crop_border:-crop_border, crop_border:-crop_border]
    return pred, target


def _per_image(per_plane: torch.Tensor, channels: int) -> torch.Tensor:
    """Mean over the channels of each image; planes come image by image."""
    return per_plane.view(-1, channels).mean(dim=1)


def _psnr_from_mse(mse: torch.Tensor, data_range: float) -> torch.Tensor:
    # mse == 0 gives inf, as in scikit-image.
    return 10.0 * torch.log10(data_range**2 / mse)


def _statistics(
    pred: torch.Tensor, target: torch.Tensor, data_range: float, window: SSIMWindow | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-image mean squared error and (given a window) SSIM of prepared (N, C, H, W) batches."""
    batch, channels, height, width = pred.shape
    if window is not None and min(height, width) < window.size:
        raise ValueError(
            f"image of {height}x{width} pixels (after crop_border) is smaller than the "
            f"{window.size}x{window.size} SSIM window; pass a smaller odd window_size"
        )
    planes = (batch * channels, height, width)
    mse, ssim_values = plane_statistics(pred.reshape(planes), target.reshape(planes), data_range, window)
    return _per_image(mse, channels), None if ssim_values is None else _per_image(ssim_values, channels)


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, shape (N,); inf for identical images."""
    _check_data_range(data_range)
    mse, _ = _statistics(*_prepare(pred, target, data_range, crop_border, y_channel), data_range, None)
    return _psnr_from_mse(mse, data_range)


def rmse(pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Root-mean-square error per image, shape (N,), on the scale of the inputs."""
    # The luma offset cancels in the difference, so any data_range gives the same result.
    mse, _ = _statistics(*_prepare(pred, target, 1.0, crop_border, y_channel), 1.0, None)
    return mse.sqrt()


def _ssim_window(window: str, window_size: int | None, sigma: float) -> SSIMWindow:
    """The 1-D weights and covariance normalisation of a window choice."""
    if window == "gaussian":
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        size = window_size if window_size is not None else 2 * int(_GAUSSIAN_TRUNCATE * sigma + 0.5) + 1
        _check_window_size(size)
        offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
        return SSIMWindow(weights / weights.sum(), 1.0)  # population covariance, as in Wang et al. 2004
    if window == "uniform":
        size = window_size if window_size is not None else _UNIFORM_WINDOW_SIZE
        _check_window_size(size)
        pixels = size * size
        weights = torch.full((size,), 1.0 / size, dtype=torch.float64)
        return SSIMWindow(weights, pixels / (pixels - 1))  # sample covariance, scikit-image's default
    raise ValueError(f"window must be 'gaussian' or 'uniform', got {window!r}")


def _check_window_size(size: int) -> None:
    if size < 3 or size % 2 == 0:
        raise ValueError(f"window_size must be an odd number >= 3, got {size}")


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
    window: str = "gaussian",
    window_size: int | None = None,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Structural similarity per image, shape (N,), averaged over channels.

    ``window="gaussian"``: Gaussian weights (11x11 for sigma 1.5) and population covariance,
    equal to ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=...)`` (Wang et al. 2004).
    ``window="uniform"``: a 7x7 box window and sample covariance, equal to scikit-image's
    default ``structural_similarity(..., data_range=...)``.
    ``window_size`` overrides the window's side (odd); for the Gaussian window scikit-image
    keeps its 3.5-sigma support instead, so the two agree only for the default size.
    Like scikit-image, the SSIM map is averaged only where the window lies inside the image.
    """
    _check_data_range(data_range)
    ssim_window = _ssim_window(window, window_size, sigma)
    _, values = _statistics(*_prepare(pred, target, data_range, crop_border, y_channel), data_range, ssim_window)
    return values


def compute_metrics(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float,
    names: Sequence[str] = _DEFAULT_NAMES,
    crop_border: int = 0,
    y_channel: bool = False,
    window: str = "gaussian",
    window_size: int | None = None,
    sigma: float = 1.5,
) -> dict[str, torch.Tensor]:
    """Several metrics of one batch, each shaped (N,), in one pass over the images."""
    unknown = [name for name in names if name not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRIC_NAMES)}")
    _check_data_range(data_range)
    plain = [name for name in names if name not in _Y_METRICS]
    on_luma = [_Y_METRICS[name] for name in names if name in _Y_METRICS]
    values = _plain_metrics(pred, target, data_range, plain, crop_border, y_channel, window, window_size, sigma)
    if on_luma:
        _check_image(pred, "pred")
        _check_image(target, "target")
        luma = _plain_metrics(luma_y(pred.double(), data_range), luma_y(target.double(), data_range), data_range,
                              on_luma, crop_border, False, window, window_size, sigma)
        values.update({f"{name}_y": value for name, value in luma.items()})
    return {name: values[name] for name in names}


def _plain_metrics(
    pred: torch.Tensor, target: torch.Tensor, data_range: float, names: Sequence[str], crop_border: int,
    y_channel: bool, window: str, window_size: int | None, sigma: float,
) -> dict[str, torch.Tensor]:
    if not names:
        return {}
    ssim_window = _ssim_window(window, window_size, sigma) if "ssim" in names else None
    mse, ssim_values = _statistics(*_prepare(pred, target, data_range, crop_border, y_channel), data_range, ssim_window)
    computed = {"psnr": lambda: _psnr_from_mse(mse, data_range), "ssim": lambda: ssim_values, "rmse": mse.sqrt}
    return {name: computed[name]() for name in names}


def summarize(per_image: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """(mean, population standard deviation) over images of each metric."""
    summary = {}
    for name, values in per_image.items():
        values = torch.as_tensor(values, dtype=torch.float64).flatten()
        if values.numel() == 0:
            raise ValueError(f"no values for metric {name!r}")
        summary[name] = (values.mean().item(), values.std(correction=0).item())
    return summary


def precision(name: str) -> int:
    """Decimals a metric is reported with: PSNR 3, SSIM and RMSE 5 (as in the V2IR papers), others 4."""
    return _PRECISION.get(name.lower(), _DEFAULT_PRECISION)


def _format_cell(name: str, mean: float, std: float) -> str:
    digits = precision(name)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_markdown_table(rows: dict[str, dict[str, tuple[float, float]]], row_header: str = "Method") -> str:
    """Markdown table of "mean ± std" cells: one row per method or split, one column per metric.

    Precision follows the V2IR papers: PSNR 3 decimals, SSIM and RMSE 5; other metrics 4.
    Columns appear in first-seen order; a metric a row lacks is shown as "-".
    """
    columns: list[str] = []
    for metrics in rows.values():
        columns.extend(name for name in metrics if name not in columns)
    lines = [
        "| " + " | ".join([row_header, *(name.upper() for name in columns)]) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|",
    ]
    for row_name, metrics in rows.items():
        cells = [_format_cell(name, *metrics[name]) if name in metrics else "-" for name in columns]
        lines.append("| " + " | ".join([row_name, *cells]) + " |")
    return "\n".join(lines) + "\n"
