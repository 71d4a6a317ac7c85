"""Options used only for testing."""
from __future__ import annotations

import argparse
import sys

from options.base_options import BaseOptions


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        g = parser.add_argument_group("testing")
        g.add_argument("--results_dir", default="./results/", help="results are written under <results_dir>/<name>/")
        g.add_argument("--phase", default="test", help="split folder to test on")
        g.add_argument("--num_test", type=int, default=sys.maxsize, help="test at most this many images (default: all)")
        g.add_argument("--eval", action="store_true",
                       help="eval mode: batch norm uses running statistics and dropout is off "
                            "(default, as in pix2pix: train-mode normalisation and dropout)")
        g.add_argument("--aspect_ratio", type=float, default=1.0, help="width/height stretch of saved images")
        g.add_argument("--save_16bit", action="store_true", help="save images as 16-bit PNG (metrics still use the 8-bit protocol)")
        return parser
