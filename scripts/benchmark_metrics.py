"""Time util.metrics' SSIM (Gaussian window) + PSNR against scikit-image on the same images.

    python scripts/benchmark_metrics.py                 # 200 pairs of 256x256, 2 threads
    python scripts/benchmark_metrics.py --pairs 50 --size 512 --threads 1

The images are 1-channel with 8-bit values (a random image and a noisy copy), evaluated on
the 0..255 scale as in the V2IR protocol. After one untimed call each, the two
implementations are timed in alternating order for ``--rounds`` rounds, so both see the
same machine load; the speed-up reported is the median of the per-round ratios. The load
average is printed too: on a shared machine, compare runs only at similar load. The goal
is ours >= 5x faster.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from util import metrics

SPEEDUP_GOAL = 5.0


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (scikit-image uses one)")
    parser.add_argument("--rounds", type=int, default=7)
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

    load_before = load_average()
    (ours_ssim, ours_psnr), (reference_ssim, reference_psnr) = ours(), reference()  # also the warm-up
    ours_times, reference_times = [], []
    for round_index in range(args.rounds):
        order = (ours, reference) if round_index % 2 == 0 else (reference, ours)
        timed = {function: seconds(function) for function in order}
        ours_times.append(timed[ours])
        reference_times.append(timed[reference])
    ratios = [reference_time / ours_time for ours_time, reference_time in zip(ours_times, reference_times)]
    speedup = statistics.median(ratios)

    print(f"{args.pairs} pairs of {args.size}x{args.size}, 1 channel, data_range 255, {args.threads} torch "
          f"thread(s), {args.rounds} alternating rounds; load average (1, 5, 15 min) {load_before} before, "
          f"{load_average()} after, {os.cpu_count()} CPUs")
    print(f"util.metrics  SSIM+PSNR: median {statistics.median(ours_times) * 1e3:8.1f} ms, "
          f"min {min(ours_times) * 1e3:8.1f} ms")
    print(f"scikit-image  SSIM+PSNR: median {statistics.median(reference_times) * 1e3:8.1f} ms, "
          f"min {min(reference_times) * 1e3:8.1f} ms")
    print(f"speed-up (median of per-round ratios): {speedup:.1f}x, range {min(ratios):.1f}-{max(ratios):.1f}x "
          f"(goal >= {SPEEDUP_GOAL:.0f}x: {'met' if speedup >= SPEEDUP_GOAL else 'NOT met'})")
    print(f"max |difference|: SSIM {np.abs(ours_ssim - reference_ssim).max():.3e}, "
          f"PSNR {np.abs(ours_psnr - reference_psnr).max():.3e} dB")


if __name__ == "__main__":
    main()
