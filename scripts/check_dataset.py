"""Check a dataset folder: counts, sizes, channels, bit depth, unreadable files, unpaired names,
pairs of different sizes, misregistration and JPEG block artefacts, printed as a table with one row
per split.

    python scripts/check_dataset.py datasets/kaist_aligned --workers 4
    python scripts/check_dataset.py datasets/llvip_aligned --registration_pairs -1 --csv llvip_check.csv

Layouts: <split>/{A,B}/, {A,B}/<split>/, side-by-side <split>/*.png (``--layout ab``, or read
from the manifest.json the converters write), SR <split>/HR/ + <split>/LR/x<scale>/, and plain
image folders; folder names in any case and partners matched by name exactly as the datasets
do it (data/layout.py holds the one rule). The misregistration estimate is the phase
correlation of the two images' edge maps (Sobel magnitude) at a common size: the shift of B's
content relative to A (or LR relative to HR) in pixels of A, and the correlation peak
("response", near 0 for unrelated images).
Exit status 1 with --strict when problems were found.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from data.offline.dataset_check import MAX_BLOCKING, check_dataset, format_report, write_item_csv
from data.offline.preparation import MANIFEST_NAME
from util.errors import UserError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="dataset folder (holding train/, val/, test/ or A/, B/)")
    parser.add_argument("--layout", default="auto", choices=["auto", "ab", "images"],
                        help="how to read plain folders of images: side-by-side A|B pairs or single images; "
                             "auto reads it from manifest.json, else single images")
    parser.add_argument("--quick", action="store_true",
                        help="headers only: no decoding (misses truncated files) and no registration")
    parser.add_argument("--registration_pairs", type=int, default=200,
                        help="pairs per split given a misregistration estimate, evenly spaced; -1 = all, 0 = none")
    parser.add_argument("--registration_size", type=int, default=512,
                        help="longer side (pixels) at which edges are correlated")
    parser.add_argument("--max_shift", type=float, default=2.0,
                        help="flag pairs whose estimated shift exceeds this many pixels (of image A / HR)")
    parser.add_argument("--min_response", type=float, default=0.12,
                        help="only flag estimates whose correlation peak is at least this (lower is guesswork)")
    parser.add_argument("--max_blocking", type=float, default=MAX_BLOCKING,
                        help="note images whose 8x8 compression blocking (step across JPEG block lines over the "
                             "step elsewhere; about 1 when never compressed) exceeds this")
    parser.add_argument("--show", type=int, default=10, help="problems listed per kind and split")
    parser.add_argument("--csv", type=Path, default=None, help="also write one row per item to this CSV file")
    parser.add_argument("--workers", type=int, default=1, help="processes checking in parallel")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a problem was found")
    return parser.parse_args(argv)


def plain_layout(root: Path, layout: str) -> str:
    """The layout of plain image folders: the option, else the converter's manifest, else single images."""
    if layout != "auto":
        return layout
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return "images"
    return "ab" if manifest.get("layout") == "ab" else "images"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.workers < 1 or args.registration_size < 16:
        raise UserError("--workers must be at least 1 and --registration_size at least 16")
    started = time.perf_counter()
    reports = check_dataset(args.root, plain_layout(args.root, args.layout), decode=not args.quick,
                            registration_pairs=0 if args.quick else args.registration_pairs,
                            max_side=args.registration_size, max_shift=args.max_shift,
                            min_response=args.min_response, max_blocking=args.max_blocking, workers=args.workers)
    print(format_report(reports, args.show))
    print(f"checked {args.root} in {time.perf_counter() - started:.1f} s")
    if args.csv is not None:
        write_item_csv(args.csv, reports)
    if args.strict and any(report.problem_count for report in reports):
        sys.exit(1)


if __name__ == "__main__":
    run_cli(main)
