"""Options used only for testing."""
from __future__ import annotations

import argparse
import math
import sys

from options.base_options import BaseOptions, check_folder_option, check_range
from util.evaluation import DEFAULT_METRICS, METRIC_CHOICES, Y_METRICS_HELP, parse_metric_names


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
        g.add_argument("--save_16bit", action="store_true",
                       help="save images as 16-bit PNG (metrics then see 16-bit values, still on the 0..255 scale)")
        g.add_argument("--onnx", default=None,
                       help="run this ONNX file (scripts/export.py) instead of the checkpoint's networks; results go "
                            "to <phase>_onnx_<file name>")

        g = parser.add_argument_group("metrics (when references exist)")
        g.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                       help=f"comma-separated, from {','.join(METRIC_CHOICES)}; the LPIPS ones need VGG16 weights "
                            f"(--lpips_weights); " + Y_METRICS_HELP)
        g.add_argument("--lpips_weights", default="torchvision",
                       help="VGG16 ImageNet weights for LPIPS: a local vgg16-397923af.pth, 'torchvision' (its cache "
                            "or download) or 'random' (smoke tests only)")
        return parser

    def validate(self, opt: argparse.Namespace) -> None:
        super().validate(opt)
        check_range(opt, "aspect_ratio", lambda value: math.isfinite(value) and value > 0, "a positive finite number")
        check_range(opt, "num_test", lambda value: value >= 1, "a whole number of at least 1")
        check_folder_option(opt, "results_dir")
        opt.metrics = parse_metric_names(opt.metrics)
