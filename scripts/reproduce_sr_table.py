"""Reproduce IRSRGAN's comparison over seeds: bicubic, IRSRNet, IRSRGAN and their interpolation,
per test source, and (``--ablations``) the paper's two ablations.

On an SR dataset (HR images; LR made on the fly), ``train.py`` trains the PSNR stage
(``--model irsrnet``) and then the GAN stage (``--model irsrgan``, initialised from it);
``scripts/net_interp.py`` blends the two generators with ``--alpha``; ``test.py`` evaluates
each model on the test split and ``scripts/evaluate.py`` the bicubic upscaling of the same
LR images. All run as subprocesses, as a user would run them, once per ``--seeds`` entry.

Metrics: per image on the 1-channel 8-bit images, ``--scale`` border pixels ignored, then
averaged over images; the table gives the mean ± std of those averages over seeds. PSNR/SSIM
are on the grey levels (0..255); PSNR-Y/SSIM-Y on BT.601 luma (16 + 219 g / 255, the BasicSR
and IRSRGAN convention, about +1.32 dB on PSNR). "sharpness" is the mean log2 variance of the
Laplacian of the output (the numerator of IRSRGAN's LPIPS-I; HR's own value is printed beside
it): closer to HR's is sharper without being noisier. "vs bicubic" is the PSNR gain and the
share of (seed, image) pairs where the method beats bicubic. A second reference row is HR
band-limited to the LR's Nyquist frequency (an ideal low-pass): all the LR can carry restored,
nothing invented; a method above it has restored detail learned from the training images. When
the test split has one folder per source (``test/HR/<source>/``), every row is repeated per source.

    python scripts/reproduce_sr_table.py                              # synthetic SR data, CPU recipe, 3 seeds
    python scripts/reproduce_sr_table.py --dataroot datasets/real_sr --seeds 0
    python scripts/reproduce_sr_table.py --ablations degradation,architecture --seeds 0
    python scripts/reproduce_sr_table.py --dataroot datasets/tisr_x4 --nf 64 --nb 23 --gc 32 --ndf 64 \\
        --crop_size 128 --batch_size 16 --psnr_iters 400000 --psnr_lr 2e-4 --gan_iters 400000 \\
        --lpips_weights vgg16-397923af.pth --vgg_weights vgg19-dcbb9e9d.pth

The defaults are the CPU recipe (docs/sr_recipe.md), read from configs/cpu/irsrnet_x4.yaml and
irsrgan_x4.yaml: a 32-wide, 3-block CRDB generator that predicts the residual over bicubic
upsampling (``--sr_residual bicubic``), 96x96 HR patches in batches of 8, Adam 1e-3 with cosine
decay over ``--psnr_iters`` steps, an EMA whose horizon is a tenth of the run, clean bicubic LR
for the main table, then ``--gan_iters`` GAN steps.
Nothing is downloaded: LPIPS and the GAN stage's VGG19 loss use torchvision's ImageNet weights
only when they are already in its cache, or a local file when given, and the table says what
was used instead otherwise.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from data.image_folder import find_images
from models.precision import resolve_amp
from options.base_options import resolve_device
from options.config_file import read_config
from scripts.reproduction import (
    ALL_SOURCES,
    MethodRuns,
    aggregate,
    format_cell,
    parse_seeds,
    run,
    source_groups,
)
from util.errors import UserError, run_cli
from util.evaluation import find_result_pairs, parse_metric_names, read_for_metrics, write_manifest
from util.image_io import read_image, write_image
from util.lpips_metrics import laplacian_variance

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATAROOT = "./datasets/synthetic_sr"
LPIPS_METRICS = ("lpips", "lpips_i", "lpips_i_ref")
COLUMN_TITLES = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "rmse": "RMSE ↓", "psnr_y": "PSNR-Y ↑", "ssim_y": "SSIM-Y ↑",
                 "lpips": "LPIPS ↓", "lpips_i": "LPIPS-I ↑", "lpips_i_ref": "LPIPS-I-ref ↑",
                 "sharpness": "sharpness"}
RANDOM_LPIPS_NOTE = "random VGG, not comparable"
# A landmark row: everything below the LR's Nyquist restored exactly, nothing above it. A method above it
# has restored detail the LR does not carry (learned from the training images).
BAND_LIMITED_LABEL = "HR band-limited to the LR's Nyquist"
# torchvision's ImageNet weight files, as its weights API names them in <hub dir>/checkpoints.
VGG16_FILE = "vgg16-397923af.pth"
VGG19_FILE = "vgg19-dcbb9e9d.pth"
# The EMA averages over about this share of the run: long enough to smooth the last steps'
# noise, short enough not to mix in the early, worse weights of a short run.
EMA_HORIZON_SHARE = 0.1
# The CPU recipe's sizes and rates: the defaults of this script's options (which override them).
# IRSRNet's steps by training precision: what the 20-minute budget of two CPU cores holds (docs/sr_recipe.md).
# A bf16 step on a CPU with AMX (or a GPU) takes about 0.4 of an fp32 one, so it runs more of them.
RECIPE_PSNR_ITERS = {"bf16": 4000, "none": 1000}
CPU_CONFIGS = {model: REPO_ROOT / "configs" / "cpu" / f"{model}_x4.yaml" for model in ("irsrnet", "irsrgan")}


def cpu_config(model: str) -> dict:
    """The options of configs/cpu/<model>_x4.yaml."""
    return read_config(str(CPU_CONFIGS[model])).values


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


GAN_WEIGHT_WITHOUT_VGG = 0.0025  # RaGAN's weight next to L1 (weight 1) when no VGG19 loss runs


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
        # PSNR stage's own L1 (weight 1) takes the content role. Next to it RaGAN at ESRGAN's 0.005 cost
        # 1.7 dB against IRSRNet on real thermal frames (-1.0 to -2.4 by seed; docs/sr_recipe.md), so half.
        flags = ("--lambda_perceptual", "0", "--lambda_L1", "1.0", "--lambda_gan", str(GAN_WEIGHT_WITHOUT_VGG))
        return VggChoice(flags,
                         f"IRSRGAN (no VGG19 weights: L1 + RaGAN {GAN_WEIGHT_WITHOUT_VGG})")
    if choice == "random":
        return VggChoice(("--perceptual_vgg", "random"), "IRSRGAN (untrained-VGG19 loss)")
    if choice != "torchvision" and not Path(choice).is_file():
        raise UserError(f"--vgg_weights {choice}: no such file; pass a copy of {VGG19_FILE}, auto, torchvision, "
                        f"random or none")
    return VggChoice(("--perceptual_vgg", choice) if choice == "torchvision" else ("--vgg_weights", choice), "IRSRGAN")


# ------------------------------------------------------------------ bicubic baseline
def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic upscaling (Pillow's Keys kernel, a = -0.5, as MATLAB's ``imresize``) of an 8- or
    16-bit ``H x W x C`` image, in float and rounded once, keeping its dtype."""
    height, width = image.shape[:2]
    planes = [np.asarray(Image.fromarray(image[..., channel].astype(np.float32)).resize(
        (width * scale, height * scale), Image.Resampling.BICUBIC)) for channel in range(image.shape[2])]
    peak = np.iinfo(image.dtype).max
    return np.clip(np.rint(np.stack(planes, axis=2)), 0, peak).astype(image.dtype)


def band_limit(image: np.ndarray, scale: int) -> np.ndarray:
    """``image`` (H x W x C) in float with every frequency at or above the Nyquist frequency of its
    1/``scale`` version removed: an ideal low-pass, on the mirrored image so that its edges do not wrap
    around. What an upscaler that restored all the LR can carry, and invented nothing, would output."""
    height, width = image.shape[:2]
    mirrored = np.pad(image.astype(np.float64), ((0, height), (0, width), (0, 0)), mode="symmetric")
    cutoff = 0.5 / scale
    keep = ((np.abs(np.fft.fftfreq(2 * height)) < cutoff)[:, None]
            & (np.abs(np.fft.fftfreq(2 * width)) < cutoff)[None, :])
    return np.fft.ifft2(np.fft.fft2(mirrored, axes=(0, 1)) * keep[..., None], axes=(0, 1)).real[:height, :width]


def reference_upscalers(scale: int) -> dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
    """The table's reference rows, bicubic first: ``{folder name: (label, (LR, HR) -> output)}``, outputs of
    HR's size and dtype."""

    def band_limited_hr(_: np.ndarray, hr: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(band_limit(hr, scale)), 0, np.iinfo(hr.dtype).max).astype(hr.dtype)

    return {"bicubic": ("bicubic", lambda lr, _: bicubic_upscale(lr, scale)),
            "band_limited": (BAND_LIMITED_LABEL, band_limited_hr)}


def write_reference_results(source: Path, target: Path, name: str,
                            upscale: Callable[[np.ndarray, np.ndarray], np.ndarray], scale: int) -> Path:
    """A results folder like test.py's: ``upscale(LR, HR)`` of each image pair of ``source`` as ``SR``."""
    pairs, _, _ = find_result_pairs(source, "LR", "HR")
    images = target / "images"
    if target.exists():
        shutil.rmtree(target)
    images.mkdir(parents=True)
    for pair in pairs:
        output = upscale(read_image(pair.output), read_image(pair.target))
        write_image(images / f"{pair.image}_SR.png", output[..., 0] if output.shape[2] == 1 else output)
        shutil.copyfile(pair.target, images / f"{pair.image}_HR.png")
    write_manifest(target, name=name, images=len(pairs), visuals=["SR", "HR"], output_visual="SR",
                   target_visual="HR", metric_settings={"crop_border": scale})
    return target


# ------------------------------------------------------------------ per-image results
def read_per_image(folder: Path, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{image: {metric: value}}`` from a results folder's metrics.csv, plus each output's sharpness."""
    with open(folder / "metrics.csv", newline="") as handle:
        rows = {row["image"]: {name: float(row[name]) for name in metrics if name in row}
                for row in csv.DictReader(handle)}
    for image, sharpness in sharpness_per_image(folder, "output").items():
        rows[image]["sharpness"] = sharpness
    return rows


def sharpness_per_image(folder: Path, which: str) -> dict[str, float]:
    """log2 of the variance of the Laplacian (0..255 scale) of each output or reference image."""
    pairs, _, _ = find_result_pairs(folder)
    return {pair.image: math.log2(max(float(laplacian_variance(read_for_metrics(getattr(pair, which))[None])[0]),
                                      1e-12)) for pair in pairs}


def channel_spread(folder: Path) -> float:
    """Mean absolute difference between the colour channels of the outputs (0..255): the
    colour-stripe artefact of RGB networks on grey images; 0 for grey output."""
    pairs, _, _ = find_result_pairs(folder)
    spreads = []
    for pair in pairs:
        image = read_for_metrics(pair.output)
        if image.shape[0] < 3:
            return 0.0
        spreads.append(float(((image[0] - image[1]).abs() + (image[1] - image[2]).abs()
                              + (image[0] - image[2]).abs()).mean() / 3))
    return float(np.mean(spreads))


def image_sources(dataroot: Path, phase: str = "test") -> dict[str, str]:
    """``{image name: source}`` when the split keeps one folder per source (``<phase>/HR/<source>/``
    or ``<phase>/<source>/``); empty when its images lie in one folder."""
    split = dataroot / phase
    base = split / "HR" if (split / "HR").is_dir() else split
    if not base.is_dir():
        return {}
    sources = {}
    for path in find_images(base):
        relative = path.relative_to(base)
        if len(relative.parts) > 1 and relative.parts[0] != "LR":
            sources[path.stem] = relative.parts[0]
    return sources


def column_title(metric: str, lpips: LpipsChoice) -> str:
    titles = {**COLUMN_TITLES, "psnr_gain": "Δ PSNR vs bicubic", "win_rate": "beats bicubic",
              "colour_spread": "colour spread ↓ (grey levels)"}
    title = titles.get(metric, metric.upper())
    return f"{title} ({RANDOM_LPIPS_NOTE})" if metric in LPIPS_METRICS and lpips.weights == "random" else title


def markdown_table(rows: dict[str, dict[str, dict[str, tuple[float, float]]]], lpips: LpipsChoice,
                   row_header: str) -> str:
    """``rows[label][source][metric] = (mean, std)`` as Markdown, one line per label and source."""
    metrics = list(dict.fromkeys(metric for by_source in rows.values() for row in by_source.values()
                                 for metric in row))
    lines = ["| " + " | ".join([row_header, "source", *(column_title(name, lpips) for name in metrics)]) + " |",
             "|" + "---|" * (len(metrics) + 2)]
    for label, by_source in rows.items():
        for source, row in by_source.items():
            cells = [format_cell(name, *row[name]) if name in row else "" for name in metrics]
            lines.append("| " + " | ".join([label, source, *cells]) + " |")
    return "\n".join(lines) + "\n"


def csv_column(metric: str, lpips: LpipsChoice) -> str:
    return f"{metric}_random_vgg" if metric in LPIPS_METRICS and lpips.weights == "random" else metric


def write_table_csv(path: Path, rows: dict[str, dict[str, dict[str, tuple[float, float]]]],
                    extra: dict[str, dict[str, str]], lpips: LpipsChoice, first_column: str) -> None:
    """One row per label and source: mean and std over seeds of each metric, then the ``extra`` columns."""
    metrics = list(dict.fromkeys(metric for by_source in rows.values() for row in by_source.values()
                                 for metric in row))
    extra_columns = list(next(iter(extra.values())))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([first_column, "source", *(f"{csv_column(name, lpips)}{suffix}" for name in metrics
                                                   for suffix in ("", "_std")), *extra_columns])
        for label, by_source in rows.items():
            for source, row in by_source.items():
                writer.writerow([label, source, *(f"{value:.6f}" if name in row else "" for name in metrics
                                                  for value in row.get(name, (0.0, 0.0))),
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
    axes[0].set_ylabel("SSIM per image (all seeds)")
    figure.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def detail_window(reference: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window with the most Laplacian energy in ``reference``."""
    laplacian = np.abs(4 * reference[1:-1, 1:-1] - reference[:-2, 1:-1] - reference[2:, 1:-1]
                       - reference[1:-1, :-2] - reference[1:-1, 2:])
    step = max(size // 4, 1)
    best, corner = -1.0, (0, 0)
    for top in range(0, max(laplacian.shape[0] - size, 0) + 1, step):
        for left in range(0, max(laplacian.shape[1] - size, 0) + 1, step):
            energy = float(laplacian[top:top + size, left:left + size].sum())
            if energy > best:
                best, corner = energy, (top + 1, left + 1)
    return corner


def write_side_by_side(folders: dict[str, Path], path: Path, count: int = 3, size: int = 128) -> None:
    """Crops of ``count`` test images, one row each: every method's output, then HR, with titles."""
    from PIL import ImageDraw

    pairs = {label: {pair.image: pair for pair in find_result_pairs(folder)[0]} for label, folder in folders.items()}
    names = sorted(next(iter(pairs.values())))
    chosen = [names[round(i * (len(names) - 1) / max(count - 1, 1))] for i in range(min(count, len(names)))]
    gap, title = 4, 14
    columns = [*folders, "HR"]
    sheet = Image.new("L", (len(columns) * (size + gap), title + len(chosen) * (size + gap)), 255)
    draw = ImageDraw.Draw(sheet)
    for column, label in enumerate(columns):
        draw.text((column * (size + gap) + 2, 1), label[:22], fill=0)
    for row, name in enumerate(chosen):
        reference = read_image(next(iter(pairs.values()))[name].target)[..., 0]
        crop = min(size, *reference.shape[:2])
        top, left = detail_window(reference.astype(np.float64), crop)
        for column, label in enumerate(columns):
            source = reference if label == "HR" else read_image(pairs[label][name].output)[..., 0]
            tile = Image.fromarray(np.asarray(source[top:top + crop, left:left + crop], dtype=np.uint8))
            sheet.paste(tile, (column * (size + gap), title + row * (size + gap)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


# ------------------------------------------------------------------ the pipeline
ABLATIONS = ("degradation", "architecture")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataroot", default=None,
                        help=f"SR dataset (train/ and test/ folders of HR images, or HR/ + LR/ pairs); default: "
                             f"{DEFAULT_DATAROOT}, made from the synthetic dataset's infrared images if missing")
    parser.add_argument("--name", default="sr_table", help="experiment names are <name>_s<seed>_<model>")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--results_dir", default="./results")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds; the table is mean ± std over them")
    psnr, gan = cpu_config("irsrnet"), cpu_config("irsrgan")
    g = parser.add_argument_group("budget (the defaults are the CPU recipe; the published runs use --nf 64 --nb 23 "
                                  "--gc 32 --ndf 64 --crop_size 128 --psnr_lr 2e-4 and far more steps)")
    g.add_argument("--scale", type=int, default=psnr["scale"], choices=[2, 3, 4])
    g.add_argument("--netG", default=psnr["netG"], choices=["crdb", "rrdb"])
    g.add_argument("--nf", type=int, default=psnr["nf"], help="generator trunk width")
    g.add_argument("--nb", type=int, default=psnr["nb"], help="CRDB blocks")
    g.add_argument("--gc", type=int, default=psnr["gc"], help="growth channels of the dense blocks")
    g.add_argument("--sr_residual", default=psnr["sr_residual"], choices=["bicubic", "none"],
                   help="the generator predicts the residual over bicubic upsampling, or the whole image")
    g.add_argument("--ndf", type=int, default=gan["ndf"], help="discriminator width")
    g.add_argument("--crop_size", type=int, default=psnr["crop_size"],
                   help="HR training patch (at least 64 for the discriminator)")
    g.add_argument("--batch_size", type=int, default=psnr["batch_size"])
    g.add_argument("--max_dataset_size", type=int, default=1_000_000, help="training images used")
    g.add_argument("--amp", default="auto", choices=["auto", "bf16", "none"],
                   help="training precision: auto = bf16 (with channels-last) where the hardware runs it natively "
                        "(CPUs with AMX, GPUs with bf16), fp32 (none) elsewhere")
    g.add_argument("--psnr_iters", type=int, default=None,
                   help="optimiser steps of each IRSRNet run (cosine decay); default by precision: "
                        + ", ".join(f"{steps} in {mode}" for mode, steps in RECIPE_PSNR_ITERS.items()))
    g.add_argument("--gan_iters", type=int, default=200, help="optimiser steps of the IRSRGAN stage")
    g.add_argument("--psnr_lr", type=float, default=psnr["lr"],
                   help="IRSRNet's Adam rate; the published 2e-4 is too slow for a few thousand steps of a small net")
    g.add_argument("--gan_lr", type=float, default=gan["lr"], help="IRSRGAN's Adam rate (ESRGAN's; IRSRGAN used 3e-4)")
    g.add_argument("--num_test", type=int, default=None, help="test images (default: the whole split)")
    g = parser.add_argument_group("methods and metrics")
    g.add_argument("--alpha", type=float, default=0.8,
                   help="weight of the GAN generator in the interpolated model: (1 - alpha) PSNR + alpha GAN")
    g.add_argument("--degradation_prob", type=float, default=0.0,
                   help="random-degradation probability of the table's IRSRNet and IRSRGAN (the test LR is clean)")
    g.add_argument("--ablation_degradation_prob", type=float, default=0.25,
                   help="the degradation ablation's 'with' arm (its other arm uses 0)")
    g.add_argument("--metrics", default="psnr,ssim,psnr_y,ssim_y,lpips,lpips_i_ref",
                   help="main table, comma-separated from psnr,ssim,rmse,psnr_y,ssim_y,lpips,lpips_i,lpips_i_ref "
                        "(LPIPS ones only with VGG16 weights); the ablations use psnr,ssim")
    g.add_argument("--lpips_weights", default="auto",
                   help="VGG16 for LPIPS: auto (torchvision's ImageNet weights when cached, else LPIPS is left out), "
                        f"a local {VGG16_FILE}, torchvision, or random (an untrained backbone, labelled)")
    g.add_argument("--vgg_weights", default="auto",
                   help="VGG19 of the GAN stage's perceptual loss: auto (torchvision's weights when cached, else "
                        f"none), a local {VGG19_FILE}, torchvision, random (untrained features, which hold almost "
                        f"nothing: smoke tests) or none (no perceptual term; L1 at weight 1 + RaGAN 0.005)")
    g.add_argument("--reuse", action="store_true",
                   help="keep the runs that finished before (main table and ablations; recorded in "
                        "<results>/<run>_runs.json) instead of training them again: resume an interrupted table, "
                        "or run seeds in parallel (one call per seed), then aggregate them in one call over all seeds")
    g.add_argument("--ablations", default="",
                   help=f"comma-separated from {','.join(ABLATIONS)}: random degradation on/off tested on clean and "
                        f"degraded LR; CRDB vs RRDB at equal steps on grey images as RGB (colour-stripe measure)")
    g = parser.add_argument_group("passing flags on")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads of each subprocess (OMP_NUM_THREADS); 1 can be faster on a shared machine")
    g.add_argument("--common_args", default="", help="extra flags for every train.py and test.py call")
    g.add_argument("--train_args", default="", help="extra flags for every train.py call")
    opt = parser.parse_args(argv)
    opt.metrics = parse_metric_names(opt.metrics)
    opt.seeds = parse_seeds(opt.seeds)
    opt.amp = resolve_amp(opt.amp, resolve_device("auto"))  # the device train.py picks by default
    if opt.psnr_iters is None:
        opt.psnr_iters = RECIPE_PSNR_ITERS[opt.amp]
    opt.ablations = tuple(part.strip() for part in opt.ablations.split(",") if part.strip())
    unknown = sorted(set(opt.ablations) - set(ABLATIONS))
    if unknown:
        raise UserError(f"--ablations {','.join(unknown)}: choose from {','.join(ABLATIONS)}")
    if not 0.0 <= opt.alpha <= 1.0:
        raise UserError(f"--alpha must lie in [0, 1], got {opt.alpha}")
    if min(opt.psnr_iters, opt.gan_iters) < 1:
        raise UserError("--psnr_iters and --gan_iters must be at least 1")
    return opt


def ema_decay(iters: int) -> float:
    """An EMA decay whose horizon 1 / (1 - d) is EMA_HORIZON_SHARE of ``iters`` steps (at least 10)."""
    return 1.0 - 1.0 / max(EMA_HORIZON_SHARE * iters, 10.0)


class Pipeline:
    """The runs of one table: shared flags, folders and the log of every subprocess."""

    def __init__(self, opt: argparse.Namespace, dataroot: str, lpips: LpipsChoice) -> None:
        self.opt = opt
        self.lpips = lpips
        self.dataroot = dataroot
        self.checkpoints = Path(opt.checkpoints_dir)
        self.results = Path(opt.results_dir)
        self.log = self.results / f"{opt.name}_log.txt"
        train = Path(dataroot) / "train"
        self.train_images = min(len(find_images(train / "HR" if (train / "HR").is_dir() else train)),
                                opt.max_dataset_size)

    def architecture(self, seed: int, *flags: str) -> list[str]:
        opt = self.opt
        return ["--dataroot", self.dataroot, "--scale", str(opt.scale), "--nf", str(opt.nf), "--nb", str(opt.nb),
                "--gc", str(opt.gc), "--netG", opt.netG, "--seed", str(seed), *flags, *shlex.split(opt.common_args)]

    def metric_flags(self, metrics: Sequence[str]) -> list[str]:
        if self.lpips.weights is None:
            metrics = [name for name in metrics if name not in LPIPS_METRICS]
        flags = ["--metrics", ",".join(metrics)]
        if set(metrics) & set(LPIPS_METRICS):
            flags += ["--lpips_weights", str(self.lpips.weights)]
        return flags

    def finished(self, run: str, work: Callable[[], dict]) -> dict:
        """``work()``'s record of ``run`` (JSON-able), kept in <results>/<run>_runs.json once it is complete; with
        ``--reuse`` an existing record is returned instead of running ``work`` again."""
        record = self.results / f"{run}_runs.json"
        if self.opt.reuse and record.is_file():
            print(f"[{run}] reusing the finished runs recorded in {record}", flush=True)
            return json.loads(record.read_text())
        done = work()
        record.write_text(json.dumps(done))
        return done

    def epochs(self, iters: int) -> int:
        """Epochs that give at least ``iters`` optimiser steps."""
        return math.ceil(iters / math.ceil(self.train_images / self.opt.batch_size))

    def train(self, model: str, name: str, iters: int, architecture: list[str], *flags: str) -> float:
        """Train one stage from scratch for about ``iters`` steps; return its seconds."""
        shutil.rmtree(self.checkpoints / name, ignore_errors=True)  # a fresh run, never a stale resume
        opt = self.opt
        args = ["--model", model, "--name", name, "--checkpoints_dir", str(self.checkpoints), *architecture,
                "--crop_size", str(opt.crop_size), "--batch_size", str(opt.batch_size), "--max_dataset_size",
                str(opt.max_dataset_size), "--n_epochs", str(self.epochs(iters)), "--n_epochs_decay", "0",
                "--ema_decay", f"{ema_decay(iters):.6f}", "--val_freq", "0", "--save_epoch_freq", "1000000",
                "--display_id", "0", "--no_html", "--amp", opt.amp, *(["--channels_last"] if opt.amp == "bf16" else []),
                *flags, *shlex.split(opt.train_args)]
        print(f"[{name}] training {model} for {self.epochs(iters)} epoch(s) (~{iters} steps) ...", flush=True)
        return run("train.py", args, self.log, opt.threads)

    def train_pair(self, prefix: str, seed: int, architecture: list[str], degradation_prob: float,
                   vgg: VggChoice | None) -> tuple[float, float]:
        """IRSRNet, then (given ``vgg``) IRSRGAN from it; returns both training times."""
        opt = self.opt
        degradation = ("--degradation_prob", str(degradation_prob))
        psnr_seconds = self.train("irsrnet", f"{prefix}_irsrnet", opt.psnr_iters, architecture, *degradation,
                                  "--lr", str(opt.psnr_lr), "--lr_policy", cpu_config("irsrnet")["lr_policy"])
        if vgg is None:
            return psnr_seconds, 0.0
        gan_seconds = self.train("irsrgan", f"{prefix}_irsrgan", opt.gan_iters, architecture, *degradation,
                                 "--lr", str(opt.gan_lr), "--ndf", str(opt.ndf), "--psnr_checkpoint",
                                 str(self.generator_file(f"{prefix}_irsrnet")), *vgg.flags)
        return psnr_seconds, gan_seconds

    def test(self, model: str, name: str, metrics: Sequence[str], results_dir: Path, architecture: list[str],
             *flags: str) -> Path:
        """test.py on the test split; returns its results folder."""
        args = ["--model", model, "--name", name, "--checkpoints_dir", str(self.checkpoints), "--results_dir",
                str(results_dir), *architecture, *self.metric_flags(metrics), *flags]
        if self.opt.num_test is not None:
            args += ["--num_test", str(self.opt.num_test)]
        run("test.py", args, self.log, self.opt.threads)
        return results_dir / name / "test_latest"

    def interpolate(self, prefix: str, architecture: list[str]) -> Path:
        """net_interp.py's blend of the two generators that test.py evaluates, tested the same way."""
        out = self.results / f"{prefix}_interp"
        args = ["--psnr_weights", str(self.generator_file(f"{prefix}_irsrnet")), "--gan_weights",
                str(self.generator_file(f"{prefix}_irsrgan")), "--lambdas", str(self.opt.alpha), "--out", str(out),
                *architecture, *self.metric_flags(self.opt.metrics)]
        if self.opt.num_test is not None:
            args += ["--num_test", str(self.opt.num_test)]
        run("scripts/net_interp.py", args, self.log, self.opt.threads)
        return out / f"interp_{self.opt.alpha:.2f}" / "test_latest"

    def generator_file(self, name: str) -> Path:
        # test.py evaluates the EMA generator when there is one; the GAN stage and the blend start from it too.
        folder = self.checkpoints / name
        ema = folder / "latest_net_G_ema.pth"
        return ema if ema.is_file() else folder / "latest_net_G.pth"

    def references(self, lr_source: Path) -> dict[str, Path]:
        """The reference rows' results folders (bicubic first), made from ``lr_source``'s LR and HR images."""
        folders = {}
        for name, (label, upscale) in reference_upscalers(self.opt.scale).items():
            folder = write_reference_results(lr_source, self.results / f"{self.opt.name}_{name}" / "test", name,
                                             upscale, self.opt.scale)
            run("scripts/evaluate.py", [str(folder), "--crop_border", str(self.opt.scale), "--label", label,
                                        *self.metric_flags(self.opt.metrics)], self.log, self.opt.threads)
            folders[label] = folder
        return folders


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    opt = parse_args(argv)
    start = time.perf_counter()
    lpips, vgg = resolve_lpips(opt.lpips_weights), resolve_vgg(opt.vgg_weights)
    dataroot = opt.dataroot
    if dataroot is None:
        from data.offline.synthetic_sr import ensure_synthetic_sr_dataset

        dataroot = str(ensure_synthetic_sr_dataset(DEFAULT_DATAROOT, workers=2))
    pipeline = Pipeline(opt, dataroot, lpips)
    pipeline.log.unlink(missing_ok=True)
    print(f"log of every run: {pipeline.log}", flush=True)
    print(f"training precision {'bf16' if opt.amp == 'bf16' else 'fp32'}: IRSRNet {opt.psnr_iters} steps, "
          f"IRSRGAN {opt.gan_iters}", flush=True)

    gan_label = vgg.label
    blend_label = f"interpolated (alpha = {opt.alpha:g})"
    runs = {label: MethodRuns({}, []) for label in ("IRSRNet", gan_label, blend_label)}
    first_folders: dict[str, Path] = {}
    reference_folders: dict[str, Path] = {}
    for seed in opt.seeds:
        prefix = f"{opt.name}_s{seed}"
        architecture = pipeline.architecture(seed, "--sr_residual", opt.sr_residual)

        def train_and_test() -> dict:
            seconds = pipeline.train_pair(prefix, seed, architecture, opt.degradation_prob, vgg)
            folders = (pipeline.test("irsrnet", f"{prefix}_irsrnet", opt.metrics, pipeline.results, architecture),
                       pipeline.test("irsrgan", f"{prefix}_irsrgan", opt.metrics, pipeline.results, architecture),
                       pipeline.interpolate(prefix, architecture))
            return {"train_seconds": list(seconds), "folders": [str(folder) for folder in folders]}

        finished = pipeline.finished(prefix, train_and_test)
        seconds = tuple(finished["train_seconds"])
        folders = dict(zip(("IRSRNet", gan_label, blend_label), map(Path, finished["folders"])))
        if not reference_folders:
            reference_folders = pipeline.references(folders["IRSRNet"])
            first_folders = {"bicubic": reference_folders["bicubic"], **folders}
        for (label, folder), train_seconds in zip(folders.items(), (seconds[0], seconds[1], 0.0)):
            runs[label].seeds[seed] = read_per_image(folder, opt.metrics)
            runs[label].train_seconds.append(train_seconds)
    assert reference_folders
    runs["IRSRNet"].iters, runs[gan_label].iters = str(opt.psnr_iters), str(opt.gan_iters)

    references = {label: read_per_image(folder, opt.metrics) for label, folder in reference_folders.items()}
    bicubic = references["bicubic"]
    groups = source_groups(list(bicubic), image_sources(Path(dataroot)))
    rows = {label: aggregate(MethodRuns({seed: per_image for seed in opt.seeds}, [0.0]), groups, None)
            for label, per_image in references.items()}
    rows.update({label: aggregate(method_runs, groups, bicubic) for label, method_runs in runs.items()})
    extra = {label: {"train_seconds": "", "iters": ""} for label in references}
    extra.update({label: {"train_seconds": f"{np.mean(r.train_seconds):.1f}" if any(r.train_seconds) else "",
                          "iters": r.iters} for label, r in runs.items()})
    csv_path = pipeline.results / f"{opt.name}.csv"
    write_table_csv(csv_path, rows, extra, lpips, "method")
    hr_sharpness = np.mean(list(sharpness_per_image(reference_folders["bicubic"], "target").values()))
    side_by_side = pipeline.results / f"{opt.name}_side_by_side.png"
    write_side_by_side(first_folders, side_by_side)
    print()
    print(f"seeds {','.join(map(str, opt.seeds))}; mean ± std over seeds of the per-image means; "
          f"HR sharpness {hr_sharpness:.2f}; GAN stage: {gan_label}")
    print(markdown_table(rows, lpips, "method"))
    if set(opt.metrics) & set(LPIPS_METRICS):
        print(lpips.note)
    print(f"{csv_path}\nside by side: {side_by_side}")
    print(f"main table: {(time.perf_counter() - start) / 60:.1f} min wall time, IRSRNet "
          f"{np.mean(runs['IRSRNet'].train_seconds) / 60:.1f} + IRSRGAN "
          f"{np.mean(runs[gan_label].train_seconds) / 60:.1f} min of training per seed", flush=True)

    if "degradation" in opt.ablations:
        degradation_ablation(pipeline)
    if "architecture" in opt.ablations:
        architecture_ablation(pipeline, vgg)
    print(f"total wall time {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return rows


def degradation_ablation(pipeline: Pipeline) -> None:
    """IRSRNet with and without random degradation, tested on clean and degraded LR over the seeds:
    table, CSV, SSIM box plot."""
    opt = pipeline.opt
    metrics = ("psnr", "ssim")
    arms = {f"with (p = {opt.ablation_degradation_prob:g})": opt.ablation_degradation_prob, "without (p = 0)": 0.0}
    per_image: dict[tuple[str, str], MethodRuns] = {}
    for seed in opt.seeds:
        architecture = pipeline.architecture(seed, "--sr_residual", opt.sr_residual)
        for arm_index, (arm, probability) in enumerate(arms.items()):
            if probability == opt.degradation_prob:  # the main table's IRSRNet is this arm: same flags, same seed
                name = f"{opt.name}_s{seed}"
            else:
                name = f"{opt.name}_s{seed}_degradation{arm_index}"
                pipeline.finished(name, lambda: {"train_seconds": list(
                    pipeline.train_pair(name, seed, architecture, probability, None))})
            # Degraded test LR is made from HR (--sr_input hr): stored LR folders hold clean LR only.
            for test_set, flags in (("clean", ()), ("degraded", ("--eval_degradation", "fixed", "--sr_input", "hr"))):
                folder = pipeline.test("irsrnet", f"{name}_irsrnet", metrics, pipeline.results / test_set,
                                       architecture, *flags)
                per_image.setdefault((arm, test_set), MethodRuns({}, [])).seeds[seed] = read_per_image(folder,
                                                                                                       metrics)
    rows, extra = {}, {}
    for (arm, test_set), method_runs in sorted(per_image.items(), key=lambda item: item[0][1]):
        images = list(next(iter(method_runs.seeds.values())))
        label = f"IRSRNet {arm}, {test_set} test LR"
        rows[label] = {ALL_SOURCES: {name: value for name, value in
                                     aggregate(method_runs, {ALL_SOURCES: images}, None)[ALL_SOURCES].items()
                                     if name in metrics}}
        extra[label] = {"training": arm, "test_lr": test_set}
    csv_path = pipeline.results / f"{opt.name}_degradation.csv"
    write_table_csv(csv_path, rows, extra, pipeline.lpips, "run")
    plot_path = pipeline.results / f"{opt.name}_degradation_ssim.png"
    save_ssim_boxplot({test_set: {arm: [values[image]["ssim"] for values in per_image[(arm, test_set)].seeds.values()
                                        for image in values] for arm in arms}
                       for test_set in ("clean", "degraded")}, plot_path,
                      f"IRSRNet trained with / without random degradation ({opt.psnr_iters} steps each)")
    print(f"\nRandom-degradation ablation (IRSRNet, {opt.psnr_iters} steps each, seeds "
          f"{','.join(map(str, opt.seeds))})\n")
    print(markdown_table(rows, pipeline.lpips, "run"))
    print(f"{csv_path}\nSSIM box plot: {plot_path}")


def architecture_ablation(pipeline: Pipeline, vgg: VggChoice) -> None:
    """CRDB vs RRDB at equal steps in IRSRGAN's 3-channel setting (grey images as RGB): PSNR, SSIM
    and the colour-stripe measure of both stages' outputs (the PSNR stage is the steadier comparison:
    200 GAN steps add most of the seed-to-seed spread), and the training time of each stage."""
    opt = pipeline.opt
    metrics = ("psnr", "ssim")
    stages = ("irsrnet", "irsrgan")
    rows, extra = {}, {}
    for net in ("crdb", "rrdb"):
        stage_runs = {stage: MethodRuns({}, []) for stage in stages}
        spreads: dict[str, list[float]] = {stage: [] for stage in stages}
        for seed in opt.seeds:
            name = f"{opt.name}_s{seed}_{net}_rgb"
            architecture = [*pipeline.architecture(seed, "--sr_residual", opt.sr_residual), "--netG", net,
                            "--input_nc", "3", "--output_nc", "3"]

            def train_and_test() -> dict:
                seconds = pipeline.train_pair(name, seed, architecture, opt.degradation_prob, vgg)
                folders = [pipeline.test(stage, f"{name}_{stage}", metrics, pipeline.results, architecture)
                           for stage in stages]
                return {"train_seconds": list(seconds), "folders": [str(folder) for folder in folders]}

            finished = pipeline.finished(name, train_and_test)
            for stage, folder, seconds in zip(stages, map(Path, finished["folders"]), finished["train_seconds"]):
                stage_runs[stage].seeds[seed] = read_per_image(folder, metrics)
                stage_runs[stage].train_seconds.append(seconds)
                spreads[stage].append(channel_spread(folder))
        for stage, stage_label in zip(stages, ("IRSRNet", vgg.label)):
            method_runs = stage_runs[stage]
            images = list(next(iter(method_runs.seeds.values())))
            row = aggregate(method_runs, {ALL_SOURCES: images}, None)[ALL_SOURCES]
            row["colour_spread"] = (float(np.mean(spreads[stage])), float(np.std(spreads[stage])))
            label = f"{net.upper()} (3-channel), {stage_label}"
            rows[label] = {ALL_SOURCES: row}
            extra[label] = {"train_seconds": f"{np.mean(method_runs.train_seconds):.1f}"}
    csv_path = pipeline.results / f"{opt.name}_architecture.csv"
    write_table_csv(csv_path, rows, extra, pipeline.lpips, "generator")
    print(f"\nCRDB vs RRDB ({opt.psnr_iters} + {opt.gan_iters} steps each, grey images as RGB; colour_spread: mean "
          f"|R-G|, |G-B|, |R-B| of the output, 0 for grey)\n")
    print(markdown_table(rows, pipeline.lpips, "generator"))
    print(csv_path)


if __name__ == "__main__":
    run_cli(main)
