"""Per-image quality metrics of model outputs: the one code path of validation, test.py and scripts/evaluate.py.

Protocol (the visible-to-infrared papers'): outputs and references are quantised exactly as
they are saved (8 bit, or 16 bit with ``test.py --save_16bit``) and expressed on the 0..255
scale; PSNR (peak 255), SSIM (11x11 Gaussian window, sigma 1.5) and RMSE are computed per
image, ``crop_border`` pixels in from every side, and averaged over images. LPIPS and
LPIPS-I see the whole image, as the ``lpips`` package and IRSRGAN compute them.

A results folder is ``<dir>/images/<image>_<visual>.png`` plus ``manifest.json`` (which
visuals are the output and the reference, bit depth, metric settings), ``metrics.csv``
(per image), ``metrics.json`` (``{metric: {"mean", "std"}}``) and ``ssim_boxplot.png``.
"""
from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from util import metrics
from util.errors import UserError
from util.image_io import read_image
from util.lpips_metrics import LPIPSMetric, lpips_i, lpips_i_ref

METRIC_CHOICES = ("psnr", "ssim", "rmse", "psnr_y", "ssim_y", "lpips", "lpips_i", "lpips_i_ref")
DEFAULT_METRICS = ("psnr", "ssim", "rmse")
Y_METRICS_HELP = ("psnr_y/ssim_y: the SR papers' convention (BasicSR, IRSRGAN), on the BT.601 luma Y in [16, 235], "
                  "grey as 16 + 219 g / 255; SR models crop --scale border pixels")
_LPIPS_METRICS = ("lpips", "lpips_i", "lpips_i_ref")
SCALE = 255.0  # every metric sees images on the 0..255 scale, whatever their bit depth

MANIFEST_FILE = "manifest.json"
# Output and reference visuals tried, in order, when a folder has no manifest: pix2pix-style, then SR models.
DEFAULT_VISUAL_PAIRS = (("fake_B", "real_B"), ("SR", "HR"))


def parse_metric_names(text: str, option: str = "--metrics") -> tuple[str, ...]:
    """``"psnr,ssim"`` -> ``("psnr", "ssim")``, refusing unknown names."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in METRIC_CHOICES]
    if unknown or not names:
        raise UserError(f"{option} {text!r}: choose a comma-separated list from {','.join(METRIC_CHOICES)}")
    return names


def quantise(images: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Model-range [-1, 1] images -> float64 on the 0..255 scale, rounded to ``2**bits`` levels.

    The rounding repeats :func:`util.image_io.tensor_to_image` step for step (in float32),
    so the values are exactly those of the saved PNG files.
    """
    peak = 2**bits - 1
    unit = (images.detach().float().clamp(-1.0, 1.0) + 1.0) / 2.0
    return torch.round(unit * peak).double() * (SCALE / peak)


def read_for_metrics(path: str | Path) -> torch.Tensor:
    """A saved 8- or 16-bit image as a (C, H, W) float64 tensor on the 0..255 scale."""
    array = read_image(path)
    if array.dtype not in (np.uint8, np.uint16):
        raise UserError(f"{path}: {array.dtype} images have no bit depth to evaluate at; save outputs as 8- or 16-bit")
    peak = 255.0 if array.dtype == np.uint8 else 65535.0
    return torch.from_numpy(array.astype(np.float64)).permute(2, 0, 1) * (SCALE / peak)


class ImageEvaluator:
    """Computes the chosen metrics of (output, reference) batches given on the 0..255 scale."""

    def __init__(
        self,
        names: Sequence[str] = DEFAULT_METRICS,
        crop_border: int = 0,
        y_channel: bool = False,
        lpips_weights: str = "torchvision",
        device: str | torch.device = "cpu",
    ) -> None:
        unknown = [name for name in names if name not in METRIC_CHOICES]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRIC_CHOICES)}")
        if crop_border < 0:
            raise UserError(f"metric crop border must be >= 0, got {crop_border}")
        self.names = tuple(names)
        self.crop_border = crop_border
        self.y_channel = y_channel
        self.lpips_weights = lpips_weights
        # Built up front, so that missing weights stop a run before it does any work.
        self.lpips = LPIPSMetric(lpips_weights, device) if set(self.names) & set(_LPIPS_METRICS) else None

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image values, each a float64 CPU tensor of shape (N,), in the order of ``names``."""
        if output.shape != target.shape:
            raise ValueError(f"output and reference differ in shape: {tuple(output.shape)} and {tuple(target.shape)}")
        output, target = output.cpu(), target.cpu()
        classical = [name for name in self.names if name in metrics.METRIC_NAMES]
        try:
            values = metrics.compute_metrics(output, target, SCALE, names=classical, crop_border=self.crop_border,
                                             y_channel=self.y_channel, window="gaussian") if classical else {}
        except ValueError as error:  # images too small for the crop border or the SSIM window
            raise UserError(f"cannot compute {', '.join(classical)}: {error}") from None
        if self.lpips is not None:
            distance = self.lpips(output, target)
            values.update(lpips=distance, lpips_i=lpips_i(output, distance),
                          lpips_i_ref=lpips_i_ref(output, target, distance))
        return {name: values[name] for name in self.names}

    def settings(self) -> dict[str, object]:
        settings: dict[str, object] = {"metrics": list(self.names), "scale": "0..255", "crop_border": self.crop_border,
                                       "y_channel": self.y_channel, "ssim_window": "gaussian 11x11, sigma 1.5"}
        if self.lpips is not None:
            settings["lpips"] = f"lpips 0.1 VGG16, backbone weights: {self.lpips_weights}"
        return settings


def format_values(values: dict[str, float]) -> str:
    """One image's metrics as ``PSNR 21.305 | SSIM 0.71234 | ...`` (the table's precision)."""
    return " | ".join(f"{name.upper()} {value:.{metrics.precision(name)}f}" for name, value in values.items())


class MetricTable:
    """Per-image metrics: their mean and standard deviation, CSV, JSON and an SSIM box plot."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float | str]] = []
        self.names: list[str] = []

    def add(self, images: list[str], values: dict[str, torch.Tensor]) -> list[dict[str, float]]:
        """Record one batch; returns each image's values."""
        self.names.extend(name for name in values if name not in self.names)
        added = [{name: float(value[index]) for name, value in values.items()} for index in range(len(images))]
        self.rows.extend({"image": image, **row} for image, row in zip(images, added, strict=True))
        return added

    def __len__(self) -> int:
        return len(self.rows)

    def unscored(self) -> list[str]:
        """Images with a NaN metric (e.g. a non-finite output): left out of every mean, and named."""
        return [str(row["image"]) for row in self.rows if any(math.isnan(float(row[name])) for name in self.names)]

    def summary(self) -> dict[str, tuple[float, float]]:
        unscored = set(self.unscored())
        scored = [row for row in self.rows if row["image"] not in unscored] or [{name: math.nan for name in self.names}]
        return metrics.summarize({name: torch.tensor([float(row[name]) for row in scored], dtype=torch.float64)
                                  for name in self.names})

    def means(self) -> dict[str, float]:
        return {name: mean for name, (mean, _std) in self.summary().items()}

    def markdown(self, label: str) -> str:
        table = metrics.format_markdown_table({label: self.summary()})
        unscored = self.unscored()
        if unscored:
            table += (f"\n{len(unscored)} of {len(self.rows)} images could not be scored (a metric is NaN) and are "
                      f"left out of the means: {', '.join(unscored)}\n")
        return table

    def write_csv(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", *self.names])
            writer.writeheader()
            writer.writerows(self.rows)

    def write_report(self, folder: str | Path, label: str) -> str:
        """Write ``metrics.csv``, ``metrics.json`` and (with SSIM) ``ssim_boxplot.png``; return the Markdown table."""
        folder = Path(folder)
        self.write_csv(folder / "metrics.csv")
        summary = self.summary()
        (folder / "metrics.json").write_text(json.dumps(
            {name: {"mean": _json_number(mean), "std": _json_number(std)} for name, (mean, std) in summary.items()},
            indent=2) + "\n")
        if "ssim" in self.names:
            write_boxplot([float(row["ssim"]) for row in self.rows], folder / "ssim_boxplot.png", label, "SSIM")
        return self.markdown(label)


def _json_number(value: float) -> float | str:
    # JSON has no inf/nan (PSNR of identical images is inf); write them as strings Python's float() reads back.
    return value if math.isfinite(value) else str(value)


def write_boxplot(values: Sequence[float], path: str | Path, label: str, metric: str) -> None:
    """A box plot of one metric's per-image values, with the values themselves jittered beside it."""
    # The object-oriented API, not pyplot: no global backend or figure state in the calling process.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    from matplotlib.figure import Figure

    finite = [value for value in values if math.isfinite(value)]
    figure = Figure(figsize=(4.0, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.boxplot(finite, widths=0.5)
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(finite))
    axes.scatter(1.45 + jitter, finite, s=8, alpha=0.5)
    axes.set_xticks([1], [label], fontsize=8)
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} per image (n = {len(finite)})", fontsize=10)
    figure.savefig(path)


# ------------------------------------------------------------------ results folders
def write_manifest(folder: str | Path, **fields: object) -> Path:
    """``manifest.json``: what a results folder holds, so scripts/evaluate.py can pair its images."""
    path = Path(folder) / MANIFEST_FILE
    path.write_text(json.dumps(fields, indent=2) + "\n")
    return path


def read_manifest(folder: str | Path) -> dict[str, object]:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error}); fix or delete it") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path} should hold a JSON object; fix or delete it")
    return manifest


@dataclass(frozen=True)
class ResultPair:
    image: str
    output: Path
    target: Path


def find_result_pairs(
    results_dir: str | Path, output_visual: str | None = None, target_visual: str | None = None
) -> tuple[list[ResultPair], str, str]:
    """Pair ``<image>_<output>.png`` with ``<image>_<target>.png`` in a results folder (or its ``images/``).

    Visual names come from the arguments, else the folder's manifest, else the first of
    :data:`DEFAULT_VISUAL_PAIRS` with output files present. Returns the pairs (sorted by
    image name) and the two visual names.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results folder {results_dir} does not exist")
    image_dir = results_dir / "images" if (results_dir / "images").is_dir() else results_dir
    manifest = read_manifest(results_dir)
    output_visual = output_visual or manifest.get("output_visual")
    target_visual = target_visual or manifest.get("target_visual")
    if output_visual is None or target_visual is None:
        for output_default, target_default in DEFAULT_VISUAL_PAIRS:
            if _visual_files(image_dir, output_visual or output_default):
                output_visual, target_visual = output_visual or output_default, target_visual or target_default
                break
        else:
            raise UserError(
                f"no output images in {image_dir}: expected <image>_<visual>.png files with visual "
                f"{' or '.join(pair[0] for pair in DEFAULT_VISUAL_PAIRS)} (found {_found_files(image_dir)}); "
                f"pass --output_visual and --target_visual"
            )
    outputs = _visual_files(image_dir, output_visual)
    if not outputs:
        raise UserError(f"no <image>_{output_visual}.png files in {image_dir} (found {_found_files(image_dir)}); "
                        f"pass another --output_visual")
    targets = _visual_files(image_dir, target_visual)
    missing = sorted(set(outputs) - set(targets))
    if missing:
        raise UserError(
            f"{len(missing)} of {len(outputs)} outputs in {image_dir} have no reference <image>_{target_visual}.png "
            f"(first: {missing[0]}_{output_visual}.png); references are needed for metrics, or pass --target_visual"
        )
    pairs = [ResultPair(image, outputs[image], targets[image]) for image in sorted(outputs)]
    return pairs, str(output_visual), str(target_visual)


def _visual_files(image_dir: Path, visual: str) -> dict[str, Path]:
    suffix = f"_{visual}.png"
    return {path.name[: -len(suffix)]: path for path in image_dir.glob(f"*{suffix}") if len(path.name) > len(suffix)}


def _found_files(image_dir: Path) -> str:
    names = sorted(path.name for path in image_dir.glob("*.png"))
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") if names else "no PNG files"
