"""Turn folders of high-resolution infrared images into an SR dataset (``--dataset_mode sr``).

    # TISR challenge data: keep its train/test folders, use the 640x480 FLIR camera as HR,
    # make fixed x2 and x4 LR sets for val and test once
    python scripts/prepare_sr.py --src /data/thermal_sr --include '*640_flir_hr/*' \\
        --out datasets/tisr_sr --lr_scales 2 4

    # CVC-09/CVC-14 FIR frames (any nested folders): split by sequence folder
    python scripts/prepare_sr.py --src /data/CVC-09 --out datasets/cvc09_sr --split_unit folder

HR images are found recursively under each ``--src`` (filtered by ``--include``/``--exclude``
globs on the path relative to ``--src``). When ``--src`` holds train/val/test folders they are
kept; missing val/test splits are carved out of train by ``--val_fraction``/``--test_fraction``.
Output: ``<out>/<split>/<name>.png`` (HR, made on the fly into LR by the SR dataset) and, for the
``--lr_splits`` when ``--lr_scales`` is given, ``<out>/<split>/HR/<name>.png`` with fixed
``<out>/<split>/LR/x<scale>/<name>.png`` (the SR dataset's paired layout). 16-bit stays 16-bit;
infrared stored as 3 identical channels becomes 1 channel (``--keep_channels`` to keep colour).
"""
from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from data.degradations import RESIZE_MODES
from data.offline.dataset_check import images_under, relative_key
from data.offline.preparation import (
    Geometry,
    Sample,
    SrLayout,
    add_conversion_arguments,
    add_fraction_split_arguments,
    carve_missing_splits,
    group_of,
    run_conversion,
    split_folders,
)
from util.errors import UserError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, nargs="+", required=True,
                        help="folders of HR images (searched recursively); with several, output names get the "
                             "folder's name as prefix")
    parser.add_argument("--include", nargs="+", default=["*"], metavar="GLOB",
                        help="keep images whose path relative to --src matches one of these, e.g. '*640_flir_hr/*'")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="GLOB", help="then drop images matching these")
    add_conversion_arguments(parser, val_fraction=0.1)
    add_fraction_split_arguments(parser)
    parser.add_argument("--lr_scales", type=int, nargs="+", default=[], choices=[2, 3, 4],
                        help="make fixed LR sets at these scales (reproducible evaluation inputs)")
    parser.add_argument("--lr_splits", nargs="+", default=["val", "test"], choices=["train", "val", "test"],
                        help="splits that get the fixed LR sets")
    parser.add_argument("--lr_downsample", default="bicubic", choices=RESIZE_MODES,
                        help="how the fixed LR images are made (as the SR dataset's --sr_downsample)")
    parser.add_argument("--keep_channels", action="store_true",
                        help="keep 3-channel images as they are (default: 1 channel, exact for grey-in-RGB files)")
    return parser.parse_args(argv)


def _selected(relative: str, include: list[str], exclude: list[str]) -> bool:
    return (any(fnmatch.fnmatchcase(relative, pattern) for pattern in include)
            and not any(fnmatch.fnmatchcase(relative, pattern) for pattern in exclude))


def list_samples(args: argparse.Namespace) -> tuple[list[Sample], set[str]]:
    """HR samples with their split, and the splits the source folders define."""
    names = [folder.name for folder in args.src]
    if len(set(names)) != len(names):
        raise UserError(f"--src folders must have different names (they prefix the output names): {names}")
    samples, present = [], set()
    for source in args.src:
        if not source.is_dir():
            raise UserError(f"--src {source} does not exist or is not a folder")
        folders = split_folders(source)
        present |= set(folders)
        prefix = f"{source.name}/" if len(args.src) > 1 else ""
        for split, folder in (folders or {"train": source}).items():
            for path in images_under(folder):
                if _selected(path.relative_to(source).as_posix(), args.include, args.exclude):
                    key = prefix + relative_key(path, folder)
                    samples.append(Sample(key=key, sources={"HR": path}, split=split,
                                          group=group_of(key, args.split_unit)))
    return samples, present


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    samples, present = list_samples(args)
    carve_missing_splits(samples, present, args)
    layout = SrLayout(Geometry(args.center_crop, args.resize), scales=tuple(sorted(set(args.lr_scales))),
                      lr_splits=frozenset(args.lr_splits if args.lr_scales else ()),
                      downsample_mode=args.lr_downsample, keep_channels=args.keep_channels)
    run_conversion("prepare_sr", args, ", ".join(str(folder) for folder in args.src), samples, layout)


if __name__ == "__main__":
    run_cli(main)
