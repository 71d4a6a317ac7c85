"""Per-image quality metrics of model outputs, shared by validation, test.py and scripts.

The protocol follows the visible-to-infrared papers: outputs and references are
quantised to 8 bit exactly as they are saved (0..255), then PSNR, SSIM (11x11 Gaussian
window) and RMSE are computed per image and averaged over images.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from util import metrics
from util.metrics import METRIC_NAMES


def to_8bit_scale(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] model range -> float64 values rounded to 0..255, as they are saved to PNG."""
    return torch.round((images.detach().double().clamp(-1.0, 1.0) + 1.0) * 127.5)


def image_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """PSNR, SSIM and RMSE of each image in a batch (tensors in [-1, 1])."""
    return metrics.compute_metrics(to_8bit_scale(output).cpu(), to_8bit_scale(target).cpu(), data_range=255.0,
                                   window="gaussian")


class MetricTable:
    """Collects per-image metrics and reports their mean and standard deviation."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float | str]] = []

    def add(self, names: list[str], values: dict[str, torch.Tensor]) -> None:
        for index, name in enumerate(names):
            self.rows.append({"image": name, **{key: float(value[index]) for key, value in values.items()}})

    def __len__(self) -> int:
        return len(self.rows)

    def summary(self) -> dict[str, tuple[float, float]]:
        per_metric = {name: torch.tensor([float(row[name]) for row in self.rows], dtype=torch.float64)
                      for name in METRIC_NAMES}
        return metrics.summarize(per_metric)

    def means(self) -> dict[str, float]:
        return {name: mean for name, (mean, _std) in self.summary().items()}

    def markdown(self, label: str) -> str:
        return metrics.format_markdown_table({label: self.summary()})

    def write_csv(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", *METRIC_NAMES])
            writer.writeheader()
            writer.writerows(self.rows)
