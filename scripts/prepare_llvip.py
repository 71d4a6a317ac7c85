"""Convert LLVIP into aligned infrared/visible pairs.

    python scripts/prepare_llvip.py --src /data/LLVIP --out datasets/llvip_aligned --workers 4

Reads ``<src>/{infrared,visible}/{train,test}/NNNNNN.jpg`` and writes
``<out>/{train,val,test}/{A,B}/NNNNNN.png`` (A = infrared as 1 channel, B = visible) or, with
``--layout ab``, side-by-side ``<out>/<split>/NNNNNN.png``, plus ``manifest.json``. LLVIP's own
train/test split is kept; ``--val_fraction`` moves blocks of consecutive frames (``--val_block``)
from train to val, so near-identical neighbouring frames do not straddle the two.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from data.offline.preparation import (
    Geometry,
    PairLayout,
    Sample,
    add_conversion_arguments,
    add_pair_layout_argument,
    carve_splits,
    pair_sources,
    run_conversion,
)
from util.errors import UserError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help="LLVIP root: holds infrared/ and visible/")
    add_conversion_arguments(parser, val_fraction=0.0)
    add_pair_layout_argument(parser)
    parser.add_argument("--val_block", type=int, default=100,
                        help="consecutive frame numbers kept together when carving the val split")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th pair of each split (in name order)")
    parser.add_argument("--skip_unpaired", action="store_true",
                        help="leave out images present in only one of infrared/ and visible/ (default: fail)")
    args = parser.parse_args(argv)
    if args.every < 1 or args.val_block < 1:
        parser.error("--every and --val_block must be at least 1")
    return args


def block_of(key: str, block: int) -> str:
    """The val-split group of a frame: its number // block (names are frame numbers), else its name."""
    return str(int(key) // block) if key.isdigit() else key


def list_samples(args: argparse.Namespace) -> list[Sample]:
    infrared, visible = args.src / "infrared", args.src / "visible"
    if not (infrared.is_dir() and visible.is_dir()):
        raise UserError(f"{args.src} must hold infrared/ and visible/ folders (LLVIP's layout); check --src")
    splits = [split for split in ("train", "test") if (infrared / split).is_dir()]
    if not splits:
        raise UserError(f"no train/ or test/ folders in {infrared}")
    samples = []
    for split in splits:
        pairs = pair_sources(infrared / split, visible / split, args.skip_unpaired)
        samples += [Sample(key=key, sources={"A": ir, "B": vis}, split=split, group=block_of(key, args.val_block))
                    for key, ir, vis in pairs[::args.every]]
    return samples


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    samples = list_samples(args)
    if args.val_fraction > 0:
        carve_splits(samples, {"val": args.val_fraction}, args.seed)
    layout = PairLayout(Geometry(args.center_crop, args.resize), side_by_side=args.layout == "ab")
    run_conversion("prepare_llvip", args, args.src, samples, layout)


if __name__ == "__main__":
    run_cli(main)
