"""Reproduce the cascade paper's comparison table: pix2pix, DoubleUnet_pix2pix and cascade3.

Each model is trained with the same budget (epochs, or minutes of wall-clock time each)
on the same data by ``train.py``, tested by ``test.py`` (both run as subprocesses, as a
user would), and the per-image means of PSNR, SSIM and RMSE on 0-255 are printed as a
Markdown table and written as CSV.

    python scripts/reproduce_v2ir_table.py                        # synthetic data, CPU-sized
    python scripts/reproduce_v2ir_table.py --dataroot datasets/kaist_aligned --crop_size 256 \\
        --n_epochs 100 --n_epochs_decay 100 --max_dataset_size 100000
    python scripts/reproduce_v2ir_table.py --minutes 10           # equal time instead of epochs

The defaults (128x128 crops, 80 training images, 3 + 3 epochs, every generator at half
width) take about 20 minutes on a 2-core CPU shared with other jobs. ``--crop_size 256 --width 1`` uses the paper's sizes
(``unet_256`` for pix2pix and stage 1, full-width U-Nets and DoubleU-Nets).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from util.errors import UserError, run_cli  # noqa: E402
from util.metrics import METRIC_NAMES, format_markdown_table  # noqa: E402


@dataclass(frozen=True)
class Method:
    label: str       # the row name in the paper's table
    key: str         # experiment-name suffix and --models entry
    flags: tuple[str, ...]  # architecture flags, given to train.py and test.py alike


def methods(crop_size: int, width: float) -> list[Method]:
    """The table's rows; ``width`` scales every generator's channels alike (1.0: published sizes)."""
    unet = "unet_256" if crop_size >= 256 else "unet_128"
    ngf = str(max(1, round(64 * width)))
    return [
        Method("pix2pix", "pix2pix", ("--model", "pix2pix", "--netG", unet, "--ngf", ngf)),
        Method("DoubleUnet_pix2pix", "doubleunet_pix2pix", ("--model", "pix2pix", "--netG", "doubleunet", "--ngf", ngf)),
        Method("cascade3", "cascade3", ("--model", "cascade3", "--netG1", unet, "--ngf", ngf, "--stage2_width",
                                        str(width))),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataroot", default=None,
                        help="aligned dataset (train/ and test/ splits, AB or A/B folder layout); "
                             "default: the built-in synthetic dataset")
    parser.add_argument("--name", default="v2ir_table", help="experiment names are <name>_<method>")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--results_dir", default="./results")
    parser.add_argument("--models", default="pix2pix,doubleunet_pix2pix,cascade3",
                        help="comma-separated subset of pix2pix, doubleunet_pix2pix, cascade3")
    parser.add_argument("--n_epochs", type=int, default=3, help="epochs at the initial learning rate")
    parser.add_argument("--n_epochs_decay", type=int, default=3, help="epochs of linear decay to zero")
    parser.add_argument("--minutes", type=float, default=None,
                        help="instead of epochs: train each model for whole epochs at a constant learning "
                             "rate until this many minutes have passed")
    parser.add_argument("--crop_size", type=int, default=128, help="training crop and test image size")
    parser.add_argument("--width", type=float, default=0.5,
                        help="channel multiplier of every generator (U-Nets' --ngf 64 x width, DoubleU-Nets' "
                             "channels x width); 1.0 is the published size, 0.5 about a quarter of the computation")
    parser.add_argument("--max_dataset_size", type=int, default=80, help="training images used")
    parser.add_argument("--num_test", type=int, default=None, help="test images (default: the whole split)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of each train.py/test.py (OMP_NUM_THREADS); 1 is faster on a machine "
                             "shared with other jobs")
    parser.add_argument("--common_args", default="", help="extra flags for every train.py and test.py call")
    parser.add_argument("--train_args", default="", help="extra flags for every train.py call")
    for key in ("pix2pix", "doubleunet_pix2pix", "cascade3"):
        parser.add_argument(f"--{key}_args", default="",
                            help=f"extra flags for {key}'s train.py and test.py calls (architecture)")
        parser.add_argument(f"--{key}_train_args", default="", help=f"extra flags for {key}'s train.py calls")
    parser.add_argument("--csv", default=None, help="CSV output (default <results_dir>/<name>.csv)")
    return parser.parse_args(argv)


def run(script: str, args: list[str], log: Path, threads: int | None) -> float:
    """Run ``python <script> args`` with its output appended to ``log``; return the seconds it took."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "a") as handle:
        handle.write(f"$ {script} {shlex.join(args)}\n")
        handle.flush()
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        result = subprocess.run([sys.executable, str(REPO_ROOT / script), *args], stdout=handle,
                                stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise UserError(f"{script} failed (exit {result.returncode}); the end of {log}:\n{tail}")
    return time.perf_counter() - start


def train(method: Method, shared: list[str], opt: argparse.Namespace, log: Path) -> tuple[float, int]:
    """Train one method with the budget; return (seconds, epochs trained)."""
    train_args = [*shared, "--max_dataset_size", str(opt.max_dataset_size), "--val_freq", "0",
                  "--save_epoch_freq", "1000000"]
    if opt.minutes is None:
        epochs = opt.n_epochs + opt.n_epochs_decay
        return run("train.py", [*train_args, "--n_epochs", str(opt.n_epochs), "--n_epochs_decay",
                                str(opt.n_epochs_decay)], log, opt.threads), epochs
    # Equal time: one more epoch per call, resumed exactly from the previous one.
    seconds, epochs = 0.0, 0
    while seconds < opt.minutes * 60:
        epochs += 1
        resume = ["--continue_train"] if epochs > 1 else []
        seconds += run("train.py", [*train_args, "--n_epochs", str(epochs), "--n_epochs_decay", "0", *resume], log,
                       opt.threads)
    return seconds, epochs


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    opt = parse_args(argv)
    if opt.width <= 0:
        raise UserError(f"--width must be positive, got {opt.width}")
    available = {method.key: method for method in methods(opt.crop_size, opt.width)}
    chosen = [key.strip() for key in opt.models.split(",") if key.strip()]
    unknown = [key for key in chosen if key not in available]
    if unknown or not chosen:
        raise UserError(f"--models {opt.models!r}: choose from {', '.join(available)}")
    if opt.minutes is not None and opt.minutes <= 0:
        raise UserError(f"--minutes must be positive, got {opt.minutes}")

    rows: dict[str, dict[str, float]] = {}
    summaries: dict[str, dict[str, tuple[float, float]]] = {}
    for key in chosen:
        method = available[key]
        name = f"{opt.name}_{key}"
        shared = [*method.flags, "--name", name, "--checkpoints_dir", opt.checkpoints_dir, "--crop_size",
                  str(opt.crop_size), "--seed", str(opt.seed), *shlex.split(opt.common_args),
                  *shlex.split(getattr(opt, f"{key}_args"))]
        if opt.dataroot is not None:
            shared += ["--dataroot", opt.dataroot]
        log = Path(opt.checkpoints_dir) / name / "reproduce_log.txt"
        print(f"[{method.label}] training ({name}) ...", flush=True)
        train_only = [*shlex.split(opt.train_args), *shlex.split(getattr(opt, f"{key}_train_args"))]
        seconds, epochs = train(method, [*shared, *train_only], opt, log)
        test_args = [*shared, "--results_dir", opt.results_dir]
        if opt.num_test is not None:
            test_args += ["--num_test", str(opt.num_test)]
        run("test.py", test_args, log, opt.threads)
        metrics_file = Path(opt.results_dir) / name / "test_latest" / "metrics.json"
        summary = {metric: (values["mean"], values["std"]) for metric, values in
                   json.loads(metrics_file.read_text()).items()}
        summaries[method.label] = summary
        rows[method.label] = {**{metric: summary[metric][0] for metric in METRIC_NAMES},
                              "train_seconds": seconds, "epochs": epochs}
        print(f"[{method.label}] {epochs} epochs in {seconds / 60:.1f} min: "
              + " ".join(f"{metric}={summary[metric][0]:.4f}" for metric in METRIC_NAMES), flush=True)

    csv_path = Path(opt.csv) if opt.csv else Path(opt.results_dir) / f"{opt.name}.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["algorithm", *METRIC_NAMES, "train_seconds", "epochs"])
        for label, row in rows.items():
            writer.writerow([label, *(f"{row[metric]:.6f}" for metric in METRIC_NAMES),
                             f"{row['train_seconds']:.1f}", row["epochs"]])
    print()
    print(format_markdown_table(summaries, row_header="algorithm"))
    print(csv_path.read_text())
    return rows


if __name__ == "__main__":
    run_cli(main)
