"""Loss curves from ``loss_log.txt`` as a PNG, so a run without visdom or W&B still shows them."""
from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The line format written by util.loss_log.LossLog.format.
_LINE = re.compile(r"^\(epoch: (\d+), iters: (\d+), time: [^,]+, data: [^)]+\) (.*)$")
_VALUE = re.compile(r"(\S+): (\S+)")
_MAX_EPOCH_LINES = 30
_SMOOTH_ABOVE = 50  # points per curve beyond which a running mean is drawn


@dataclass
class LossHistory:
    """Logged points in order: images seen, epoch, and each loss (NaN where a line lacks it)."""

    iters: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)


def read_loss_log(path: str | Path) -> LossHistory:
    """Parse ``loss_log.txt``, keeping the history of the latest run.

    A resumed run logs again from its checkpoint's image count, and a restarted run from
    zero; their lines replace every earlier line at or after that count.
    """
    points: list[tuple[int, int, dict[str, float]]] = []
    with open(path) as handle:
        for line in handle:
            match = _LINE.match(line.strip())
            if match is None:
                continue
            epoch, iters = int(match.group(1)), int(match.group(2))
            while points and points[-1][1] >= iters:
                points.pop()
            points.append((epoch, iters, {name: float(value) for name, value in _VALUE.findall(match.group(3))}))
    names = list(dict.fromkeys(name for _, _, values in points for name in values))
    return LossHistory(iters=[iters for _, iters, _ in points], epochs=[epoch for epoch, _, _ in points],
                       losses={name: [values.get(name, math.nan) for _, _, values in points] for name in names})


def running_mean(values: list[float], window: int) -> np.ndarray:
    """Mean of each value and the ``window - 1`` before it (fewer at the start), skipping NaN."""
    array = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(array)
    sums = np.concatenate([[0.0], np.cumsum(np.where(valid, array, 0.0))])
    counts = np.concatenate([[0], np.cumsum(valid)])
    end = np.arange(1, len(array) + 1)
    begin = np.maximum(end - window, 0)
    with np.errstate(invalid="ignore"):  # no valid value in a window: NaN, a gap in the curve
        return (sums[end] - sums[begin]) / (counts[end] - counts[begin])


def write_loss_plot(log_path: str | Path, png_path: str | Path, title: str) -> bool:
    """Draw one panel per loss against images seen; returns False when the log has no points yet.

    The PNG is replaced atomically, so a viewer never reads a half-written file.
    """
    history = read_loss_log(log_path)
    if not history.iters:
        return False
    # The object-oriented API, not pyplot: no global backend or figure state in a training process.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # not "generated new fontManager" in train.log
    from matplotlib.figure import Figure

    columns = min(2, len(history.losses))
    rows = math.ceil(len(history.losses) / columns)
    figure = Figure(figsize=(6 * columns, 3 * rows), layout="constrained")
    figure.suptitle(title)
    epoch_starts = [iters for index, iters in enumerate(history.iters)
                    if index > 0 and history.epochs[index] != history.epochs[index - 1]]
    xlabel = "images seen"
    if len(epoch_starts) > _MAX_EPOCH_LINES:  # the lines would grey out the panel
        epoch_starts = []
    elif epoch_starts:
        xlabel += " (dotted: new epoch)"
    for index, (name, values) in enumerate(history.losses.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        if len(values) > _SMOOTH_ABOVE:  # noisy GAN losses: faint raw points, running mean on top
            axes.plot(history.iters, values, linewidth=0.6, alpha=0.35)
            axes.plot(history.iters, running_mean(values, len(values) // _SMOOTH_ABOVE), linewidth=1.2,
                      color="C0", label="running mean")
            axes.legend(loc="upper right", fontsize="small")
        else:
            axes.plot(history.iters, values, linewidth=1)
        axes.vlines(epoch_starts, 0, 1, transform=axes.get_xaxis_transform(), colors="grey", linestyles=":",
                    linewidth=0.8)
        axes.set_title(name)
        axes.set_xlabel(xlabel)
        axes.grid(alpha=0.3)
    png_path = Path(png_path)
    partial = png_path.with_name(png_path.name + ".partial")
    figure.savefig(partial, format="png", dpi=100)
    os.replace(partial, png_path)
    return True
