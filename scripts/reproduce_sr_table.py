"""Reproduce IRSRGAN's comparison: bicubic, IRSRNet, IRSRGAN and their interpolation, and the
random-degradation ablation.

On an SR dataset (HR images; LR made on the fly), ``train.py`` trains the PSNR stage
(``--model irsrnet``) and then the GAN stage (``--model irsrgan``, initialised from it);
``scripts/net_interp.py`` blends the two generators with ``--alpha``; ``test.py`` evaluates
each model on the test split and ``scripts/evaluate.py`` the bicubic upscaling of the same
LR images. All run as subprocesses, as a user would run them. Metrics follow the SR
convention: per image on the 1-channel (grey = luma) 8-bit images, ``--scale`` border pixels
ignored by PSNR and SSIM (11x11 Gaussian window), then averaged. The table is printed as
Markdown and written as CSV.

The ablation trains IRSRNet a second time with ``--degradation_prob 0`` (clean bicubic LR
only; the table's IRSRNet, with the default 0.25, is the other arm, so both have the same
budget) and tests both on the clean test LR and on LR degraded by the same preset with a
fixed seed per image (``--eval_degradation fixed``). Per-image SSIM goes to a box plot.

    python scripts/reproduce_sr_table.py                       # synthetic SR data, CPU-sized
    python scripts/reproduce_sr_table.py --lpips_weights vgg16-397923af.pth --vgg_weights vgg19-dcbb9e9d.pth
    python scripts/reproduce_sr_table.py --dataroot datasets/tisr_x4 --nf 64 --nb 23 --gc 32 --ndf 64 \\
        --crop_size 128 --batch_size 16 --psnr_epochs 250 --psnr_lr 2e-4 --gan_epochs 150 \\
        --max_dataset_size 1000000 --lpips_weights vgg16-397923af.pth --vgg_weights vgg19-dcbb9e9d.pth

The defaults (a 16-wide, 2-block CRDB generator, 64x64 HR patches in batches of 8, 200 training
images, 16 epochs for each IRSRNet and 3 for IRSRGAN) took 38 minutes on the project's 2-core
CPU while other jobs kept its load average at 4-6.5 (IRSRNet epochs of 13 to 127 s); on two idle
cores, about 11 minutes. Nothing is downloaded: LPIPS and the GAN stage's VGG19 loss use
torchvision's ImageNet weights only when they are already in its cache, or a local file when
given, and the table says what was used instead otherwise.
"""
from __future__ import annotations

import argparse
import csv
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from scripts.reproduce_v2ir_table import run  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402
from util.evaluation import find_result_pairs, parse_metric_names, write_manifest  # noqa: E402
from util.image_io import read_image, write_image  # noqa: E402
from util.metrics import format_markdown_table  # noqa: E402

DEFAULT_DATAROOT = "./datasets/synthetic_sr"
LPIPS_METRICS = ("lpips", "lpips_i", "lpips_i_ref")
COLUMN_TITLES = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "rmse": "RMSE ↓", "lpips": "LPIPS ↓",
                 "lpips_i": "LPIPS-I ↑", "lpips_i_ref": "LPIPS-I-ref ↑"}
RANDOM_LPIPS_NOTE = "random VGG, not comparable"
# torchvision's ImageNet weight files, as its weights API names them in <hub dir>/checkpoints.
VGG16_FILE = "vgg16-397923af.pth"
VGG19_FILE = "vgg19-dcbb9e9d.pth"


# ------------------------------------------------------------------ weights: no downloads
def cached_torchvision_file(file_name: str) -> Path | None:
    """torchvision's cached copy of an ImageNet weight file, or None (reading it then downloads nothing)."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / file_name
    return path if path.is_file() else None


@dataclass(frozen=True)
class LpipsChoice:
    weights: str | None  # the --lpips_weights value for test.py/evaluate.py; None: LPIPS left out
    note: str            # shown with the table


def resolve_lpips(choice: str) -> LpipsChoice:
    """``auto``: torchvision's weights when cached, else no LPIPS (with the reason); others as given."""
    if choice == "auto":
        if cached_torchvision_file(VGG16_FILE) is not None:
            return LpipsChoice("torchvision", "LPIPS backbone: torchvision's ImageNet VGG16 (cached)")
        return LpipsChoice(None, (
            f"LPIPS and LPIPS-I not computed: torchvision's ImageNet VGG16 ({VGG16_FILE}) is not in "
            f"{Path(torch.hub.get_dir()) / 'checkpoints'} and this script downloads nothing. Pass --lpips_weights "
            f"PATH to a copy of that file, or --lpips_weights random for an untrained backbone ({RANDOM_LPIPS_NOTE})"))
    if choice == "random":
        return LpipsChoice("random", f"LPIPS backbone: untrained VGG16 ({RANDOM_LPIPS_NOTE})")
    if choice != "torchvision" and not Path(choice).is_file():
        raise UserError(f"--lpips_weights {choice}: no such file; pass a copy of {VGG16_FILE}, auto, torchvision "
                        f"or random")
    return LpipsChoice(choice, f"LPIPS backbone: ImageNet VGG16 from {choice}")


@dataclass(frozen=True)
class VggChoice:
    flags: tuple[str, ...]  # train.py flags of the GAN stage's perceptual loss
    label: str              # the IRSRGAN row's name


def resolve_vgg(choice: str) -> VggChoice:
    """The GAN stage's VGG19 loss: ``auto`` uses torchvision's weights when cached and otherwise trains
    without the perceptual term, which the row's name then says; ``none`` forces that."""
    if choice == "auto":
        choice = "torchvision" if cached_torchvision_file(VGG19_FILE) is not None else "none"
    if choice == "none":
        # The perceptual term is what holds the GAN stage to the image content (ESRGAN's L1 weight is
        # only 0.01); without it the discriminator wins and PSNR collapses within a hundred steps, so the
        # PSNR stage's own L1 (weight 1) takes the content role next to RaGAN's 0.005.
        return VggChoice(("--lambda_perceptual", "0", "--lambda_L1", "1.0"),
                         "IRSRGAN (no VGG19 weights: L1 + RaGAN)")
    if choice == "random":
        return VggChoice(("--vgg_weights", "random"), "IRSRGAN (untrained-VGG19 loss)")
    if choice != "torchvision" and not Path(choice).is_file():
        raise UserError(f"--vgg_weights {choice}: no such file; pass a copy of {VGG19_FILE}, auto, torchvision, "
                        f"random or none")
    return VggChoice(("--vgg_weights", choice), "IRSRGAN")


# ------------------------------------------------------------------ bicubic baseline
def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic upscaling (Pillow's Keys kernel, a = -0.5, as MATLAB's ``imresize``) of an 8- or
    16-bit ``H x W x C`` image, in float and rounded once, keeping its dtype."""
    height, width = image.shape[:2]
    planes = [np.asarray(Image.fromarray(image[..., channel].astype(np.float32)).resize(
        (width * scale, height * scale), Image.Resampling.BICUBIC)) for channel in range(image.shape[2])]
    peak = np.iinfo(image.dtype).max
    return np.clip(np.rint(np.stack(planes, axis=2)), 0, peak).astype(image.dtype)


def write_bicubic_results(source: Path, target: Path, scale: int) -> Path:
    """A results folder like test.py's: the bicubic upscaling of each LR image of ``source`` as ``SR``."""
    pairs, _, _ = find_result_pairs(source, "LR", "HR")
    images = target / "images"
    if target.exists():
        shutil.rmtree(target)
    images.mkdir(parents=True)
    for pair in pairs:
        upscaled = bicubic_upscale(read_image(pair.output), scale)
        write_image(images / f"{pair.image}_SR.png", upscaled[..., 0] if upscaled.shape[2] == 1 else upscaled)
        shutil.copyfile(pair.target, images / f"{pair.image}_HR.png")
    write_manifest(target, name="bicubic", images=len(pairs), visuals=["SR", "HR"], output_visual="SR",
                   target_visual="HR", metric_settings={"crop_border": scale})
    return target


# ------------------------------------------------------------------ results
def read_summary(folder: Path) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, std)}`` from a results folder's metrics.json."""
    summary = json.loads((folder / "metrics.json").read_text())
    return {name: (float(value["mean"]), float(value["std"])) for name, value in summary.items()}


def read_per_image(folder: Path, metric: str) -> list[float]:
    with open(folder / "metrics.csv", newline="") as handle:
        return [float(row[metric]) for row in csv.DictReader(handle)]


def column_title(metric: str, lpips: LpipsChoice) -> str:
    title = COLUMN_TITLES.get(metric, metric.upper())
    return f"{title} ({RANDOM_LPIPS_NOTE})" if metric in LPIPS_METRICS and lpips.weights == "random" else title


def markdown_table(rows: dict[str, dict[str, tuple[float, float]]], lpips: LpipsChoice, row_header: str) -> str:
    """The shared table format (mean ± std, papers' precision) with readable, honest column titles."""
    lines = format_markdown_table(rows, row_header=row_header).splitlines()
    metrics = next(iter(rows.values()))
    lines[0] = "| " + " | ".join([row_header, *(column_title(name, lpips) for name in metrics)]) + " |"
    return "\n".join(lines) + "\n"


def csv_column(metric: str, lpips: LpipsChoice) -> str:
    return f"{metric}_random_vgg" if metric in LPIPS_METRICS and lpips.weights == "random" else metric


def write_table_csv(path: Path, rows: dict[str, dict[str, tuple[float, float]]], extra: dict[str, dict[str, str]],
                    lpips: LpipsChoice, first_column: str) -> None:
    """One row per entry of ``rows``: mean and std of each metric, then the ``extra`` columns."""
    metrics = list(next(iter(rows.values())))
    extra_columns = list(next(iter(extra.values())))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([first_column, *(f"{csv_column(name, lpips)}{suffix}" for name in metrics
                                         for suffix in ("", "_std")), *extra_columns])
        for label, summary in rows.items():
            writer.writerow([label, *(f"{value:.6f}" for name in metrics for value in summary[name]),
                             *(extra[label][column] for column in extra_columns)])


def save_ssim_boxplot(groups: dict[str, dict[str, list[float]]], path: Path, title: str) -> None:
    """Box plots of per-image SSIM: one panel per test set, one box per training setting."""
    from matplotlib.figure import Figure  # object-oriented API: no global pyplot state

    figure = Figure(figsize=(4.2 * len(groups), 4.5), dpi=100, layout="constrained")
    axes = figure.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for axis, (test_set, arms) in zip(axes, groups.items()):
        axis.boxplot(list(arms.values()), widths=0.5)
        axis.set_xticks(range(1, len(arms) + 1), list(arms), fontsize=8)
        axis.set_title(f"{test_set} test LR (n = {len(next(iter(arms.values())))})", fontsize=10)
        axis.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("SSIM per image")
    figure.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


# ------------------------------------------------------------------ the pipeline
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataroot", default=None,
                        help=f"SR dataset (train/ and test/ folders of HR images, or HR/ + LR/ pairs); default: "
                             f"{DEFAULT_DATAROOT}, made from the synthetic dataset's infrared images if missing")
    parser.add_argument("--name", default="sr_table", help="experiment names are <name>_<model>")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--results_dir", default="./results")
    g = parser.add_argument_group("budget (the defaults are CPU-sized; the published runs use --nf 64 --nb 23 "
                                  "--gc 32 --ndf 64 --crop_size 128 --psnr_epochs 250 --gan_epochs 150 "
                                  "--psnr_lr 2e-4)")
    g.add_argument("--scale", type=int, default=4, choices=[2, 3, 4])
    g.add_argument("--nf", type=int, default=16, help="generator trunk width")
    g.add_argument("--nb", type=int, default=2, help="CRDB blocks")
    g.add_argument("--gc", type=int, default=8, help="growth channels of the dense blocks")
    g.add_argument("--ndf", type=int, default=16, help="discriminator width")
    g.add_argument("--crop_size", type=int, default=64, help="HR training patch (at least 64 for the discriminator)")
    g.add_argument("--batch_size", type=int, default=8)
    g.add_argument("--max_dataset_size", type=int, default=200, help="training images used")
    g.add_argument("--psnr_epochs", type=int, default=16, help="epochs of each IRSRNet run (cosine schedule)")
    g.add_argument("--gan_epochs", type=int, default=3, help="epochs of the IRSRGAN stage (constant rate)")
    g.add_argument("--psnr_lr", type=float, default=1e-3,
                   help="IRSRNet's Adam rate; the published 2e-4 is too slow for a few hundred steps of a tiny net")
    g.add_argument("--gan_lr", type=float, default=1e-4, help="IRSRGAN's Adam rate (ESRGAN's; IRSRGAN used 3e-4)")
    g.add_argument("--num_test", type=int, default=None, help="test images (default: the whole split)")
    g.add_argument("--seed", type=int, default=0)
    g = parser.add_argument_group("methods and metrics")
    g.add_argument("--alpha", type=float, default=0.8,
                   help="weight of the GAN generator in the interpolated model: (1 - alpha) PSNR + alpha GAN")
    g.add_argument("--degradation_prob", type=float, default=0.25,
                   help="random-degradation probability of the table's IRSRNet and IRSRGAN (the ablation's 'with' "
                        "arm; its other arm uses 0)")
    g.add_argument("--metrics", default="psnr,ssim,lpips,lpips_i",
                   help="main table, comma-separated from psnr,ssim,rmse,lpips,lpips_i,lpips_i_ref; the ablation "
                        "uses psnr,ssim")
    g.add_argument("--lpips_weights", default="auto",
                   help="VGG16 for LPIPS: auto (torchvision's ImageNet weights when cached, else LPIPS is left out), "
                        f"a local {VGG16_FILE}, torchvision, or random (an untrained backbone, labelled)")
    g.add_argument("--vgg_weights", default="auto",
                   help="VGG19 of the GAN stage's perceptual loss: auto (torchvision's weights when cached, else "
                        f"none), a local {VGG19_FILE}, torchvision, random (untrained features, which hold almost "
                        f"nothing: smoke tests) or none (no perceptual term; L1 at weight 1 + RaGAN 0.005)")
    g.add_argument("--no_ablation", action="store_true", help="only the main table")
    g = parser.add_argument_group("passing flags on")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads of each subprocess (OMP_NUM_THREADS); 1 can be faster on a shared machine")
    g.add_argument("--common_args", default="", help="extra flags for every train.py and test.py call")
    g.add_argument("--train_args", default="", help="extra flags for every train.py call")
    opt = parser.parse_args(argv)
    opt.metrics = parse_metric_names(opt.metrics)
    if not 0.0 <= opt.alpha <= 1.0:
        raise UserError(f"--alpha must lie in [0, 1], got {opt.alpha}")
    if min(opt.psnr_epochs, opt.gan_epochs) < 1:
        raise UserError("--psnr_epochs and --gan_epochs must be at least 1")
    return opt


class Pipeline:
    """The runs of one table: shared flags, folders and the log of every subprocess."""

    def __init__(self, opt: argparse.Namespace, dataroot: str, lpips: LpipsChoice) -> None:
        self.opt = opt
        self.lpips = lpips
        self.architecture = ["--dataroot", dataroot, "--scale", str(opt.scale), "--nf", str(opt.nf), "--nb",
                             str(opt.nb), "--gc", str(opt.gc), "--seed", str(opt.seed),
                             *shlex.split(opt.common_args)]
        self.checkpoints = Path(opt.checkpoints_dir)
        self.results = Path(opt.results_dir)
        self.log = self.results / f"{opt.name}_log.txt"

    def metric_flags(self, metrics: Sequence[str]) -> list[str]:
        if self.lpips.weights is None:
            metrics = [name for name in metrics if name not in LPIPS_METRICS]
        flags = ["--metrics", ",".join(metrics)]
        if set(metrics) & set(LPIPS_METRICS):
            flags += ["--lpips_weights", str(self.lpips.weights)]
        return flags

    def train(self, model: str, name: str, epochs: int, *flags: str) -> float:
        """Train one stage from scratch; return its seconds."""
        shutil.rmtree(self.checkpoints / name, ignore_errors=True)  # a fresh run, never a stale resume
        opt = self.opt
        args = ["--model", model, "--name", name, "--checkpoints_dir", str(self.checkpoints), *self.architecture,
                "--crop_size", str(opt.crop_size), "--batch_size", str(opt.batch_size), "--max_dataset_size",
                str(opt.max_dataset_size), "--n_epochs", str(epochs), "--n_epochs_decay", "0", "--val_freq", "0",
                "--save_epoch_freq", "1000000", "--display_id", "0", "--no_html", *flags,
                *shlex.split(opt.train_args)]
        print(f"[{name}] training {model} for {epochs} epoch(s) ...", flush=True)
        return run("train.py", args, self.log, opt.threads)

    def test(self, model: str, name: str, metrics: Sequence[str], results_dir: Path, *flags: str) -> Path:
        """test.py on the test split; returns its results folder."""
        args = ["--model", model, "--name", name, "--checkpoints_dir", str(self.checkpoints), "--results_dir",
                str(results_dir), *self.architecture, *self.metric_flags(metrics), *flags]
        if self.opt.num_test is not None:
            args += ["--num_test", str(self.opt.num_test)]
        run("test.py", args, self.log, self.opt.threads)
        return results_dir / name / "test_latest"

    def interpolate(self, psnr_name: str, gan_name: str) -> Path:
        """net_interp.py's blend of the two generators that test.py evaluates, tested the same way."""
        out = self.results / f"{self.opt.name}_interp"
        args = ["--psnr_weights", str(self.generator_file(psnr_name)), "--gan_weights",
                str(self.generator_file(gan_name)), "--lambdas", str(self.opt.alpha), "--out", str(out),
                *self.architecture, *self.metric_flags(self.opt.metrics)]
        if self.opt.num_test is not None:
            args += ["--num_test", str(self.opt.num_test)]
        run("scripts/net_interp.py", args, self.log, self.opt.threads)
        return out / f"interp_{self.opt.alpha:.2f}" / "test_latest"

    def generator_file(self, name: str) -> Path:
        # test.py evaluates the EMA generator when there is one; the blend must start from the same weights.
        folder = self.checkpoints / name
        ema = folder / "latest_net_G_ema.pth"
        return ema if ema.is_file() else folder / "latest_net_G.pth"

    def bicubic(self, lr_source: Path) -> Path:
        folder = write_bicubic_results(lr_source, self.results / f"{self.opt.name}_bicubic" / "test", self.opt.scale)
        run("scripts/evaluate.py", [str(folder), "--crop_border", str(self.opt.scale), "--label", "bicubic",
                                    *self.metric_flags(self.opt.metrics)], self.log, self.opt.threads)
        return folder


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, tuple[float, float]]]:
    opt = parse_args(argv)
    start = time.perf_counter()
    lpips, vgg = resolve_lpips(opt.lpips_weights), resolve_vgg(opt.vgg_weights)
    dataroot = opt.dataroot
    if dataroot is None:
        from data.synthetic_sr import ensure_synthetic_sr_dataset

        dataroot = str(ensure_synthetic_sr_dataset(DEFAULT_DATAROOT, workers=2))
    pipeline = Pipeline(opt, dataroot, lpips)
    pipeline.log.unlink(missing_ok=True)
    print(f"log of every run: {pipeline.log}", flush=True)

    psnr_name, gan_name = f"{opt.name}_irsrnet", f"{opt.name}_irsrgan"
    degradation = ("--degradation_prob", str(opt.degradation_prob))
    psnr_seconds = pipeline.train("irsrnet", psnr_name, opt.psnr_epochs, *degradation, "--lr", str(opt.psnr_lr))
    gan_seconds = pipeline.train("irsrgan", gan_name, opt.gan_epochs, *degradation, "--lr", str(opt.gan_lr),
                                 "--ndf", str(opt.ndf),
                                 "--psnr_checkpoint", str(pipeline.checkpoints / psnr_name / "latest_net_G.pth"),
                                 *vgg.flags)
    psnr_results = pipeline.test("irsrnet", psnr_name, opt.metrics, pipeline.results)
    folders = {"bicubic": pipeline.bicubic(psnr_results), "IRSRNet": psnr_results,
               vgg.label: pipeline.test("irsrgan", gan_name, opt.metrics, pipeline.results),
               f"interpolated (alpha = {opt.alpha:g})": pipeline.interpolate(psnr_name, gan_name)}
    rows = {label: read_summary(folder) for label, folder in folders.items()}
    extra = {label: {"train_seconds": "", "epochs": ""} for label in rows}
    extra["IRSRNet"] = {"train_seconds": f"{psnr_seconds:.1f}", "epochs": str(opt.psnr_epochs)}
    extra[vgg.label] = {"train_seconds": f"{gan_seconds:.1f}", "epochs": str(opt.gan_epochs)}
    csv_path = pipeline.results / f"{opt.name}.csv"
    write_table_csv(csv_path, rows, extra, lpips, "method")
    print()
    print(markdown_table(rows, lpips, "method"))
    if set(opt.metrics) & set(LPIPS_METRICS):
        print(lpips.note)
    print(f"\n{csv_path}:\n{csv_path.read_text()}")

    if not opt.no_ablation:
        ablation(pipeline, psnr_name, psnr_results)
    print(f"total wall time {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return rows


def ablation(pipeline: Pipeline, with_name: str, with_clean: Path) -> None:
    """IRSRNet with and without random degradation, tested on clean and degraded LR: table, CSV, SSIM box plot."""
    opt = pipeline.opt
    without_name = f"{opt.name}_irsrnet_nodeg"
    without_seconds = pipeline.train("irsrnet", without_name, opt.psnr_epochs, "--degradation_prob", "0", "--lr",
                                     str(opt.psnr_lr))
    metrics = ("psnr", "ssim")
    degraded_dir = pipeline.results / "degraded_test"
    with_label, without_label = f"with (p = {opt.degradation_prob:g})", "without (p = 0)"
    folders = {
        # The 'with' arm on clean LR is the main table's IRSRNet, already tested.
        "clean": {with_label: with_clean,
                  without_label: pipeline.test("irsrnet", without_name, metrics, pipeline.results)},
        "degraded": {label: pipeline.test("irsrnet", name, metrics, degraded_dir, "--eval_degradation", "fixed")
                     for label, name in ((with_label, with_name), (without_label, without_name))},
    }
    rows, extra = {}, {}
    for test_set, by_arm in folders.items():
        for arm, folder in by_arm.items():
            label = f"IRSRNet {arm}, {test_set} test LR"
            summary = read_summary(folder)
            rows[label] = {name: summary[name] for name in metrics}
            extra[label] = {"training": arm, "test_lr": test_set}
    csv_path = pipeline.results / f"{opt.name}_degradation.csv"
    write_table_csv(csv_path, rows, extra, pipeline.lpips, "run")
    plot_path = pipeline.results / f"{opt.name}_degradation_ssim.png"
    save_ssim_boxplot({test_set: {arm: read_per_image(folder, "ssim") for arm, folder in by_arm.items()}
                       for test_set, by_arm in folders.items()}, plot_path,
                      f"IRSRNet trained with / without random degradation ({opt.psnr_epochs} epoch(s) each)")
    print(f"\nRandom-degradation ablation (IRSRNet, {opt.psnr_epochs} epoch(s) each; without: "
          f"{without_seconds / 60:.1f} min of training)\n")
    print(markdown_table(rows, pipeline.lpips, "run"))
    print(f"{csv_path}:\n{csv_path.read_text()}\nSSIM box plot: {plot_path}")


if __name__ == "__main__":
    run_cli(main)
