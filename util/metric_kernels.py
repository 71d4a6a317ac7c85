"""Per-plane mean squared error and mean SSIM: the computational core behind util.metrics.

Inputs are float64 stacks of planes shaped (P, H, W), one plane per image channel. SSIM's
separable window filter runs as small banded-matrix products over all moment maps of a chunk
of planes at once. The rest is memory-bound, so planes go through in cache-sized chunks
with buffers reused across chunks. On CPU the chunks are shared among single-threaded
workers, one per torch thread: multi-threaded ops synchronise their threads every few
microseconds, and on a machine busy with other processes each of those barriers waits
for a descheduled thread (measured here under load: medians 2-9x slower than with
independent workers), while independent workers degrade gracefully.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

SSIM_K1 = 0.01
SSIM_K2 = 0.03
# Filtered maps per plane: x, y, x^2 + y^2 and xy (SSIM needs only the sum of the two variances).
_MOMENT_MAPS = 4
# Outputs per block of the banded filter matrix: each output costs (block + window - 1)
# multiply-adds instead of window, but tiny blocks make inefficient matmuls; 8 measured
# fastest on CPU (AVX-512: one register of float64).
_FILTER_BLOCK = 8
# Planes are processed in chunks of about this many bytes of moment maps per worker.
_CHUNK_BYTES = {"cpu": 2 * 2**20, "cuda": 256 * 2**20}


@dataclass(frozen=True)
class SSIMWindow:
    """A separable SSIM window: 1-D weights summing to 1 (float64) and the covariance normalisation
    (1 for population covariance, n / (n - 1) for sample covariance over n window pixels)."""

    weights: torch.Tensor
    covariance_norm: float

    @property
    def size(self) -> int:
        return self.weights.numel()


@dataclass(frozen=True)
class _SSIMFilter:
    """An SSIM window prepared for one device and data range."""

    block: torch.Tensor  # (_FILTER_BLOCK, _FILTER_BLOCK + size - 1) banded matrix of the weights
    covariance_norm: float
    c1: torch.Tensor  # 0-dim tensors, operands of fused ops
    moment_offset: torch.Tensor  # c2 + covariance_norm * c1, see _chunk_ssim

    @staticmethod
    def create(window: SSIMWindow, data_range: float, device: torch.device) -> _SSIMFilter:
        c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
        block = _banded_block(window.weights.to(device), _FILTER_BLOCK)
        norm = window.covariance_norm

        def scalar(value: float) -> torch.Tensor:
            return torch.tensor(value, dtype=torch.float64, device=device)

        return _SSIMFilter(block, norm, scalar(c1), scalar(c2 + norm * c1))


def plane_statistics(
    pred: torch.Tensor, target: torch.Tensor, data_range: float, window: SSIMWindow | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean squared error and, given a window, mean SSIM of each plane of two (P, H, W) float64 stacks.

    SSIM is averaged where the window lies inside the plane (scikit-image's convention); a
    plane with a NaN or infinite pixel gets NaN without affecting the others.
    """
    planes, height, width = pred.shape
    ssim_filter = None if window is None else _SSIMFilter.create(window, data_range, pred.device)
    maps = 1 if window is None else _MOMENT_MAPS
    chunk = max(1, _CHUNK_BYTES.get(pred.device.type, _CHUNK_BYTES["cuda"]) // (maps * height * width * 8))
    workers = min(torch.get_num_threads(), planes) if pred.device.type == "cpu" else 1

    def run(planes_of_worker: range) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        workspace = _Workspace()
        return [
            _chunk_statistics(pred[start:stop], target[start:stop], ssim_filter, workspace)
            for start, stop in _chunk_bounds(planes_of_worker, chunk)
        ]

    shares = [range(planes * i // workers, planes * (i + 1) // workers) for i in range(workers)]
    per_chunk = [result for results in _map_in_workers(run, shares) for result in results]
    mse = torch.cat([squared_errors for squared_errors, _ in per_chunk]) / (height * width)
    if window is None:
        return mse, None
    valid_pixels = (height - window.size + 1) * (width - window.size + 1)
    return mse, torch.cat([ssim_sums for _, ssim_sums in per_chunk]) / valid_pixels


def _chunk_bounds(planes: range, chunk: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk, planes.stop)) for start in range(planes.start, planes.stop, chunk)]


class _Workspace:
    """Flat float64 buffers reused across the chunks of one worker (on CPU every fresh large
    allocation costs page faults), grown on demand."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, numel: int, like: torch.Tensor) -> torch.Tensor:
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < numel:
            # Zero-filled: padding that is never written must hold finite values (see _chunk_ssim).
            buffer = self._buffers[name] = like.new_zeros(numel)
        return buffer[:numel]


def _chunk_statistics(
    pred: torch.Tensor, target: torch.Tensor, ssim_filter: _SSIMFilter | None, workspace: _Workspace
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sums of squared differences and (given a filter) of SSIM map values, per plane."""
    if ssim_filter is None:
        return _squared_error_sums(pred, target, workspace), None
    ssim_sums, pred_copy, target_copy = _chunk_ssim(pred, target, ssim_filter, workspace)
    squared_error_sums = _squared_error_sums(pred_copy, target_copy, workspace)  # from the copies, still in cache
    if not torch.isfinite(ssim_sums).all():
        # A NaN or inf pixel leaks through the zero weights of the shared matmuls into the other
        # planes of the chunk: recompute with such planes zeroed, then report them as NaN, which
        # is what scikit-image gives for them. (Barring overflow, a plane's sum is finite iff its pixels are.)
        planes = len(pred)
        finite = torch.isfinite(pred.sum(dim=(1, 2)) + target.sum(dim=(1, 2))).view(planes, 1, 1)
        if not finite.all():
            ssim_sums, _, _ = _chunk_ssim(pred.where(finite, 0.0), target.where(finite, 0.0), ssim_filter, workspace)
            ssim_sums = ssim_sums.masked_fill(~finite.view(planes), math.nan)
    return squared_error_sums, ssim_sums


def _squared_error_sums(pred: torch.Tensor, target: torch.Tensor, workspace: _Workspace) -> torch.Tensor:
    planes = len(pred)
    difference = workspace.get("difference", pred.numel(), pred)
    torch.sub(pred, target, out=difference.view(pred.shape))
    difference = difference.view(planes, 1, -1)
    return torch.bmm(difference, difference.transpose(1, 2)).view(planes)  # dot products: one pass


def _chunk_ssim(
    pred: torch.Tensor, target: torch.Tensor, ssim_filter: _SSIMFilter, workspace: _Workspace
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum of the SSIM map over the valid region of each (H, W) plane of two (P, H, W) tensors,
    and the workspace copies of the two tensors."""
    planes, height, width = pred.shape
    block = ssim_filter.block
    block_size, span = block.shape
    window_size = span - block_size + 1
    valid_height, valid_width = height - window_size + 1, width - window_size + 1
    n_rows = _MOMENT_MAPS * planes * height
    row_blocks, column_blocks = -(-n_rows // block_size), -(-valid_width // block_size)
    filtered_height = row_blocks * block_size
    padded_height, padded_width = filtered_height + window_size - 1, column_blocks * block_size + window_size - 1
    norm, c1, offset = ssim_filter.covariance_norm, ssim_filter.c1, ssim_filter.moment_offset

    # The moment maps of all planes are stacked as one tall image and filtered together.
    # Outputs whose window straddles two planes, or reaches into the padding, are discarded
    # below; that costs far less than filtering each map separately. The block matmuls
    # multiply padding by zero weights, so it must hold finite values: the columns beyond
    # the width are never written (zero since allocation); rows beyond the maps are zeroed
    # because a previous, larger chunk left its maps there.
    padded = workspace.get("moments", padded_height * padded_width, pred).view(padded_height, padded_width)
    padded[n_rows:] = 0
    moments = padded[:n_rows].view(_MOMENT_MAPS, planes, height, padded_width)[..., :width]
    moments[0], moments[1] = pred, target
    pred, target = moments[0], moments[1]  # later passes read these cache-resident copies
    # With n the covariance normalisation, SSIM = (2 mx my + c1)(n (2 Exy - 2 mx my) + c2) /
    # ((mx^2 + my^2 + c1)(n (Exx + Eyy - mx^2 - my^2) + c2)). The second-moment maps are scaled
    # and offset before filtering (the window weights sum to 1), so that the variance and
    # covariance terms each take one pass from the luminance terms afterwards: memory
    # traffic, not arithmetic, bounds the speed here.
    torch.addcmul(offset, pred, pred, value=norm, out=moments[2]).addcmul_(target, target, value=norm)
    torch.addcmul(offset, pred, target, value=2 * norm, out=moments[3])
    filtered_rows = workspace.get("rows", filtered_height * padded_width, pred).view(filtered_height, padded_width)
    _filter_rows(padded, block, out=filtered_rows)
    filtered = workspace.get("columns", column_blocks * filtered_height * block_size, pred)
    filtered = filtered.view(column_blocks, filtered_height, block_size)
    _filter_columns(filtered_rows, block, out=filtered)
    # Maps shaped (column block, plane, row, column in block).
    mean_x, mean_y, squares, products = (
        filtered[:, :n_rows].view(column_blocks, _MOMENT_MAPS, planes, height, block_size)[:, :, :, :valid_height]
        .unbind(1)
    )

    scratch = filtered_rows.view(-1)[: mean_x.numel()].view(mean_x.shape)
    luminance_numerator = torch.addcmul(c1, mean_x, mean_y, value=2, out=scratch)  # 2 mx my + c1
    covariance_term = products.add_(luminance_numerator, alpha=-norm)
    luminance_denominator = torch.addcmul(c1, mean_x, mean_x, out=mean_x).addcmul_(mean_y, mean_y)
    variance_term = squares.add_(luminance_denominator, alpha=-norm)
    ssim_map = luminance_numerator.mul_(covariance_term).div_(luminance_denominator.mul_(variance_term))

    last_block_width = valid_width - (column_blocks - 1) * block_size
    sums = ssim_map[:-1].sum(dim=(0, 2, 3)) + ssim_map[-1, :, :, :last_block_width].sum(dim=(1, 2))
    return sums, pred, target


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


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _forget_pool() -> None:
    # A forked child (a DataLoader worker, say) inherits the pool object but not its threads.
    global _pool, _pool_lock, _pool_size
    _pool, _pool_lock, _pool_size = None, threading.Lock(), 0


os.register_at_fork(after_in_child=_forget_pool)


def _map_in_workers(function: Callable[[range], list], shares: Sequence[range]) -> list[list]:
    """``[function(share) for share in shares]``, each share in its own single-threaded worker."""
    if len(shares) == 1:
        return [function(shares[0])]
    return list(_single_threaded_pool(len(shares)).map(function, shares))


def _single_threaded_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads whose torch ops run on one intra-op thread each.

    ``torch.set_num_threads`` sets the calling thread's OpenMP and MKL thread counts and, as
    a side effect, the count that threads initialise themselves with on their first torch
    call; so each worker initialises first and then sets its own count, and the caller's
    count is restored once every worker has done so.
    """
    global _pool, _pool_size
    with _pool_lock:
        if _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            caller_threads = torch.get_num_threads()
            started = threading.Barrier(workers + 1)

            def initialise() -> None:
                torch.get_num_threads()  # the thread's one-time initialisation, which would undo the next line
                torch.set_num_threads(1)
                started.wait()

            _pool = ThreadPoolExecutor(workers, thread_name_prefix="metrics", initializer=initialise)
            _pool_size = workers
            for _ in range(workers):
                _pool.submit(lambda: None)
            started.wait()
            torch.set_num_threads(caller_threads)
        return _pool
