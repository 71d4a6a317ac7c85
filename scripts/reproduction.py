"""Shared parts of the reproduction scripts (``reproduce_v2ir_table.py``, ``reproduce_sr_table.py``):
running the project's scripts as subprocesses, seeds, and aggregating per-image results over seeds
and test sources.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from util.errors import UserError
from util.metrics import precision

REPO_ROOT = Path(__file__).resolve().parents[1]
ALL_SOURCES = "all"


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


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0:
        raise UserError(f"--seeds {text!r}: give comma-separated non-negative integers, e.g. 0,1,2")
    return seeds


@dataclass
class MethodRuns:
    """One method's per-image values in every seed: ``seeds[seed][image][metric]``."""
    seeds: dict[int, dict[str, dict[str, float]]]
    train_seconds: list[float]
    iters: str = ""


def aggregate(runs: MethodRuns, groups: dict[str, list[str]], baseline: dict[str, dict[str, float]] | None
              ) -> dict[str, dict[str, tuple[float, float]]]:
    """Per source: each metric's mean over the source's images in each seed, then mean and std
    over seeds; with ``baseline`` (per-image values of a reference method), also the PSNR gain
    over it and the share of (seed, image) pairs where the method's PSNR is higher."""
    table = {}
    for source, images in groups.items():
        per_seed: dict[str, list[float]] = defaultdict(list)
        wins = []
        for values in runs.seeds.values():
            for metric in next(iter(values.values())):
                per_seed[metric].append(float(np.mean([values[image][metric] for image in images])))
            if baseline is not None:
                gains = [values[image]["psnr"] - baseline[image]["psnr"] for image in images]
                per_seed["psnr_gain"].append(float(np.mean(gains)))
                wins += [gain > 0 for gain in gains]
        row = {metric: (float(np.mean(v)), float(np.std(v))) for metric, v in per_seed.items()}
        if baseline is not None:
            row["win_rate"] = (float(np.mean(wins)), 0.0)
        table[source] = row
    return table


def format_cell(metric: str, mean: float, std: float) -> str:
    if metric == "win_rate":
        return f"{100 * mean:.0f} %"
    digits = 2 if metric in ("sharpness", "psnr_gain") else precision(metric)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def source_groups(images: Sequence[str], sources: dict[str, str]) -> dict[str, list[str]]:
    """``{"all": every image, <source>: its images, ...}`` (sources only when there are several)."""
    groups: dict[str, list[str]] = {ALL_SOURCES: list(images)}
    per_source: dict[str, list[str]] = defaultdict(list)
    for image in images:
        if image in sources:
            per_source[sources[image]].append(image)
    if len(per_source) > 1:
        groups.update(sorted(per_source.items()))
    return groups
