"""A training step of ours against upstream pix2pix's computation, side by side on this machine.

    python scripts/speed_vs_upstream.py                        # pix2pix unet_256, 256 px, batch 1, fp32
    python scripts/speed_vs_upstream.py --repeat 5 --variants fp32 bf16

"upstream" is the same network and training step computed the way upstream pix2pix computes it:
PyTorch's default (unfused) Adam and every convolution through PyTorch's own kernels
(``scripts/benchmark.py``'s ``upstream`` variant). The variants alternate round by round, each job in a
fresh process, so a change of load on a shared machine falls on all of them; no figure from another
day or machine enters the ratio. Also measured: the machine's convolution ceiling (one 3x3
convolution, 128 -> 128 channels on 64x64, in GFLOP/s), so a step's GFLOP/s can be read against it.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from scripts import benchmark


def round_ratios(upstream_times: list[float], times: list[float], steps: int) -> list[float]:
    """Upstream's median step over ours, round by round: the two ran one after the other in each round, so on
    a machine whose load drifts (shared hosts) the paired ratios vary far less than the times do."""
    def round_median(values: list[float], r: int) -> float:
        return statistics.median(values[r * steps:(r + 1) * steps])

    return [round_median(upstream_times, r) / round_median(times, r) for r in range(len(times) // steps)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pix2pix", choices=benchmark.MODELS)
    parser.add_argument("--preset", default="full", choices=sorted(benchmark.PRESETS),
                        help="full: the model's default networks and size (upstream's pix2pix); small: a quick check")
    parser.add_argument("--variants", nargs="+", default=["fp32"],
                        help="ours, compared with upstream (scripts/benchmark.py variants, e.g. fp32 bf16)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each round runs upstream, then every variant")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per job")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--json", default=None, help="also write the rows and ratios to this JSON file")
    parser.add_argument("options", nargs="*", help="more model options after --, e.g. -- --batch_size 4")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rows = benchmark.main(["--model", args.model, "--preset", args.preset, "--cases", "conv", "train",
                           "--variants", "upstream", *args.variants, "--steps", str(args.steps),
                           "--warmup", str(args.warmup), "--repeat", str(args.repeat),
                           *(["--", *args.options] if args.options else [])])
    train = {row["variant"]: row for row in rows if row["case"] == "train"}
    conv = [row for row in rows if row["case"].startswith("conv")]
    ceiling = max(row["gflop_per_s"] for row in conv)
    upstream = train["upstream"]
    lines = ["", f"{args.model}, {upstream['size']} px × batch {upstream['batch_size']}, {upstream['device_name']}, "
             f"{upstream['threads']} threads, {args.repeat} rounds × {args.steps} steps; convolution ceiling "
             f"{ceiling:.0f} GFLOP/s (3x3, 128->128, 64x64)", "",
             "| computation | s/step (median) | speed-up vs upstream | per round: median [range] | fastest steps | "
             "GFLOP/s | share of the ceiling |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    ratios, paired = {}, {}
    for variant, row in train.items():
        ratios[variant] = upstream["median_s"] / row["median_s"]
        paired[variant] = round_ratios(upstream["times"], row["times"], args.steps)
        lines.append(f"| {variant} | {row['median_s']:.3f} | {ratios[variant]:.2f}× | "
                     f"{statistics.median(paired[variant]):.2f}× [{min(paired[variant]):.2f}–"
                     f"{max(paired[variant]):.2f}] | {upstream['min_s'] / row['min_s']:.2f}× | "
                     f"{row['gflop_per_s']:.0f} | {row['gflop_per_s'] / ceiling:.0%} |")
    print("\n".join(lines))
    result = {"rows": rows, "speedup_vs_upstream": ratios, "speedup_per_round": paired,
              "conv_ceiling_gflop_per_s": ceiling}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
