"""Full-reference image quality metrics (PSNR, SSIM, RMSE) on batches of torch tensors.

The visible-to-infrared (V2IR) papers report per-image PSNR, SSIM and RMSE computed on
the 0..255 scale of the single-channel infrared images, averaged over the test images;
use ``data_range=255`` on 8-bit-valued tensors and :func:`summarize` to reproduce that.

Every metric takes ``pred`` and ``target`` shaped (N, C, H, W), (C, H, W) or (H, W), on any
device, and returns one float64 value per image, shape (N,). The results equal
scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` (see :func:`ssim`
for the two window conventions); computation is done in float64.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "psnr",
    "rmse",
    "ssim",
    "rgb_to_y",
    "compute_metrics",
    "summarize",
    "format_markdown_table",
    "METRIC_NAMES",
]

# BT.601 luma weights for R, G, B in [0, 1], giving Y in [16, 235] (MATLAB's rgb2ycbcr).
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)

_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_UNIFORM_WINDOW_SIZE = 7  # scikit-image's default window
_GAUSSIAN_TRUNCATE = 3.5  # scikit-image's truncation: sigma 1.5 gives an 11-tap window

# Outputs per block of the banded filter matrix: small blocks keep the matmuls from
# multiplying mostly zeros, large ones keep them efficient; 16 measured fastest on CPU.
_FILTER_BLOCK_ROWS = 16
# Images are filtered in chunks so that the five moment maps of a chunk stay in cache on
# CPU; on GPU the chunk only bounds memory.
_CHUNK_BYTES = {"cpu": 4 * 2**20, "cuda": 256 * 2**20}

METRIC_NAMES = ("psnr", "ssim", "rmse")
_PRECISION = {"psnr": 3, "ssim": 5, "rmse": 5}
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
    pred, target = pred.double().reshape(batch_shape), target.double().reshape(batch_shape)
    if y_channel and pred.shape[1] != 1:
        pred, target = rgb_to_y(pred, data_range), rgb_to_y(target, data_range)
    if crop_border:
        pred = pred[..., crop_border:-crop_border, crop_border:-crop_border]
        target = target[..., crop_border:-crop_border, crop_border:-crop_border]
    return pred, target


def _chunks(total: int, bytes_per_item: int, device: torch.device) -> list[slice]:
    """Slices of ``total`` items, each within the device's chunk budget; the first is the largest."""
    size = max(1, min(total, _CHUNK_BYTES.get(device.type, _CHUNK_BYTES["cuda"]) // bytes_per_item))
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def _mean_squared_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    chunks = _chunks(len(pred), pred[0].numel() * pred.element_size(), pred.device)
    # One reused buffer: a fresh large allocation per chunk costs page faults on CPU.
    difference = pred.new_empty(chunks[0].stop, *pred.shape[1:])
    return torch.cat([
        torch.sub(pred[chunk], target[chunk], out=difference[: len(pred[chunk])]).square_().mean(dim=(1, 2, 3))
        for chunk in chunks
    ])


def _psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float) -> torch.Tensor:
    # mse == 0 gives inf, as in scikit-image.
    return 10.0 * torch.log10(data_range**2 / _mean_squared_error(pred, target))


def _rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return _mean_squared_error(pred, target).sqrt()


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, shape (N,); inf for identical images."""
    _check_data_range(data_range)
    return _psnr(*_prepare(pred, target, data_range, crop_border, y_channel), data_range)


def rmse(pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Root-mean-square error per image, shape (N,), on the scale of the inputs."""
    # The luma offset cancels in the difference, so any data_range gives the same result.
    return _rmse(*_prepare(pred, target, 1.0, crop_border, y_channel))


def _ssim_kernel(window: str, window_size: int | None, sigma: float) -> tuple[torch.Tensor, float]:
    """1-D window weights (float64, CPU) and the covariance normalisation of a window choice."""
    if window == "gaussian":
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        size = window_size if window_size is not None else 2 * int(_GAUSSIAN_TRUNCATE * sigma + 0.5) + 1
        _check_window_size(size)
        offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
        return weights / weights.sum(), 1.0  # population covariance, as in Wang et al. 2004
    if window == "uniform":
        size = window_size if window_size is not None else _UNIFORM_WINDOW_SIZE
        _check_window_size(size)
        pixels = size * size
        return torch.full((size,), 1.0 / size, dtype=torch.float64), pixels / (pixels - 1)  # sample covariance
    raise ValueError(f"window must be 'gaussian' or 'uniform', got {window!r}")


def _check_window_size(size: int) -> None:
    if size < 3 or size % 2 == 0:
        raise ValueError(f"window_size must be an odd number >= 3, got {size}")


def _banded_block(kernel: torch.Tensor, rows: int) -> torch.Tensor:
    """(rows, rows + k - 1) matrix whose row i holds the k kernel weights starting at column i."""
    size = kernel.numel()
    block = kernel.new_zeros(rows, rows + size - 1)
    row_index = torch.arange(rows, device=kernel.device).unsqueeze(1)
    block[row_index, row_index + torch.arange(size, device=kernel.device)] = kernel
    return block


def _filter_rows(padded: torch.Tensor, block: torch.Tensor, out: torch.Tensor) -> None:
    """Set row r of ``out`` (R, W) to sum_j kernel[j] * padded[r + j]; ``padded`` has R + k - 1 rows.

    Each block of output rows is one small matmul with an overlapping, copy-free view of
    the input rows it needs.
    """
    rows_per_block, span = block.shape
    n_blocks, width = out.shape[0] // rows_per_block, out.shape[1]
    windows = padded.as_strided(
        (n_blocks, span, width), (rows_per_block * width, width, 1), padded.storage_offset()
    )
    torch.matmul(block, windows, out=out.view(n_blocks, rows_per_block, width))


def _filter_columns(padded: torch.Tensor, block: torch.Tensor, out: torch.Tensor) -> None:
    """Set out[b, r, c] to sum_j kernel[j] * padded[r, b * T + c + j], T being the block size.

    Leaving the result in this column-block-major order, rather than row-major, avoids a copy.
    """
    columns_per_block, span = block.shape
    n_blocks, rows, _ = out.shape
    width = padded.shape[1]
    windows = padded.as_strided((n_blocks, rows, span), (columns_per_block, width, 1), padded.storage_offset())
    torch.bmm(windows, block.T.expand(n_blocks, span, columns_per_block), out=out)


def _padded_moments_shape(planes: int, height: int, width: int, kernel_size: int) -> tuple[int, int]:
    """Rows and columns of the zero-padded buffer holding the five moment maps of ``planes``."""
    block = _FILTER_BLOCK_ROWS
    row_blocks = -(-5 * planes * height // block)
    column_blocks = -(-(width - kernel_size + 1) // block)
    return row_blocks * block + kernel_size - 1, column_blocks * block + kernel_size - 1


def _ssim_per_plane(
    pred: torch.Tensor,
    target: torch.Tensor,
    block: torch.Tensor,
    data_range: float,
    covariance_norm: float,
    workspace: torch.Tensor,
) -> torch.Tensor:
    """Mean SSIM over the valid region of each (H, W) plane of two (P, H, W) tensors.

    ``workspace`` holds two flat buffers of the padded moments' size, reused across chunks
    because on CPU every fresh large allocation costs page faults.
    """
    planes, height, width = pred.shape
    block_size, span = block.shape
    kernel_size = span - block_size + 1
    valid_height, valid_width = height - kernel_size + 1, width - kernel_size + 1
    padded_height, padded_width = _padded_moments_shape(planes, height, width, kernel_size)
    n_rows = 5 * planes * height
    filtered_height = padded_height - kernel_size + 1
    column_blocks = (padded_width - kernel_size + 1) // block_size
    front, back = workspace

    # The five maps of all planes are stacked as one tall image and filtered together.
    # Outputs whose window straddles two planes, or reaches into the padding, are
    # discarded below; that costs far less than filtering each map separately.
    padded = front[: padded_height * padded_width].view(padded_height, padded_width)
    # The block matmuls multiply padding by zero weights, so it must hold finite values.
    padded[n_rows:] = 0
    padded[:n_rows, width:] = 0
    moments = padded[:n_rows].view(5, planes, height, padded_width)[..., :width]
    moments[0], moments[1] = pred, target
    torch.mul(pred, pred, out=moments[2])
    torch.mul(target, target, out=moments[3])
    torch.mul(pred, target, out=moments[4])
    filtered_rows = back[: filtered_height * padded_width].view(filtered_height, padded_width)
    _filter_rows(padded, block, out=filtered_rows)
    filtered = front[: column_blocks * filtered_height * block_size].view(column_blocks, filtered_height, block_size)
    _filter_columns(filtered_rows, block, out=filtered)
    # Maps shaped (column block, plane, row, column in block).
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = (
        filtered[:, :n_rows].view(column_blocks, 5, planes, height, block_size)[:, :, :, :valid_height].unbind(1)
    )

    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    # SSIM = (2 mx my + c1)(2 cov + c2) / ((mx^2 + my^2 + c1)(var_x + var_y + c2)), computed in
    # place over the filtered maps: memory traffic, not arithmetic, bounds the speed here.
    product_of_means = torch.mul(mean_x, mean_y, out=back[: mean_x.numel()].view(mean_x.shape))
    covariance_term = mean_xy.sub_(product_of_means).mul_(2 * covariance_norm).add_(c2)
    sum_of_squared_means = mean_x.square_().addcmul_(mean_y, mean_y)
    variance_term = mean_xx.add_(mean_yy).sub_(sum_of_squared_means).mul_(covariance_norm).add_(c2)
    numerator = product_of_means.mul_(2).add_(c1).mul_(covariance_term)
    denominator = sum_of_squared_means.add_(c1).mul_(variance_term)
    ssim_map = numerator.div_(denominator)

    last_block_width = valid_width - (column_blocks - 1) * block_size
    total = ssim_map[:-1].sum(dim=(0, 2, 3)) + ssim_map[-1, :, :, :last_block_width].sum(dim=(1, 2))
    return total / (valid_height * valid_width)


def _ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float,
    window: str,
    window_size: int | None,
    sigma: float,
) -> torch.Tensor:
    kernel, covariance_norm = _ssim_kernel(window, window_size, sigma)
    batch, channels, height, width = pred.shape
    kernel_size = kernel.numel()
    if min(height, width) < kernel_size:
        raise ValueError(
            f"image of {height}x{width} pixels (after crop_border) is smaller than the "
            f"{kernel_size}x{kernel_size} SSIM window; pass a smaller odd window_size"
        )
    block = _banded_block(kernel.to(pred.device), _FILTER_BLOCK_ROWS)
    pred_planes = pred.reshape(batch * channels, height, width)
    target_planes = target.reshape(batch * channels, height, width)
    # A NaN or inf pixel would leak through the zero weights of the shared matmuls into
    # other planes; such planes are computed on zeros instead and reported as NaN, which is
    # what scikit-image gives for them. (Barring overflow, a plane's sum is finite iff its pixels are.)
    finite = torch.isfinite(pred_planes.sum(dim=(1, 2)) + target_planes.sum(dim=(1, 2)))
    if not finite.all():
        pred_planes = pred_planes.where(finite.view(-1, 1, 1), 0.0)
        target_planes = target_planes.where(finite.view(-1, 1, 1), 0.0)

    chunks = _chunks(batch * channels, 5 * height * width * pred.element_size(), pred.device)
    workspace = pred.new_empty(2, math.prod(_padded_moments_shape(chunks[0].stop, height, width, kernel_size)))
    per_plane = torch.cat([
        _ssim_per_plane(pred_planes[chunk], target_planes[chunk], block, data_range, covariance_norm, workspace)
        for chunk in chunks
    ])
    return per_plane.masked_fill(~finite, math.nan).view(batch, channels).mean(dim=1)


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
    pred, target = _prepare(pred, target, data_range, crop_border, y_channel)
    return _ssim(pred, target, data_range, window, window_size, sigma)


def compute_metrics(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float,
    names: Sequence[str] = METRIC_NAMES,
    crop_border: int = 0,
    y_channel: bool = False,
    window: str = "gaussian",
    window_size: int | None = None,
    sigma: float = 1.5,
) -> dict[str, torch.Tensor]:
    """Several metrics of one batch, each shaped (N,), preparing the images only once."""
    unknown = [name for name in names if name not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRIC_NAMES)}")
    _check_data_range(data_range)
    pred, target = _prepare(pred, target, data_range, crop_border, y_channel)
    compute = {
        "psnr": lambda: _psnr(pred, target, data_range),
        "ssim": lambda: _ssim(pred, target, data_range, window, window_size, sigma),
        "rmse": lambda: _rmse(pred, target),
    }
    return {name: compute[name]() for name in names}


def summarize(per_image: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """(mean, population standard deviation) over images of each metric."""
    summary = {}
    for name, values in per_image.items():
        values = torch.as_tensor(values, dtype=torch.float64).flatten()
        if values.numel() == 0:
            raise ValueError(f"no values for metric {name!r}")
        summary[name] = (values.mean().item(), values.std(correction=0).item())
    return summary


def _format_cell(name: str, mean: float, std: float) -> str:
    digits = _PRECISION.get(name.lower(), _DEFAULT_PRECISION)
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
