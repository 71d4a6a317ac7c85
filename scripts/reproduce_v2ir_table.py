"""Reproduce the cascade paper's comparison table: pix2pix, DoubleUnet_pix2pix and cascade3.

Each model is trained with the same budget (epochs, or minutes of wall-clock time each)
on the same data by ``train.py`` and tested by ``test.py`` (both run as subprocesses, as a
user would), once per ``--seeds`` entry. PSNR, SSIM and RMSE (0-255) are computed per test
image; the table gives the mean ± std over seeds of their means over images, one row per
method and test source ("all", then each source when the test split has several). cascade3's
intermediate visuals ``stage1`` and ``stage2`` are scored against ``real_B`` by
``scripts/evaluate.py`` as rows of their own. "vs pix2pix": the mean per-image difference
to pix2pix (averaged over seeds) with a 95 % bootstrap interval over test images, and the
share of (seed, image) pairs where the method's PSNR is higher. Written beside the CSV:
``<name>_per_image.csv`` (every value the table is made of) and ``<name>_grid.png`` (4 test
images: visible, every method and stage, thermal).

    python scripts/reproduce_v2ir_table.py                        # synthetic data, CPU-sized
    python scripts/reproduce_v2ir_table.py --dataroot datasets/kaist_aligned --crop_size 256 \\
        --n_epochs 100 --n_epochs_decay 100 --max_dataset_size 100000
    python scripts/reproduce_v2ir_table.py --minutes 10           # equal time instead of epochs
    python scripts/reproduce_v2ir_table.py --dataroot datasets/real_dev --seeds 0,1,2

The defaults (128x128 crops, up to 100 training images, 15 + 15 epochs, every generator at half
width, one seed) take about 40 minutes of a quiet 2-core CPU for the three models on 94 real pairs
(docs/v2ir_recipe.md). ``--crop_size 256 --width 1`` uses the paper's sizes (``unet_256`` for pix2pix and stage 1,
full-width U-Nets and DoubleU-Nets).
"""
from __future__ import annotations

import argparse
import csv
import json
import shlex
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from data.image_folder import find_images
from data.layout import ab_folders
from options.config_file import read_config
from scripts.evaluate import main as evaluate_folder
from scripts.reproduction import MethodRuns, aggregate, format_cell, parse_seeds, run, source_groups
from util.errors import UserError, run_cli
from util.evaluation import find_result_pairs
from util.image_io import read_image
from util.metrics import precision

REPO_ROOT = Path(__file__).resolve().parents[1]

TABLE_METRICS = ("psnr", "ssim", "rmse")
REFERENCE = "pix2pix"  # the row every other one is compared with
# cascade3's intermediate visuals, scored like its output: (row label, visual name).
CASCADE_STAGES = (("cascade3 stage 1", "stage1"), ("cascade3 stage 2", "stage2"))
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # a fixed generator: the same per-image values always give the same interval
SOURCE_RULES = ("folder", "prefix", "none")
GRID_IMAGES = 4


@dataclass(frozen=True)
class Method:
    label: str       # the row name in the paper's table
    key: str         # experiment-name suffix and --models entry
    flags: tuple[str, ...]  # architecture flags, given to train.py and test.py alike


CONFIG_DIR = REPO_ROOT / "configs" / "cpu"  # the default (CPU-sized) setup of each row: v2ir_<key>.yaml
ROWS = (("pix2pix", "pix2pix"), ("DoubleUnet_pix2pix", "doubleunet_pix2pix"), ("cascade3", "cascade3"))


def config_file(key: str) -> Path:
    return CONFIG_DIR / f"v2ir_{key}.yaml"


def methods(crop_size: int, width: float) -> list[Method]:
    """The table's rows: ``--config configs/cpu/v2ir_<key>.yaml`` (model and architecture), plus the sizes
    ``--crop_size`` and ``--width`` (which scales every generator's channels alike; 1.0: published sizes) decide
    where they differ from the file's."""
    unet = "unet_256" if crop_size >= 256 else "unet_128"
    ngf = max(1, round(64 * width))
    sizes = {"pix2pix": {"netG": unet, "ngf": ngf}, "doubleunet_pix2pix": {"netG": "doubleunet", "ngf": ngf},
             "cascade3": {"netG1": unet, "ngf": ngf, "stage2_width": width}}
    rows = []
    for label, key in ROWS:
        values = read_config(str(config_file(key))).values
        overrides = [token for option, value in sizes[key].items() if values.get(option) != value
                     for token in (f"--{option}", str(value))]
        rows.append(Method(label, key, ("--config", str(config_file(key)), *overrides)))
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataroot", default=None,
                        help="aligned dataset (train/ and test/ splits, AB or A/B folder layout); "
                             "default: the built-in synthetic dataset")
    parser.add_argument("--name", default="v2ir_table", help="experiment names are <name>_s<seed>_<method>")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--results_dir", default="./results")
    parser.add_argument("--models", default="pix2pix,doubleunet_pix2pix,cascade3",
                        help="comma-separated subset of pix2pix, doubleunet_pix2pix, cascade3")
    parser.add_argument("--n_epochs", type=int, default=15, help="epochs at the initial learning rate")
    parser.add_argument("--n_epochs_decay", type=int, default=15, help="epochs of linear decay to zero")
    parser.add_argument("--minutes", type=float, default=None,
                        help="instead of epochs: train each model for whole epochs at a constant learning "
                             "rate until this many minutes have passed")
    parser.add_argument("--crop_size", type=int, default=128, help="training crop and test image size")
    parser.add_argument("--width", type=float, default=0.5,
                        help="channel multiplier of every generator (U-Nets' --ngf 64 x width, DoubleU-Nets' "
                             "channels x width); 1.0 is the published size, 0.5 about a quarter of the computation")
    parser.add_argument("--max_dataset_size", type=int, default=100, help="training images used")
    parser.add_argument("--num_test", type=int, default=None, help="test images (default: the whole split)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of a one-seed table (see --seeds)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds, e.g. 0,1,2: every method is trained and tested once per seed "
                             "and the table gives mean ± std over seeds (default: --seed)")
    parser.add_argument("--source_of", default="folder", choices=SOURCE_RULES,
                        help="which source (camera, data set) a test image comes from, for the per-source rows: "
                             "folder = its sub-folder in the test split (none when the split is flat), prefix = "
                             "the part of its name before the first '_', none = no per-source rows")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of each train.py/test.py (OMP_NUM_THREADS); 1 is faster on a machine "
                             "shared with other jobs")
    parser.add_argument("--common_args", default="", help="extra flags for every train.py and test.py call")
    parser.add_argument("--train_args", default="", help="extra flags for every train.py call")
    for key in ("pix2pix", "doubleunet_pix2pix", "cascade3"):
        parser.add_argument(f"--{key}_args", default="",
                            help=f"extra flags for {key}'s train.py and test.py calls (architecture)")
        parser.add_argument(f"--{key}_train_args", default="", help=f"extra flags for {key}'s train.py calls")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the (seed, method) runs that finished before (recorded in "
                             "<results_dir>/<name>_s<seed>_<method>_run.json): resume a table, or run seeds in "
                             "parallel calls and aggregate them with one more")
    parser.add_argument("--csv", default=None,
                        help="CSV output (default <results_dir>/<name>.csv); the per-image CSV and the grid PNG "
                             "are written beside it")
    return parser.parse_args(argv)


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


PerImage = dict[str, dict[str, float]]  # {image: {metric: value}}


def read_metrics_csv(path: Path) -> PerImage:
    """The table's metrics of every image from a metrics.csv (test.py's or scripts/evaluate.py's)."""
    with open(path, newline="") as handle:
        return {row["image"]: {metric: float(row[metric]) for metric in TABLE_METRICS}
                for row in csv.DictReader(handle)}


def score_stage(folder: Path, visual: str, log: Path) -> PerImage:
    """scripts/evaluate.py's per-image metrics of one cascade3 visual against real_B (its report goes to the log)."""
    out_dir = folder / f"eval_{visual}"
    log.parent.mkdir(parents=True, exist_ok=True)  # a reused run may have had its checkpoints removed
    with open(log, "a") as handle, redirect_stdout(handle):
        evaluate_folder([str(folder), "--output_visual", visual, "--target_visual", "real_B", "--metrics",
                         ",".join(TABLE_METRICS), "--out_dir", str(out_dir), "--device", "cpu"])
    return read_metrics_csv(out_dir / "metrics.csv")


def image_sources(dataroot: str | None, rule: str, images: Sequence[str]) -> dict[str, str]:
    """``{image: source}`` by ``--source_of``: the image's sub-folder in the test split (``folder``;
    test.py names results by file name alone, so the split is read here), the part of its name
    before the first '_' (``prefix``), or nothing (``none``)."""
    if rule == "none":
        return {}
    if rule == "prefix":
        return {image: image.split("_", 1)[0] for image in images if "_" in image}
    if dataroot is None:  # the built-in synthetic data has one source
        return {}
    root = Path(dataroot)
    folders = ab_folders(root, "test")  # the dataset's own rule for the A/B layouts
    base = folders[0] if folders is not None else root / "test"
    sources: dict[str, str] = {}
    for path in find_images(base):
        parts = path.relative_to(base).parts
        if len(parts) > 1 and sources.setdefault(path.stem, parts[0]) != parts[0]:
            raise UserError(f"--source_of folder: test images named {path.stem} lie in {sources[path.stem]}/ and "
                            f"{parts[0]}/, and test.py names results by file name; rename one, or pass "
                            f"--source_of none")
    return sources


def paired_differences(method: dict[int, PerImage], reference: dict[int, PerImage], images: Sequence[str],
                       metric: str) -> np.ndarray:
    """``method - reference`` per seed (rows) and image (columns): the same seed's run, the same image."""
    return np.array([[method[seed][image][metric] - reference[seed][image][metric] for image in images]
                     for seed in reference])


def bootstrap_interval(values: np.ndarray, level: float = 0.95,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per test image), resampling images
    with replacement: how much the mean could move with other test images from the same source."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = 50 * (1 - level)
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def win_rate(method: dict[int, PerImage], reference: dict[int, PerImage], images: Sequence[str]) -> float:
    """Share of (seed, image) pairs where the method's PSNR is higher than the reference's."""
    return float(np.mean(paired_differences(method, reference, images, "psnr") > 0))


@dataclass(frozen=True)
class Versus:
    """A row against pix2pix: per metric (mean difference, bootstrap low, high), and the PSNR win rate."""
    deltas: dict[str, tuple[float, float, float]]
    win_rate: float


def versus(method: dict[int, PerImage], reference: dict[int, PerImage], images: Sequence[str]) -> Versus:
    """``method`` against ``reference`` on ``images``, paired by seed and image."""
    deltas = {}
    for metric in TABLE_METRICS:
        # Seeds are averaged per image first: the interval is over test images, not over runs.
        per_image = paired_differences(method, reference, images, metric).mean(axis=0)
        deltas[metric] = (float(per_image.mean()), *bootstrap_interval(per_image))
    return Versus(deltas, win_rate(method, reference, images))


def over_seeds(runs: dict[str, dict[int, PerImage]], groups: dict[str, list[str]]
               ) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """``{label: {source: {metric: (mean, std)}}}`` over seeds of each seed's mean over the source's images."""

    return {label: aggregate(MethodRuns(per_seed, []), groups, None) for label, per_seed in runs.items()}


@dataclass
class Table:
    rows: dict[str, dict[str, dict[str, tuple[float, float]]]]  # {label: {source: {metric: (mean, std)}}}
    versus: dict[str, dict[str, Versus]]                        # {label: {source: Versus}}, pix2pix left out
    runs: dict[str, dict[int, PerImage]]                        # {label: {seed: per-image values}}
    sources: dict[str, str]                                     # {image: source}


def build_table(runs: dict[str, dict[int, PerImage]], sources: dict[str, str]) -> Table:
    """Every row per source ("all" first), and every row but pix2pix's against pix2pix (when it ran)."""

    images = sorted(next(iter(next(iter(runs.values())).values())))
    groups = source_groups(images, sources)
    compared = {label: {source: versus(per_seed, runs[REFERENCE], group) for source, group in groups.items()}
                for label, per_seed in runs.items() if REFERENCE in runs and label != REFERENCE}
    return Table(over_seeds(runs, groups), compared, runs, sources)


def delta_cell(metric: str, mean: float, low: float, high: float) -> str:
    digits = precision(metric)
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def markdown_table(table: Table) -> str:

    arrows = {"psnr": "↑", "ssim": "↑", "rmse": "↓"}
    header = ["algorithm", "source", *(f"{metric.upper()} {arrows[metric]}" for metric in TABLE_METRICS)]
    if table.versus:
        header += [*(f"Δ{metric.upper()} vs {REFERENCE} [95 % CI]" for metric in TABLE_METRICS),
                   f"beats {REFERENCE} (PSNR)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, by_source in table.rows.items():
        for source, row in by_source.items():
            cells = [label, source, *(format_cell(metric, *row[metric]) for metric in TABLE_METRICS)]
            if table.versus:
                compared = table.versus.get(label, {}).get(source)
                cells += ([*(delta_cell(metric, *compared.deltas[metric]) for metric in TABLE_METRICS),
                           format_cell("win_rate", compared.win_rate, 0.0)]
                          if compared else ["—"] * (len(TABLE_METRICS) + 1))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table_csv(path: Path, table: Table, budget: dict[str, tuple[list[float], list[int]]]) -> None:
    """One row per label and source: mean and std over seeds, the differences to pix2pix with their
    interval bounds and the win rate (empty on pix2pix's rows), training seconds (mean over seeds)
    and epochs (each distinct count, '/'-separated: equal-time runs may differ)."""
    columns = ["algorithm", "source", *(f"{metric}{suffix}" for metric in TABLE_METRICS for suffix in ("", "_std")),
               *(f"d_{metric}{suffix}" for metric in TABLE_METRICS for suffix in ("", "_low", "_high")),
               "win_rate", "seeds", "train_seconds", "epochs"]
    seeds = "/".join(map(str, next(iter(table.runs.values()))))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for label, by_source in table.rows.items():
            seconds, epochs = budget.get(label, ([], []))
            for source, row in by_source.items():
                compared = table.versus.get(label, {}).get(source)
                deltas = ([f"{value:.6f}" for metric in TABLE_METRICS for value in compared.deltas[metric]]
                          + [f"{compared.win_rate:.6f}"]) if compared else [""] * (3 * len(TABLE_METRICS) + 1)
                writer.writerow([label, source, *(f"{value:.6f}" for metric in TABLE_METRICS for value in row[metric]),
                                 *deltas, seeds, f"{np.mean(seconds):.1f}" if seconds else "",
                                 "/".join(dict.fromkeys(map(str, epochs)))])


def write_per_image_csv(path: Path, table: Table) -> None:
    """Every value the table is made of: one row per label, seed and image."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["algorithm", "seed", "image", "source", *TABLE_METRICS])
        for label, per_seed in table.runs.items():
            for seed, values in per_seed.items():
                for image, row in sorted(values.items()):
                    writer.writerow([label, seed, image, table.sources.get(image, ""),
                                     *(f"{row[metric]:.6f}" for metric in TABLE_METRICS)])


def spread(items: Sequence[str], count: int) -> list[str]:
    """``count`` items evenly spaced over ``items`` (all of them when there are no more)."""
    if len(items) <= count:
        return list(items)
    return [items[round(index * (len(items) - 1) / (count - 1))] for index in range(count)]


def grid_columns(folders: dict[str, Path]) -> dict[str, dict[str, Path]]:
    """``{column title: {image: file}}``: the visible input, each method's output (cascade3 after its
    stages 1 and 2), then the thermal reference, from the results folders of one seed."""
    first = next(iter(folders.values()))
    visuals = [("visible (real_A)", first, "real_A")]
    for label, folder in folders.items():
        if label == "cascade3":
            visuals += [(stage_label, folder, visual) for stage_label, visual in CASCADE_STAGES]
        visuals.append((label, folder, "fake_B"))
    visuals.append(("thermal (real_B)", first, "real_B"))
    return {title: {pair.image: pair.output for pair in find_result_pairs(folder, visual, "real_B")[0]}
            for title, folder, visual in visuals}


def to_8bit_rgb(path: Path) -> Image.Image:
    """An image file as 8-bit RGB (grey repeated; 16-bit results scaled), for display only."""
    raw = read_image(path)
    peak = 65535.0 if raw.dtype == np.uint16 else 255.0
    array = np.rint(raw.astype(np.float64) * 255.0 / peak).astype(np.uint8)
    return Image.fromarray(np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array)


GRID_TILE, GRID_GAP, GRID_TITLE = 160, 4, 14  # pixels: each image's box, the space between, the title row


def write_grid(columns: dict[str, dict[str, Path]], images: Sequence[str], path: Path) -> None:
    """A PNG sheet: a titled column per entry of ``columns``, a row per image, each image fit into its box."""
    step = GRID_TILE + GRID_GAP
    sheet = Image.new("RGB", (len(columns) * step - GRID_GAP, GRID_TITLE + len(images) * step - GRID_GAP), "white")
    draw = ImageDraw.Draw(sheet)
    for column, (title, files) in enumerate(columns.items()):
        draw.text((column * step + 2, 1), title, fill="black")
        for row, image in enumerate(images):
            tile = ImageOps.contain(to_8bit_rgb(files[image]), (GRID_TILE, GRID_TILE))
            sheet.paste(tile, (column * step + (GRID_TILE - tile.width) // 2,
                               GRID_TITLE + row * step + (GRID_TILE - tile.height) // 2))
    sheet.save(path)


def main(argv: Sequence[str] | None = None) -> Table:

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
    seeds = parse_seeds(opt.seeds) if opt.seeds is not None else (opt.seed,)

    # Rows in the table's order: cascade3's stages just before its output.
    labels = [label for key in chosen for label in
              [*(stage for stage, _ in CASCADE_STAGES if key == "cascade3"), available[key].label]]
    runs: dict[str, dict[int, PerImage]] = {label: {} for label in labels}
    budget: dict[str, tuple[list[float], list[int]]] = {available[key].label: ([], []) for key in chosen}
    first_folders: dict[str, Path] = {}
    for seed in seeds:
        for key in chosen:
            method = available[key]
            name = f"{opt.name}_s{seed}_{key}"
            shared = [*method.flags, "--name", name, "--checkpoints_dir", opt.checkpoints_dir, "--crop_size",
                      str(opt.crop_size), "--seed", str(seed), *shlex.split(opt.common_args),
                      *shlex.split(getattr(opt, f"{key}_args"))]
            if opt.dataroot is not None:
                shared += ["--dataroot", opt.dataroot]
            log = Path(opt.checkpoints_dir) / name / "reproduce_log.txt"
            record = Path(opt.results_dir) / f"{name}_run.json"  # written once the run is trained and tested
            if opt.reuse and record.is_file():
                print(f"[{method.label}, seed {seed}] reusing the finished run recorded in {record}", flush=True)
                finished = json.loads(record.read_text())
                seconds, epochs = float(finished["train_seconds"]), int(finished["epochs"])
            else:
                print(f"[{method.label}, seed {seed}] training ({name}) ...", flush=True)
                train_only = [*shlex.split(opt.train_args), *shlex.split(getattr(opt, f"{key}_train_args"))]
                seconds, epochs = train(method, [*shared, *train_only], opt, log)
                test_args = [*shared, "--results_dir", opt.results_dir, "--metrics", ",".join(TABLE_METRICS)]
                if opt.num_test is not None:
                    test_args += ["--num_test", str(opt.num_test)]
                run("test.py", test_args, log, opt.threads)
                record.write_text(json.dumps({"train_seconds": seconds, "epochs": epochs}))
            folder = Path(opt.results_dir) / name / "test_latest"
            first_folders.setdefault(method.label, folder)
            runs[method.label][seed] = read_metrics_csv(folder / "metrics.csv")
            if key == "cascade3":
                for stage, visual in CASCADE_STAGES:
                    runs[stage][seed] = score_stage(folder, visual, log)
            budget[method.label][0].append(seconds)
            budget[method.label][1].append(epochs)
            means = {metric: np.mean([row[metric] for row in runs[method.label][seed].values()])
                     for metric in TABLE_METRICS}
            print(f"[{method.label}, seed {seed}] {epochs} epochs in {seconds / 60:.1f} min: "
                  + " ".join(f"{metric}={value:.4f}" for metric, value in means.items()), flush=True)

    images = sorted(runs[labels[0]][seeds[0]])
    table = build_table(runs, image_sources(opt.dataroot, opt.source_of, images))
    csv_path = Path(opt.csv) if opt.csv else Path(opt.results_dir) / f"{opt.name}.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    write_table_csv(csv_path, table, budget)
    per_image_path = csv_path.with_name(f"{csv_path.stem}_per_image.csv")
    write_per_image_csv(per_image_path, table)
    grid_path = csv_path.with_name(f"{csv_path.stem}_grid.png")
    write_grid(grid_columns(first_folders), spread(images, GRID_IMAGES), grid_path)
    print(f"\nseeds {','.join(map(str, seeds))}: mean ± std over seeds of each seed's mean over test images"
          + (f"; vs {REFERENCE}: mean paired per-image difference [95 % bootstrap interval over test images] and "
             f"the share of (seed, image) pairs with a higher PSNR" if table.versus else "") + "\n")
    print(markdown_table(table))
    print(f"{csv_path}\nper image: {per_image_path}\ngrid (seed {seeds[0]}): {grid_path}", flush=True)
    return table


if __name__ == "__main__":
    run_cli(main)
