"""Checking a dataset folder before training on it.

Finds the splits and their layout, then reports per split: counts, image sizes, channels,
bit depth, empty or unreadable files, names without a partner, pairs of different sizes, a
misregistration estimate per pair (phase correlation of edge maps) and, as a note, images that
carry JPEG's 8x8 block artefacts (a poor reference for PSNR/SSIM: scores reward reproducing them).

The cheap part that datasets run when they are built (``check_files_quickly``: a few header
bytes per file, no decoding) is ``data/image_headers.py``; this module is the full offline check
behind ``scripts/check_dataset.py``.
"""
from __future__ import annotations

import csv
import math
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from data.image_folder import find_subfolder
from data.image_headers import ImageHeader, read_header
from data.layout import (
    AB_SIDES,
    Pairing,
    ab_folders,
    ab_folders_at,
    hr_folder,
    key_text,
    lr_folders,
    pair_ab,
    pair_sr,
)
from util.errors import UserError
from util.image_io import convert_channels, is_image_file, read_image, to_unit_range

_SPLIT_ROLE_FOLDERS = {"A", "B", "HR", "LR"}
_SPLIT_NAMES = {"train", "val", "test"}
MAX_BLOCKING = 1.3  # compression_blocking above this is noted: raw thermal frames measure up to about 1.25


@dataclass(frozen=True)
class Registration:
    """Displacement of the second image's content relative to the first, in pixels of the first:
    a feature at (x, y) in the first image is at (x + dx, y + dy) in the second."""

    dx: float
    dy: float
    response: float  # phase-correlation peak, about 0 for unrelated images and 1 for identical ones

    @property
    def shift(self) -> float:
        return math.hypot(self.dx, self.dy)


def edge_map(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Sobel gradient magnitude of the image's luma at ``size`` (width, height), zero mean, unit variance.

    Edges, not intensities, are compared because infrared and visible brightness differ in
    sign and scale while their object boundaries coincide. A light blur first keeps sensor
    noise and fine texture (present in one modality only) out of the edge map.
    """
    grey = convert_channels(to_unit_range(image), 1)[..., 0]
    grey = cv2.GaussianBlur(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    return (magnitude - magnitude.mean()) / (magnitude.std() + 1e-6)


def estimate_shift(first: np.ndarray, second: np.ndarray, max_side: int = 512) -> Registration:
    """Misregistration of ``second`` against ``first`` by phase correlation of their edge maps.

    Both images are resampled to ``first``'s size, at most ``max_side`` pixels on the longer
    side; the result is in pixels of ``first`` (sub-pixel, from the correlation peak's centroid).
    """
    height, width = first.shape[:2]
    factor = min(1.0, max_side / max(height, width))
    size = (max(16, round(width * factor)), max(16, round(height * factor)))
    window = cv2.createHanningWindow(size, cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(edge_map(first, size), edge_map(second, size), window)
    if not (math.isfinite(dx) and math.isfinite(dy) and math.isfinite(response)):  # featureless images
        return Registration(0.0, 0.0, 0.0)
    return Registration(dx * width / size[0], dy * height / size[1], float(response))


def compression_blocking(image: np.ndarray, block: int = 8) -> float | None:
    """JPEG-style block artefacts: the mean absolute step between neighbouring pixels across the
    lines of a ``block``-pixel grid anchored at the top-left corner, over the mean step elsewhere.

    About 1 for images never block-compressed (0.8-1.25 on raw thermal frames); re-encoding such
    a frame as JPEG at quality 90 gives about 1.2-1.45, at 75 about 1.5-2. Compression artefacts
    survive a later lossless save (PNG), which is why the pixels are measured, not the file type.
    None when undefined: smaller than two blocks, or flat; infinite for pure blocks.
    """
    grey = convert_channels(to_unit_range(image), 1)[..., 0].astype(np.float64)
    if min(grey.shape) < 2 * block:
        return None
    across, down = np.abs(np.diff(grey, axis=1)), np.abs(np.diff(grey, axis=0))
    on_x = np.arange(across.shape[1]) % block == block - 1
    on_y = np.arange(down.shape[0]) % block == block - 1
    inside = np.concatenate([across[:, ~on_x].ravel(), down[~on_y].ravel()]).mean()
    boundary = np.concatenate([across[:, on_x].ravel(), down[on_y].ravel()]).mean()
    if inside == 0:
        return math.inf if boundary > 0 else None
    return float(boundary / inside)


def images_under(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively and sorted; empty when there are none."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.rglob("*") if path.is_file() and is_image_file(path))


def relative_key(path: Path, folder: Path) -> str:
    """The name that pairs files across folders: the relative path without its extension."""
    return path.relative_to(folder).with_suffix("").as_posix()


@dataclass
class SplitContents:
    """The items of one split and how they are laid out."""

    name: str
    layout: str  # "ab" (side by side), "folders" (A/ + B/), "sr" (HR/ + LR/), "images" (single images)
    roles: tuple[str, ...]  # what each file of an item is, e.g. ("A", "B")
    items: list[tuple[str, tuple[Path, ...]]]
    unpaired: list[Path] = field(default_factory=list)
    scale: int | None = None  # SR pairs: HR size / LR size, None when it must be inferred


def _paired_split(name: str, layout: str, roles: tuple[str, str], pairing: Pairing,
                  scale: int | None = None) -> SplitContents:
    items = [(key_text(key), (first, second)) for key, first, second in pairing.pairs]
    return SplitContents(name, layout, roles, items, pairing.only_first + pairing.only_second, scale)


def _sr_splits(name: str, folder: Path, hr: Path) -> list[SplitContents]:
    """One split per LR folder the SR dataset can read (``data.layout.lr_folders``), paired as it pairs them."""
    splits = [_paired_split(f"{name} ({lr.relative_to(folder).as_posix()})", "sr", ("HR", "LR"),
                            pair_sr(hr, lr, scale), scale)
              for lr, scale in lr_folders(folder)]
    if not splits:  # HR images only: low resolution is made on the fly
        splits.append(SplitContents(name, "images", ("HR",), _single_items(hr)))
    return splits


def _single_items(folder: Path) -> list[tuple[str, tuple[Path, ...]]]:
    return [(relative_key(path, folder), (path,)) for path in images_under(folder)]


def _is_role_folder(name: str) -> bool:
    return name.upper() in _SPLIT_ROLE_FOLDERS or re.fullmatch(r"lr_x\d+", name, re.IGNORECASE) is not None


def discover_splits(root: Path, plain_layout: str = "images") -> list[SplitContents]:
    """Find the splits under ``root`` and their layouts, by the datasets' own rules (``data.layout``).

    Recognised: ``<split>/{A,B}/``, ``{A,B}/<split>/``, ``<split>/HR/`` with ``LR/``, ``LR/xN/`` or
    ``LR_xN/`` (folder names in any case), and plain folders of images (``plain_layout``: ``images``
    or ``ab`` for side-by-side pairs). ``root`` itself may also be a split. What the datasets refuse
    (an A folder without its B partner, two files with one pairing name, folders differing only in
    case) is refused here with the same message.
    """
    if not root.is_dir():
        raise UserError(f"dataset folder {root} does not exist")
    if plain_layout not in ("images", "ab"):
        raise ValueError(f"plain_layout must be 'images' or 'ab', got {plain_layout!r}")
    sides = [find_subfolder(root, side) for side in AB_SIDES]
    if any(sides):
        # {A,B}/<split>: the names of the subfolders of both sides, and any split name on either side
        names = [{child.name for child in side.iterdir() if child.is_dir()} if side else set() for side in sides]
        candidates = (names[0] & names[1]) | ((names[0] | names[1]) & set(_SPLIT_NAMES))
        splits = [(split, ab_folders(root, split)) for split in sorted(candidates)]
        splits = [(split, folders) for split, folders in splits if folders is not None]
        if splits:
            return sorted((_paired_split(split, "folders", AB_SIDES, pair_ab(*folders)) for split, folders in splits),
                          key=_split_order)
        return [_paired_split(".", "folders", AB_SIDES, pair_ab(*ab_folders_at(root)))]
    if (hr := hr_folder(root)) is not None:
        return _sr_splits(".", root, hr)
    splits = []
    loose = sorted(path for path in root.iterdir() if path.is_file() and is_image_file(path))
    if loose:
        splits.append(SplitContents(".", plain_layout, ("AB",) if plain_layout == "ab" else ("image",),
                                    [(path.stem, (path,)) for path in loose]))
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")):
        if _is_role_folder(folder.name):
            continue
        if (folders := ab_folders(root, folder.name)) is not None:
            splits.append(_paired_split(folder.name, "folders", AB_SIDES, pair_ab(*folders)))
        elif (hr := hr_folder(folder)) is not None:
            splits.extend(_sr_splits(folder.name, folder, hr))
        elif images_under(folder):
            splits.append(SplitContents(folder.name, plain_layout, ("AB",) if plain_layout == "ab" else ("image",),
                                        _single_items(folder)))
    if not splits:
        raise UserError(f"no images found under {root}; point the check at the dataset root (the folder holding "
                        f"train/, val/, test/)")
    return sorted(splits, key=_split_order)


def _split_order(contents: SplitContents) -> tuple[int, str]:
    """train, val, test first, then other folders by name."""
    base = contents.name.split(" ")[0]
    return ("train", "val", "test").index(base) if base in ("train", "val", "test") else 3, contents.name


@dataclass
class ItemReport:
    """What the check found for one item (an image, a side-by-side image or a pair)."""

    key: str
    paths: tuple[Path, ...]
    headers: tuple[ImageHeader | None, ...]
    errors: list[str]
    size_problem: str | None = None
    registration: Registration | None = None
    blocking: tuple[float | None, ...] = ()  # compression_blocking of each image, when decoded


@dataclass(frozen=True)
class CheckTask:
    layout: str
    key: str
    paths: tuple[Path, ...]
    scale: int | None
    decode: bool
    register: bool
    max_side: int


def inspect_item(task: CheckTask) -> ItemReport:
    """Headers, (optionally) full decoding, size consistency and registration of one item."""
    headers, errors = [], []
    for path in task.paths:
        try:
            headers.append(read_header(path))
        except UserError as error:
            headers.append(None)
            errors.append(str(error))
    report = ItemReport(task.key, task.paths, tuple(headers), errors)
    if errors:
        return report
    report.size_problem = _size_problem(task, headers)
    if not (task.decode or task.register):
        return report
    try:
        images = [read_image(path) for path in task.paths]
    except UserError as error:
        report.errors.append(str(error))
        return report
    if task.layout == "ab" and report.size_problem is None:
        half = images[0].shape[1] // 2
        images = [images[0][:, :half], images[0][:, half:]]
    report.blocking = tuple(compression_blocking(image) for image in images)
    if task.register and report.size_problem is None and task.layout in ("ab", "folders", "sr"):
        report.registration = estimate_shift(images[0], images[1], task.max_side)
    return report


def _size_problem(task: CheckTask, headers: Sequence[ImageHeader]) -> str | None:
    if task.layout == "ab" and headers[0].width % 2:
        return f"{task.paths[0]} has odd width {headers[0].width}, so it cannot be split into A | B halves"
    if task.layout == "folders" and headers[0].size != headers[1].size:
        return (f"{task.paths[0]} is {headers[0].width}x{headers[0].height} but {task.paths[1]} is "
                f"{headers[1].width}x{headers[1].height}")
    if task.layout == "sr" and task.scale is not None:
        (hr_w, hr_h), (lr_w, lr_h) = headers[0].size, headers[1].size
        if (lr_w, lr_h) != (hr_w // task.scale, hr_h // task.scale):
            return (f"{task.paths[1]} is {lr_w}x{lr_h}, but {task.paths[0]} ({hr_w}x{hr_h}) divided by the scale "
                    f"{task.scale} is {hr_w // task.scale}x{hr_h // task.scale}")
    return None


@dataclass
class SplitReport:
    contents: SplitContents
    items: list[ItemReport]
    max_shift: float
    min_response: float
    max_blocking: float

    @property
    def unreadable(self) -> list[ItemReport]:
        return [item for item in self.items if item.errors]

    @property
    def size_problems(self) -> list[ItemReport]:
        return [item for item in self.items if item.size_problem]

    def _is_confident(self, item: ItemReport) -> bool:
        return item.registration is not None and item.registration.response >= self.min_response

    @property
    def registered(self) -> list[ItemReport]:
        """Items with a confident estimate: correlation peak at least ``min_response``."""
        return [item for item in self.items if self._is_confident(item)]

    @property
    def uncertain(self) -> list[ItemReport]:
        """Items whose estimate is guesswork (weak peak: featureless, very dark or unrelated images)."""
        return [item for item in self.items if item.registration is not None and not self._is_confident(item)]

    def is_misregistered(self, item: ItemReport) -> bool:
        """A confident estimate above ``max_shift`` pixels."""
        return self._is_confident(item) and item.registration.shift > self.max_shift

    @property
    def misregistered(self) -> list[ItemReport]:
        return [item for item in self.items if self.is_misregistered(item)]

    @property
    def blocky(self) -> list[tuple[Path, float]]:
        """Images whose 8x8 compression blocking exceeds ``max_blocking``: a note, not a problem (JPEG
        datasets are usable for training; as PSNR/SSIM references they reward reproducing artefacts)."""
        return [(item.paths[min(index, len(item.paths) - 1)], value) for item in self.items  # ab: one file, 2 halves
                for index, value in enumerate(item.blocking) if value is not None and value > self.max_blocking]

    @property
    def problem_count(self) -> int:
        return (len(self.unreadable) + len(self.contents.unpaired) + len(self.size_problems)
                + len(self.misregistered))


def _evenly_spaced(count: int, wanted: int) -> set[int]:
    if wanted < 0 or wanted >= count:
        return set(range(count))
    return {int(i * count / wanted) for i in range(wanted)}


def _infer_scale(contents: SplitContents) -> int | None:
    for _, (hr, lr) in contents.items:
        try:
            hr_width, lr_width = read_header(hr).width, read_header(lr).width
        except UserError:
            continue
        if lr_width:
            return max(1, round(hr_width / lr_width))
    return None


def check_dataset(root: Path, plain_layout: str = "images", decode: bool = True, registration_pairs: int = 200,
                  max_side: int = 512, max_shift: float = 2.0, min_response: float = 0.12,
                  max_blocking: float = MAX_BLOCKING, workers: int = 1) -> list[SplitReport]:
    """Check every split under ``root``.

    ``registration_pairs`` pairs per split (evenly spaced; -1 for all, 0 for none) get a
    misregistration estimate; ``decode`` fully decodes every image to find truncated files.
    """
    reports = []
    for contents in discover_splits(root, plain_layout):
        if contents.layout == "sr" and contents.scale is None:
            contents.scale = _infer_scale(contents)
        chosen = _evenly_spaced(len(contents.items), registration_pairs)
        tasks = [CheckTask(contents.layout, key, paths, contents.scale, decode, index in chosen, max_side)
                 for index, (key, paths) in enumerate(contents.items)]
        reports.append(SplitReport(contents, _run(tasks, workers), max_shift, min_response, max_blocking))
    return reports


def _run(tasks: list[CheckTask], workers: int) -> list[ItemReport]:
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(inspect_item, tasks, chunksize=max(1, min(32, len(tasks) // (4 * workers)))))
    return [inspect_item(task) for task in tasks]


def _describe(values: Iterable[object]) -> str:
    """``640x512`` when all equal, else the two most common with counts."""
    counts = Counter(values)
    if not counts:
        return "-"
    if len(counts) == 1:
        return str(next(iter(counts)))
    common = ", ".join(f"{value} ({count})" for value, count in counts.most_common(2))
    return common + (f", +{len(counts) - 2} more" if len(counts) > 2 else "")


def _per_role(report: SplitReport, describe) -> str:
    roles = report.contents.roles
    texts = []
    for index, role in enumerate(roles):
        values = [describe(item.headers[index]) for item in report.items if item.headers[index] is not None]
        texts.append(_describe(values))
    return texts[0] if len(set(texts)) == 1 else " / ".join(texts)


def _median_blocking(report: SplitReport) -> str:
    texts = []
    for index in range(len(report.contents.roles)):
        values = [item.blocking[index] for item in report.items
                  if len(item.blocking) > index and item.blocking[index] is not None]
        texts.append(f"{np.median(values):.2f}" if values else "-")
    return texts[0] if len(set(texts)) == 1 else " / ".join(texts)


def format_report(reports: Sequence[SplitReport], show: int = 10) -> str:
    """A Markdown table with one row per split, then the first ``show`` problems of each kind."""
    lines = [
        "| split | layout | items | size (WxH) | channels | bits | unreadable | unpaired | size mismatch "
        "| registered | uncertain | median shift | max shift | misregistered | 8x8 blocking (median) |",
        "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        contents = report.contents
        shifts = [item.registration.shift for item in report.registered]
        layout = contents.layout + (f" ({'/'.join(contents.roles)})" if len(contents.roles) > 1 else "")
        if contents.layout == "sr" and contents.scale:
            layout += f" x{contents.scale}"
        lines.append(
            f"| {contents.name} | {layout} | {len(report.items)} "
            f"| {_per_role(report, lambda h: f'{h.width}x{h.height}')} "
            f"| {_per_role(report, lambda h: h.channels)} | {_per_role(report, lambda h: h.bits)} "
            f"| {len(report.unreadable)} | {len(contents.unpaired)} | {len(report.size_problems)} | {len(shifts)} "
            f"| {len(report.uncertain)} "
            f"| {f'{np.median(shifts):.2f} px' if shifts else '-'} | {f'{max(shifts):.2f} px' if shifts else '-'} "
            f"| {len(report.misregistered)} | {_median_blocking(report)} |"
        )
    problems = []
    for report in reports:
        name = report.contents.name
        problems += [f"- {name}: unreadable: {'; '.join(item.errors)}" for item in report.unreadable[:show]]
        problems += [f"- {name}: no partner with the same name: {path}" for path in report.contents.unpaired[:show]]
        problems += [f"- {name}: size mismatch: {item.size_problem}" for item in report.size_problems[:show]]
        problems += [
            f"- {name}: misregistered: {item.key}: shift ({item.registration.dx:+.2f}, {item.registration.dy:+.2f}) "
            f"px, response {item.registration.response:.3f}"
            for item in sorted(report.misregistered, key=lambda item: -item.registration.shift)[:show]
        ]
    notes = []
    for report in reports:
        blocky = report.blocky
        notes += [f"- {report.contents.name}: 8x8 compression blocking {value:.2f} (above {report.max_blocking}): "
                  f"{path}" for path, value in sorted(blocky, key=lambda entry: -entry[1])[:show]]
        if blocky:
            notes.append(f"- {report.contents.name}: {len(blocky)} image(s) carry JPEG block artefacts; fine to train "
                         "on, but PSNR/SSIM against them as references reward reproducing the artefacts")
    total = sum(report.problem_count for report in reports)
    summary = f"{total} problem(s) found" if total else "no problems found"
    return "\n".join(lines + [""] + problems + notes + ([""] if problems or notes else []) + [summary])


def write_item_csv(path: Path, reports: Sequence[SplitReport]) -> None:
    """One row per item: files, size, status and the registration estimate."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "key", "files", "width", "height", "status", "dx", "dy", "shift", "response",
                         "blocking"])
        for report in reports:
            for item in report.items:
                header = item.headers[0]
                status = ("unreadable" if item.errors else "size mismatch" if item.size_problem
                          else "misregistered" if report.is_misregistered(item) else "ok")
                registration = item.registration
                writer.writerow([
                    report.contents.name, item.key, " ".join(str(path) for path in item.paths),
                    header.width if header else "", header.height if header else "", status,
                    *((f"{registration.dx:.3f}", f"{registration.dy:.3f}", f"{registration.shift:.3f}",
                       f"{registration.response:.4f}") if registration else ("", "", "", "")),
                    " ".join("" if value is None else f"{value:.3f}" for value in item.blocking),
                ])
