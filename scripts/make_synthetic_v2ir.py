"""Generate the built-in synthetic paired visible/infrared dataset.

Writes ``<out>/{train,val,test}/NNNNN.png`` in the pix2pix aligned layout (infrared A on the
left, visible B on the right) plus ``<out>/synthetic_v2ir.json``.

    python scripts/make_synthetic_v2ir.py --out datasets/synthetic_v2ir --workers 2
"""
from __future__ import annotations

import argparse
import time

from data.offline.synthetic_v2ir import generate_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="datasets/synthetic_v2ir",
                        help="output folder (relative to the current directory)")
    parser.add_argument("--seed", type=int, default=0,
                        help="dataset seed; image i of a split depends only on (seed, split, i)")
    parser.add_argument("--num_train", type=int, default=200)
    parser.add_argument("--num_val", type=int, default=20)
    parser.add_argument("--num_test", type=int, default=40)
    parser.add_argument("--size", type=int, default=256, help="height and width of each image in pixels")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes to render with (the output does not depend on it)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    root = generate_dataset(args.out, seed=args.seed, num_train=args.num_train, num_val=args.num_val,
                            num_test=args.num_test, size=args.size, workers=args.workers)
    elapsed = time.perf_counter() - started
    total = args.num_train + args.num_val + args.num_test
    print(f"wrote {total} images (train={args.num_train}, val={args.num_val}, test={args.num_test}, "
          f"{args.size}x{args.size} px, seed={args.seed}) to {root} in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
