"""Convert raw KAIST Multispectral Pedestrian frames into aligned infrared/visible pairs.

    python scripts/prepare_kaist.py --src /data/kaist --out datasets/kaist_aligned --every 20 --workers 4

Reads ``<src>/images/setXX/VYYY/{lwir,visible}/IZZZZZ.jpg`` (or ``<src>/setXX/...``) and writes
``<out>/{train,val,test}/{A,B}/setXX_VYYY_IZZZZZ.png`` (A = lwir as 1 channel, B = visible) or,
with ``--layout ab``, side-by-side ``<out>/<split>/setXX_VYYY_IZZZZZ.png``, plus ``manifest.json``.
Standard split: set00-05 train, set06-11 test. Day: set00-02 and set06-08; night: set03-05 and
set09-11. ``--every 20`` keeps I00019, I00039, ... as the official ``-20`` image lists do.
"""
from __future__ import annotations

import argparse
import re
import sys
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

TRAIN_SETS = [f"set{number:02d}" for number in range(0, 6)]
TEST_SETS = [f"set{number:02d}" for number in range(6, 12)]
NIGHT_SETS = {f"set{number:02d}" for number in (3, 4, 5, 9, 10, 11)}
_FRAME_ID = re.compile(r"(set\d+)[/_](V\d+)[/_](I\d+)")
_FRAME_NUMBER = re.compile(r"I(\d+)")


def time_of_day(set_name: str) -> str:
    """KAIST records day and night in separate sets."""
    if set_name not in TRAIN_SETS + TEST_SETS:
        return "unknown"
    return "night" if set_name in NIGHT_SETS else "day"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help="KAIST root: holds images/setXX/ (or setXX/)")
    add_conversion_arguments(parser, val_fraction=0.0)
    add_pair_layout_argument(parser)
    parser.add_argument("--train_sets", nargs="+", default=TRAIN_SETS, help="sets of the train split")
    parser.add_argument("--test_sets", nargs="+", default=TEST_SETS, help="sets of the test split")
    parser.add_argument("--time", default="all", choices=["all", "day", "night"], help="keep day or night sets only")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th frame of each video")
    parser.add_argument("--offset", type=int, default=None,
                        help="frame number kept first with --every (default N-1, as KAIST's image lists)")
    parser.add_argument("--train_list", type=Path, default=None,
                        help="KAIST imageSets list (lines setXX/VYYY/IZZZZZ) giving the train frames exactly; "
                             "replaces --train_sets/--every for train")
    parser.add_argument("--test_list", type=Path, default=None, help="the same for the test split")
    parser.add_argument("--val_videos", nargs="+", default=None, metavar="setXX/VYYY",
                        help="train videos that form the val split (instead of --val_fraction)")
    parser.add_argument("--skip_unpaired", action="store_true",
                        help="leave out frames present in only one of lwir/ and visible/ (default: fail)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be at least 1")
    if args.offset is None:
        args.offset = args.every - 1
    return args


def frame_number(frame: str, path: Path) -> int:
    match = _FRAME_NUMBER.fullmatch(frame)
    if match is None:
        raise UserError(f"unexpected frame name {path}; KAIST frames are named IZZZZZ.jpg")
    return int(match.group(1))


def read_frame_list(path: Path) -> set[tuple[str, str, str]]:
    if not path.is_file():
        raise UserError(f"image list {path} does not exist")
    frames = {match.groups() for match in map(_FRAME_ID.search, path.read_text().splitlines()) if match}
    if not frames:
        raise UserError(f"image list {path} has no lines like set00/V000/I00019")
    return frames


def list_samples(args: argparse.Namespace) -> list[Sample]:
    """Every selected frame as a train or test sample, grouped by video, stratified by day/night."""
    images = args.src / "images" if (args.src / "images").is_dir() else args.src
    overlap = set(args.train_sets) & set(args.test_sets)
    if overlap:
        raise UserError(f"sets {sorted(overlap)} are in both --train_sets and --test_sets")
    lists = {"train": args.train_list and read_frame_list(args.train_list),
             "test": args.test_list and read_frame_list(args.test_list)}
    set_split = {name: "train" for name in args.train_sets} | {name: "test" for name in args.test_sets}
    for split, frames in lists.items():  # a list names its own sets
        set_split.update({frame[0]: split for frame in frames or ()})
    samples, found_sets = [], set()
    for set_folder in sorted(images.glob("set*")):
        split, time = set_split.get(set_folder.name), time_of_day(set_folder.name)
        if split is None or not set_folder.is_dir() or args.time not in ("all", time):
            continue
        found_sets.add(set_folder.name)
        for video in sorted(path for path in set_folder.glob("V*") if path.is_dir()):
            for frame, lwir, visible in pair_sources(video / "lwir", video / "visible", args.skip_unpaired):
                frame_id = (set_folder.name, video.name, frame)
                if lists[split]:
                    keep = frame_id in lists[split]
                else:
                    keep = frame_number(frame, lwir) in range(args.offset, sys.maxsize, args.every)
                if keep:
                    samples.append(Sample(
                        key="_".join(frame_id), sources={"A": lwir, "B": visible}, split=split,
                        group=f"{set_folder.name}/{video.name}", stratum=time,
                        info={"set": set_folder.name, "video": video.name, "frame": frame, "time": time}))
    if not found_sets:
        raise UserError(f"no KAIST sets (setXX/VYYY/{{lwir,visible}}) found in {images}; point --src at the folder "
                        f"holding images/ or set00/ ...")
    for split, frames in lists.items():
        missing = sorted(frames - {tuple(s.key.split("_")) for s in samples if s.split == split}) if frames else []
        if missing and args.time == "all":
            raise UserError(f"{len(missing)} frames of --{split}_list are not in {images} "
                            f"(e.g. {'/'.join(missing[0])})")
    return samples


def assign_val(samples: list[Sample], args: argparse.Namespace) -> None:
    if args.val_videos:
        train_videos = {sample.group for sample in samples if sample.split == "train"}
        unknown = sorted(set(args.val_videos) - train_videos)
        if unknown:
            raise UserError(f"--val_videos {' '.join(unknown)}: not among the selected train videos "
                            f"({', '.join(sorted(train_videos)[:6])}, ...)")
        for sample in samples:
            if sample.group in args.val_videos:
                sample.split = "val"
    elif args.val_fraction > 0:
        carve_splits(samples, {"val": args.val_fraction}, args.seed)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    samples = list_samples(args)
    assign_val(samples, args)
    layout = PairLayout(Geometry(args.center_crop, args.resize), side_by_side=args.layout == "ab")
    run_conversion("prepare_kaist", args, args.src, samples, layout)


if __name__ == "__main__":
    run_cli(main)
