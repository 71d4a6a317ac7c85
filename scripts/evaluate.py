"""Metrics of a test.py results folder, from the saved images.

    python scripts/evaluate.py results/synthetic_v2ir_pix2pix/test_latest
    python scripts/evaluate.py RESULTS_DIR --metrics psnr,ssim,rmse,lpips,lpips_i --lpips_weights vgg16-397923af.pth
    python scripts/evaluate.py DIR --output_visual SR --target_visual HR --crop_border 4 --out_dir eval/

Pairs ``images/<image>_<output>.png`` with ``images/<image>_<target>.png`` (visual names from
the folder's manifest.json, else fake_B/real_B, else SR/HR), computes every metric per image
with the same code as test.py (so on test.py's own folder it reproduces test.py's numbers),
prints a Markdown table (mean ± std) and writes metrics.csv, metrics.json and
ssim_boxplot.png to the results folder or --out_dir. 16-bit images are evaluated at 16 bits,
on the same 0..255 scale.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import torch

from options.base_options import resolve_device
from util.errors import UserError, run_cli
from util.evaluation import (
    DEFAULT_METRICS,
    METRIC_CHOICES,
    Y_METRICS_HELP,
    ImageEvaluator,
    MetricTable,
    ResultPair,
    find_result_pairs,
    parse_metric_names,
    read_for_metrics,
    read_manifest,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_dir", help="a test.py results folder (holding images/) or a folder of images")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                        help=f"comma-separated, from {','.join(METRIC_CHOICES)}" + Y_METRICS_HELP)
    parser.add_argument("--output_visual", help="visual name of the model output (default: manifest, fake_B, SR)")
    parser.add_argument("--target_visual", help="visual name of the reference (default: manifest, real_B, HR)")
    parser.add_argument("--crop_border", type=int, default=None,
                        help="pixels ignored at each border for PSNR/SSIM/RMSE (default: the manifest's, else 0)")
    parser.add_argument("--y_channel", action="store_true", help="PSNR/SSIM/RMSE of colour images on BT.601 luma")
    parser.add_argument("--lpips_weights", default="torchvision",
                        help="VGG16 ImageNet weights for LPIPS: a local vgg16-397923af.pth, 'torchvision' or 'random'")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (LPIPS runs there)")
    parser.add_argument("--batch_size", type=int, default=8, help="image pairs per batch")
    parser.add_argument("--out_dir", default=None, help="where to write the files (default: the results folder)")
    parser.add_argument("--label", default=None, help="row label of the table (default: from the manifest)")
    args = parser.parse_args(argv)
    args.metrics = parse_metric_names(args.metrics)
    if args.batch_size <= 0:
        raise UserError(f"--batch_size must be positive, got {args.batch_size}")
    return args


def batches_of_equal_size(pairs: list[ResultPair], batch_size: int):
    """Consecutive pairs, read, stacked in batches whose images share one size: (names, outputs, targets)."""
    names: list[str] = []
    outputs: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    for pair in pairs:
        output, target = read_for_metrics(pair.output), read_for_metrics(pair.target)
        if output.shape != target.shape:
            raise UserError(f"{pair.output} is {_shape(output)} but its reference {pair.target} is {_shape(target)}")
        if outputs and (output.shape != outputs[0].shape or len(outputs) == batch_size):
            yield names, torch.stack(outputs), torch.stack(targets)
            names, outputs, targets = [], [], []
        names.append(pair.image)
        outputs.append(output)
        targets.append(target)
    if outputs:
        yield names, torch.stack(outputs), torch.stack(targets)


def _shape(image: torch.Tensor) -> str:
    channels, height, width = image.shape
    return f"{width}x{height} with {channels} channel(s)"


def main(argv: Sequence[str] | None = None) -> MetricTable:
    args = parse_args(argv)
    results_dir = Path(args.results_dir)
    pairs, output_visual, target_visual = find_result_pairs(results_dir, args.output_visual, args.target_visual)
    manifest = read_manifest(results_dir)
    metric_settings = manifest.get("metric_settings", {})
    crop_border = args.crop_border if args.crop_border is not None else int(metric_settings.get("crop_border", 0))
    evaluator = ImageEvaluator(args.metrics, crop_border=crop_border, y_channel=args.y_channel,
                               lpips_weights=args.lpips_weights, device=resolve_device(args.device))
    table = MetricTable()
    for names, outputs, targets in batches_of_equal_size(pairs, args.batch_size):
        table.add(names, evaluator(outputs, targets))

    label = args.label or (f"{manifest['name']} ({manifest['phase']}, epoch {manifest['epoch']})"
                           if {"name", "phase", "epoch"} <= manifest.keys() else results_dir.resolve().name)
    out_dir = Path(args.out_dir) if args.out_dir else results_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(pairs)} pairs ({output_visual} vs {target_visual}) in {results_dir}, crop border {crop_border}")
    print(table.write_report(out_dir, label))
    print(f"wrote metrics.csv, metrics.json{', ssim_boxplot.png' if 'ssim' in args.metrics else ''} to {out_dir}")
    return table


if __name__ == "__main__":
    run_cli(main)
