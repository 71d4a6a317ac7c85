"""Turn two folders of registered images (infrared and visible, same names) into an aligned dataset.

    python scripts/pair_folders.py --a /data/thermal --b /data/rgb --out datasets/my_pairs

Images are paired by relative path without extension (``a/x/0001.tiff`` with ``b/x/0001.jpg``).
When both folders hold train/val/test subfolders those splits are kept; otherwise val and test
are carved out by ``--val_fraction``/``--test_fraction`` (per file, or per subfolder with
``--split_unit folder``). Writes ``<out>/<split>/{A,B}/`` (A 1 channel, 16-bit kept) or
side-by-side images with ``--layout ab``, plus ``manifest.json``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from data.offline.preparation import (
    Geometry,
    PairLayout,
    Sample,
    add_conversion_arguments,
    add_fraction_split_arguments,
    add_pair_layout_argument,
    carve_missing_splits,
    group_of,
    pair_sources,
    run_conversion,
    split_folders,
)
from util.errors import UserError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="folder of domain A images (infrared)")
    parser.add_argument("--b", type=Path, required=True, help="folder of domain B images (visible)")
    add_conversion_arguments(parser, val_fraction=0.1)
    add_fraction_split_arguments(parser)
    add_pair_layout_argument(parser)
    parser.add_argument("--skip_unpaired", action="store_true",
                        help="leave out images without a partner of the same name (default: fail)")
    return parser.parse_args(argv)


def list_samples(args: argparse.Namespace) -> tuple[list[Sample], set[str]]:
    """The pairs with their split, and the splits the folders already define."""
    for folder in (args.a, args.b):
        if not folder.is_dir():
            raise UserError(f"{folder} does not exist or is not a folder")
    folders_a, folders_b = split_folders(args.a), split_folders(args.b)
    if folders_a.keys() != folders_b.keys():
        raise UserError(f"{args.a} has split folders {sorted(folders_a)} but {args.b} has {sorted(folders_b)}; "
                        f"give both the same train/val/test subfolders, or none")
    sources = {split: (folders_a[split], folders_b[split]) for split in folders_a} or {"train": (args.a, args.b)}
    samples = [Sample(key=key, sources={"A": a, "B": b}, split=split, group=group_of(key, args.split_unit))
               for split, (folder_a, folder_b) in sources.items()
               for key, a, b in pair_sources(folder_a, folder_b, args.skip_unpaired)]
    return samples, set(folders_a)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    samples, present = list_samples(args)
    carve_missing_splits(samples, present, args)
    layout = PairLayout(Geometry(args.center_crop, args.resize), side_by_side=args.layout == "ab")
    run_conversion("pair_folders", args, args.a, samples, layout)


if __name__ == "__main__":
    run_cli(main)
