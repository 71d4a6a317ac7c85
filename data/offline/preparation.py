"""Turning downloaded datasets into this project's layouts.

A converter (``scripts/prepare_kaist.py``, ``prepare_llvip.py``, ``pair_folders.py``,
``prepare_sr.py``) lists its dataset as :class:`Sample` objects; this module carves
validation/test splits off deterministically, crops and resizes, converts channels, writes
lossless PNGs (16-bit stays 16-bit) atomically and in parallel, skips outputs that are
already there with the expected size, and records everything in ``<out>/manifest.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from abc import ABC, abstractmethod
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from data.degradations import downsample
from data.image_headers import ImageHeader, read_header
from data.layout import key_text, pair_ab
from data.offline.dataset_check import images_under
from util.errors import UserError
from util.image_io import convert_channels, read_image

MANIFEST_NAME = "manifest.json"

Size = tuple[int, int]  # (width, height)


@dataclass
class Sample:
    """One output item: a registered infrared/visible pair (sources ``A``, ``B``) or one
    high-resolution image (source ``HR``)."""

    key: str  # output name without extension, relative to the split folder
    sources: dict[str, Path]
    split: str
    group: str = ""  # samples of a group (a video, a folder) always land in the same split
    stratum: str = ""  # carved splits take the same fraction of every stratum (e.g. day and night)
    info: dict[str, object] = field(default_factory=dict)  # extra manifest fields


def parse_size(text: str) -> Size:
    """``512`` -> (512, 512); ``640x512`` -> (640, 512) (width x height)."""
    parts = text.lower().split("x")
    try:
        width, height = int(parts[0]), int(parts[-1])
    except ValueError:
        width = height = 0
    if len(parts) > 2 or width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive SIZE or WIDTHxHEIGHT, got {text!r}")
    return width, height


def carve_splits(samples: Sequence[Sample], fractions: dict[str, float], seed: int,
                 source_split: str = "train") -> None:
    """Move whole groups of ``source_split`` samples into other splits, e.g. ``{"val": 0.1}``.

    Within each stratum, the groups are shuffled with ``seed`` and ``round(fraction * groups)``
    of them (at least one when the fraction is positive) go to each split; one group always stays.
    The result depends only on the group names, the strata, the fractions and the seed.
    """
    for split, fraction in fractions.items():
        if not 0.0 <= fraction < 1.0:
            raise UserError(f"--{split}_fraction must be in [0, 1), got {fraction}")
    if sum(fractions.values()) >= 1.0:
        raise UserError(f"the split fractions {fractions} leave nothing for {source_split}; their sum must be below 1")
    pool = [sample for sample in samples if sample.split == source_split]
    groups_by_stratum: dict[str, set[str]] = {}
    for sample in pool:
        groups_by_stratum.setdefault(sample.stratum, set()).add(sample.group)
    rng = np.random.default_rng(seed)
    destination: dict[tuple[str, str], str] = {}
    for stratum in sorted(groups_by_stratum):
        groups = sorted(groups_by_stratum[stratum])
        order = rng.permutation(len(groups))
        start = 0
        for split, fraction in fractions.items():
            count = int(fraction * len(groups) + 0.5)
            if fraction > 0 and count == 0:
                count = 1
            count = max(0, min(count, len(groups) - 1 - start))
            for index in order[start:start + count]:
                destination[(stratum, groups[index])] = split
            start += count
    for sample in pool:
        sample.split = destination.get((sample.stratum, sample.group), source_split)
    for split, fraction in fractions.items():
        if fraction > 0 and split not in destination.values():
            print(f"warning: --{split}_fraction {fraction} made no {split} split: {source_split} has too few groups "
                  f"(videos, blocks or folders) to give any away", file=sys.stderr)


@dataclass(frozen=True)
class Geometry:
    """Centre crop, then resize, then crop the bottom/right edge to a multiple of ``multiple_of``."""

    center_crop: Size | None = None
    resize: Size | None = None
    multiple_of: int = 1

    def output_size(self, size: Size, source: Path) -> Size:
        width, height = size
        if self.center_crop is not None:
            if self.center_crop[0] > width or self.center_crop[1] > height:
                raise UserError(f"--center_crop {self.center_crop[0]}x{self.center_crop[1]} is larger than {source} "
                                f"({width}x{height}); choose a smaller crop")
            width, height = self.center_crop
        if self.resize is not None:
            width, height = self.resize
        width, height = width - width % self.multiple_of, height - height % self.multiple_of
        if width == 0 or height == 0:
            raise UserError(f"{source} ({size[0]}x{size[1]}) is smaller than the scale {self.multiple_of}")
        return width, height

    def apply(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        if self.center_crop is not None:
            crop_width, crop_height = self.center_crop
            top, left = (height - crop_height) // 2, (width - crop_width) // 2
            image = image[top:top + crop_height, left:left + crop_width]
        if self.resize is not None:
            image = resize_image(image, self.resize)
        height, width = image.shape[:2]
        return image[:height - height % self.multiple_of, :width - width % self.multiple_of]


def resize_image(image: np.ndarray, size: Size) -> np.ndarray:
    """Resize an ``H x W x C`` integer image, area-averaging when shrinking, keeping its dtype."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    shrinking = size[0] <= image.shape[1] and size[1] <= image.shape[0]
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return resized.reshape(size[1], size[0], image.shape[2])


def downsample_integer(image: np.ndarray, scale: int, mode: str) -> np.ndarray:
    """The SR dataset's clean low-resolution image (``data.degradations.downsample``) of an integer
    image, rounded back to its bit depth, so a fixed LR set equals what ``--sr_downsample`` makes."""
    peak = np.iinfo(image.dtype).max
    low = downsample(image.astype(np.float32) / peak, scale, mode)
    return np.round(low * peak).astype(image.dtype)


def single_channel(image: np.ndarray) -> np.ndarray:
    """Infrared as 1 channel: exact when the channels are copies of one grey image, else BT.601 luma."""
    if image.shape[2] == 1:
        return image
    if all(np.array_equal(image[..., 0], image[..., channel]) for channel in (1, 2)):
        return np.ascontiguousarray(image[..., :1])
    luma = convert_channels(image.astype(np.float32), 1)
    return np.clip(np.round(luma), 0, np.iinfo(image.dtype).max).astype(image.dtype)


def three_channels(image: np.ndarray) -> np.ndarray:
    return image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)


def require_integer(image: np.ndarray, source: Path) -> np.ndarray:
    if image.dtype not in (np.uint8, np.uint16):
        raise UserError(f"{source} holds {image.dtype} values; PNG stores 8- or 16-bit integers, so convert it to "
                        f"16-bit (e.g. scaled counts) first")
    return image


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an ``H x W x 1|3`` uint8/uint16 RGB image as PNG, atomically (temporary name, then rename)."""
    array = image if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    # Encoding dominates the conversion time; level 1 is ~30% faster than 3 for ~8% larger files.
    ok, encoded = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise UserError(f"OpenCV could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # not an image name: datasets ignore it
    temporary.write_bytes(encoded.tobytes())
    os.replace(temporary, path)


# role -> (output path relative to the output root, size)
Plan = dict[str, tuple[str, Size]]


class OutputLayout(ABC):
    """Where a sample's outputs go and how they are made from its decoded sources."""

    name: str

    @abstractmethod
    def plan(self, sample: Sample, headers: dict[str, ImageHeader]) -> Plan:
        """The outputs and their sizes, from the sources' headers alone (no decoding)."""

    @abstractmethod
    def render(self, sample: Sample, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The output images by role."""


@dataclass(frozen=True)
class PairLayout(OutputLayout):
    """Aligned pairs: ``<split>/A/<key>.png`` + ``<split>/B/<key>.png`` (infrared 1 channel, visible 3),
    or side by side ``<split>/<key>.png`` (A left, B right, both 3 channels)."""

    geometry: Geometry
    side_by_side: bool

    @property
    def name(self) -> str:
        return "ab" if self.side_by_side else "folders"

    def plan(self, sample: Sample, headers: dict[str, ImageHeader]) -> Plan:
        size_a, size_b = headers["A"].size, headers["B"].size
        if size_a != size_b and self.geometry.resize is None:
            raise UserError(f"{sample.sources['A']} is {size_a[0]}x{size_a[1]} but {sample.sources['B']} is "
                            f"{size_b[0]}x{size_b[1]}; registered pairs must have the same size (or pass --resize)")
        size = self.geometry.output_size(size_a, sample.sources["A"])
        self.geometry.output_size(size_b, sample.sources["B"])  # a crop must fit both images
        if self.side_by_side:
            return {"AB": (f"{sample.split}/{sample.key}.png", (2 * size[0], size[1]))}
        return {role: (f"{sample.split}/{role}/{sample.key}.png", size) for role in ("A", "B")}

    def render(self, sample: Sample, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        infrared = single_channel(self.geometry.apply(require_integer(images["A"], sample.sources["A"])))
        visible = three_channels(self.geometry.apply(require_integer(images["B"], sample.sources["B"])))
        if not self.side_by_side:
            return {"A": infrared, "B": visible}
        if infrared.dtype != visible.dtype:
            raise UserError(f"{sample.sources['A']} is {infrared.dtype} but {sample.sources['B']} is {visible.dtype}; "
                            f"one side-by-side PNG has one bit depth, so use --layout folders")
        return {"AB": np.concatenate([three_channels(infrared), visible], axis=1)}


@dataclass(frozen=True)
class SrLayout(OutputLayout):
    """Super-resolution data: HR images at ``<split>/<key>.png``; in the splits given fixed
    low-resolution sets, ``<split>/HR/<key>.png`` and ``<split>/LR/x<scale>/<key>.png`` instead,
    with HR cropped (bottom/right) to a multiple of every scale so that HR = scale x LR exactly."""

    geometry: Geometry
    scales: tuple[int, ...] = ()
    lr_splits: frozenset[str] = frozenset()
    downsample_mode: str = "bicubic"
    keep_channels: bool = False
    name: ClassVar[str] = "sr"

    def _geometry(self, split: str) -> Geometry:
        if split not in self.lr_splits or not self.scales:
            return self.geometry
        return replace(self.geometry, multiple_of=math.lcm(self.geometry.multiple_of, *self.scales))

    def plan(self, sample: Sample, headers: dict[str, ImageHeader]) -> Plan:
        size = self._geometry(sample.split).output_size(headers["HR"].size, sample.sources["HR"])
        if sample.split not in self.lr_splits:
            return {"HR": (f"{sample.split}/{sample.key}.png", size)}
        plan = {"HR": (f"{sample.split}/HR/{sample.key}.png", size)}
        for scale in self.scales:
            plan[f"LR/x{scale}"] = (f"{sample.split}/LR/x{scale}/{sample.key}.png",
                                    (size[0] // scale, size[1] // scale))
        return plan

    def render(self, sample: Sample, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        high = self._geometry(sample.split).apply(require_integer(images["HR"], sample.sources["HR"]))
        if not self.keep_channels:
            high = single_channel(high)
        outputs = {"HR": high}
        if sample.split in self.lr_splits:
            outputs.update({f"LR/x{scale}": downsample_integer(high, scale, self.downsample_mode)
                            for scale in self.scales})
        return outputs


@dataclass
class Outcome:
    sample: Sample
    plan: Plan
    status: str  # "written", "skipped" (already there with the expected size) or "failed"
    error: str = ""


def _has_size(path: Path, size: Size) -> bool:
    try:
        return path.is_file() and read_header(path).size == size
    except UserError:
        return False


def convert_sample(job: tuple[Sample, OutputLayout, Path, bool]) -> Outcome:
    """Write one sample's outputs, or skip them when they already exist with the planned sizes."""
    sample, layout, out_root, overwrite = job
    try:
        plan = layout.plan(sample, {role: read_header(path) for role, path in sample.sources.items()})
        if not overwrite and all(_has_size(out_root / path, size) for path, size in plan.values()):
            return Outcome(sample, plan, "skipped")
        images = layout.render(sample, {role: read_image(path) for role, path in sample.sources.items()})
        for role, (path, size) in plan.items():
            assert (images[role].shape[1], images[role].shape[0]) == size, (role, images[role].shape, size)
            write_png(out_root / path, images[role])
        return Outcome(sample, plan, "written")
    except UserError as error:
        return Outcome(sample, {}, "failed", str(error))


def convert(samples: Sequence[Sample], layout: OutputLayout, out_root: Path, workers: int = 1,
            overwrite: bool = False) -> list[Outcome]:
    """Convert every sample (in ``workers`` processes), in order."""
    jobs = [(sample, layout, out_root, overwrite) for sample in samples]
    bar = dict(total=len(jobs), desc="converting", unit="item", mininterval=1.0 if sys.stderr.isatty() else 30.0)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunk = max(1, min(16, len(jobs) // (4 * workers)))
            return list(tqdm(pool.map(convert_sample, jobs, chunksize=chunk), **bar))
    return [convert_sample(job) for job in tqdm(jobs, **bar)]


def _jsonable(options: dict[str, object]) -> dict[str, object]:
    return json.loads(json.dumps(options, default=lambda value: sorted(value) if isinstance(value, (set, frozenset))
                                 else str(value)))


def write_manifest(out_root: Path, tool: str, source: str | Path, options: dict[str, object], layout: OutputLayout,
                   outcomes: Sequence[Outcome]) -> Path:
    """Write ``<out>/manifest.json``: options, counts, and per item its sources, outputs, split and sizes."""
    done = [outcome for outcome in outcomes if outcome.status != "failed"]
    manifest = {
        "tool": tool,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": str(source),
        "layout": layout.name,
        "options": _jsonable(options),
        "counts": dict(sorted(Counter(outcome.sample.split for outcome in done).items())),
        "failed": [{"key": outcome.sample.key, "split": outcome.sample.split, "error": outcome.error,
                    "sources": {role: str(path) for role, path in outcome.sample.sources.items()}}
                   for outcome in outcomes if outcome.status == "failed"],
        "entries": [
            {"key": outcome.sample.key, "split": outcome.sample.split, "group": outcome.sample.group,
             **outcome.sample.info, "status": outcome.status,
             "sources": {role: str(path) for role, path in outcome.sample.sources.items()},
             "outputs": {role: path for role, (path, _) in outcome.plan.items()},
             "sizes": {role: list(size) for role, (_, size) in outcome.plan.items()}}
            for outcome in done
        ],
    }
    out_root.mkdir(parents=True, exist_ok=True)
    path = out_root / MANIFEST_NAME
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(temporary, path)
    return path


def add_conversion_arguments(parser: argparse.ArgumentParser, val_fraction: float) -> None:
    """Options every converter shares."""
    parser.add_argument("--out", type=Path, required=True, help="output dataset folder (created)")
    parser.add_argument("--val_fraction", type=float, default=val_fraction,
                        help="fraction of the training groups moved to a val split (seeded, deterministic)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the val/test split")
    parser.add_argument("--center_crop", type=parse_size, default=None, metavar="SIZE|WxH",
                        help="crop the centre of every image to this size first")
    parser.add_argument("--resize", type=parse_size, default=None, metavar="SIZE|WxH",
                        help="then resize to this size (area averaging when shrinking)")
    parser.add_argument("--workers", type=int, default=1, help="processes converting in parallel")
    parser.add_argument("--overwrite", action="store_true",
                        help="rewrite outputs that already exist with the expected size (default: skip them)")


def add_pair_layout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", default="folders", choices=["folders", "ab"],
                        help="folders: <split>/A/ (infrared, 1 channel) + <split>/B/ (visible); "
                             "ab: side-by-side <split>/*.png, A left, B right (upstream pix2pix)")


def run_conversion(tool: str, args: argparse.Namespace, source: str | Path, samples: Sequence[Sample],
                   layout: OutputLayout) -> list[Outcome]:
    """Convert, write the manifest, print a summary; fail after the manifest when items failed."""
    if not samples:
        raise UserError(f"nothing to convert from {source}; check the source folder and the selection options")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    started = time.perf_counter()
    outcomes = convert(samples, layout, args.out, args.workers, args.overwrite)
    manifest = write_manifest(args.out, tool, source, vars(args), layout, outcomes)
    print(format_summary(outcomes))
    print(f"{len(outcomes)} items in {time.perf_counter() - started:.1f} s; layout {layout.name}; "
          f"manifest {manifest}")
    expected = {args.out / path for outcome in outcomes for path, _ in outcome.plan.values()}
    stale = [path for path in images_under(args.out) if path not in expected]
    if stale:
        print(f"warning: {len(stale)} images under {args.out} are not part of this conversion (e.g. {stale[0]}), "
              f"probably from an earlier run with other options; datasets would load them too, so delete them or "
              f"use a new --out", file=sys.stderr)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:
        raise UserError(f"{len(failed)} of {len(outcomes)} items could not be converted (all listed under 'failed' "
                        f"in {manifest}), e.g. {failed[0].error}")
    return outcomes


def format_summary(outcomes: Sequence[Outcome]) -> str:
    """A Markdown table: items written, skipped and failed per split."""
    counts = Counter((outcome.sample.split, outcome.status) for outcome in outcomes)
    splits = sorted({outcome.sample.split for outcome in outcomes},
                    key=lambda split: (["train", "val", "test", split].index(split), split))
    lines = ["| split | items | written | skipped (already there) | failed |", "|---|---:|---:|---:|---:|"]
    for split in splits:
        row = [counts[(split, status)] for status in ("written", "skipped", "failed")]
        lines.append(f"| {split} | {sum(row)} | {row[0]} | {row[1]} | {row[2]} |")
    return "\n".join(lines)


_SPLIT_FOLDER_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                       "test": "test", "testing": "test"}


def split_folders(root: Path) -> dict[str, Path]:
    """``train``/``val``/``test`` subfolders of ``root`` (also ``training``, ``valid``, ``validation``, ``testing``)."""
    found: dict[str, Path] = {}
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        split = _SPLIT_FOLDER_NAMES.get(folder.name.lower())
        if split is None:
            continue
        if split in found:
            raise UserError(f"{found[split]} and {folder} both look like the {split} split; rename one of them")
        found[split] = folder
    return found


def pair_sources(folder_a: Path, folder_b: Path, skip_unpaired: bool) -> list[tuple[str, Path, Path]]:
    """Infrared/visible pairs by relative name; names without a partner fail unless ``skip_unpaired``."""
    pairing = pair_ab(folder_a, folder_b)  # the aligned dataset's own rule
    unpaired = pairing.only_first + pairing.only_second
    if unpaired and not skip_unpaired:
        raise UserError(f"{len(pairing.only_first)} images in {folder_a} and {len(pairing.only_second)} in "
                        f"{folder_b} have no partner of the same name (e.g. {unpaired[0]}); pass --skip_unpaired "
                        f"to leave them out")
    if unpaired:
        print(f"warning: leaving out {len(unpaired)} images without a partner (e.g. {unpaired[0]})", file=sys.stderr)
    return [(key_text(key), path_a, path_b) for key, path_a, path_b in pairing.pairs]


def add_fraction_split_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of converters whose sources may lack split folders."""
    parser.add_argument("--test_fraction", type=float, default=0.1,
                        help="fraction of the groups moved to a test split when the source has no test folder")
    parser.add_argument("--split_unit", default="file", choices=["file", "folder"],
                        help="what is kept together when splitting: single files, or whole folders (sequences, "
                             "so near-identical neighbouring frames never end up in both train and test)")


def group_of(key: str, split_unit: str) -> str:
    return key if split_unit == "file" else (key.rpartition("/")[0] or ".")


def carve_missing_splits(samples: Sequence[Sample], present: set[str], args: argparse.Namespace) -> None:
    """Carve val (``--val_fraction``) and test (``--test_fraction``) out of train where the source lacks them."""
    fractions = {split: getattr(args, f"{split}_fraction") for split in ("val", "test") if split not in present}
    carve_splits(samples, fractions, args.seed)
