"""Run a trained model on a split and save its outputs, an HTML page and metrics.

``python test.py --model pix2pix --name NAME [--dataroot DIR] [--epoch latest]`` writes
``<results_dir>/<name>/<phase>_<epoch>/images/<image>_<visual>.png`` (1-channel infrared as
1-channel PNG), ``index.html`` and ``manifest.json``; when references exist, also the metrics
of ``--metrics`` (util.evaluation: ``metrics.csv`` per image, ``metrics.json``,
``ssim_boxplot.png``), whose mean and standard deviation are printed as a Markdown table and
shown at the top of the HTML page.

The loop itself is ``util.inference.run_test``: scripts import it from there, not from this file.
"""
from __future__ import annotations

from typing import Sequence

from util.errors import run_cli
from util.inference import TestRun, run_test, save_visual

__all__ = ["TestRun", "main", "save_visual"]


def main(argv: Sequence[str] | None = None) -> TestRun:
    """``python test.py argv`` in this process (``None``: ``sys.argv``); what the run did."""
    return run_test(argv)


if __name__ == "__main__":
    run_cli(main)
