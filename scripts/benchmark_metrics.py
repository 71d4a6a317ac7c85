"""Time util.metrics' SSIM (Gaussian window) + PSNR against scikit-image on the same images.

    python scripts/benchmark_metrics.py                 # 200 pairs of 256x256, 2 threads
    python scripts/benchmark_metrics.py --pairs 50 --size 512 --threads 1

The images are 1-channel with 8-bit values (a random image and a noisy copy), evaluated on
the 0..255 scale as in the V2IR protocol. Both implementations run once untimed, then
``--repeats`` times; the medians are reported. The goal is ours >= 5x faster.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

from util import metrics  # noqa: E402

SPEEDUP_GOAL = 5.0


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up: first-call allocations and lazy initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    shape = (args.pairs, args.size, args.size)
    targets = rng.integers(0, 256, shape).astype(np.float64)
    preds = np.clip(np.round(targets + rng.normal(0.0, 12.0, shape)), 0, 255)
    pred_tensor = torch.from_numpy(preds).unsqueeze(1)
    target_tensor = torch.from_numpy(targets).unsqueeze(1)

    def ours() -> tuple[np.ndarray, np.ndarray]:
        values = metrics.compute_metrics(pred_tensor, target_tensor, 255.0, names=("ssim", "psnr"))
        return values["ssim"].numpy(), values["psnr"].numpy()

    def reference() -> tuple[np.ndarray, np.ndarray]:
        ssim_values = [
            structural_similarity(p, t, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False)
            for p, t in zip(preds, targets)
        ]
        psnr_values = [peak_signal_noise_ratio(t, p, data_range=255.0) for p, t in zip(preds, targets)]
        return np.array(ssim_values), np.array(psnr_values)

    ours_seconds = median_seconds(ours, args.repeats)
    reference_seconds = median_seconds(reference, args.repeats)
    (ours_ssim, ours_psnr), (reference_ssim, reference_psnr) = ours(), reference()
    speedup = reference_seconds / ours_seconds

    print(f"{args.pairs} pairs of {args.size}x{args.size}, 1 channel, data_range 255, "
          f"{args.threads} torch thread(s), median of {args.repeats}")
    print(f"util.metrics  SSIM+PSNR: {ours_seconds * 1e3:9.1f} ms")
    print(f"scikit-image  SSIM+PSNR: {reference_seconds * 1e3:9.1f} ms")
    print(f"speed-up: {speedup:.1f}x (goal >= {SPEEDUP_GOAL:.0f}x: {'met' if speedup >= SPEEDUP_GOAL else 'NOT met'})")
    print(f"max |difference|: SSIM {np.abs(ours_ssim - reference_ssim).max():.3e}, "
          f"PSNR {np.abs(ours_psnr - reference_psnr).max():.3e} dB")


if __name__ == "__main__":
    main()
