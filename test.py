"""Run a trained model on a split and save its outputs, an HTML page and metrics.

``python test.py --model pix2pix --name NAME [--dataroot DIR] [--epoch latest]`` writes
``<results_dir>/<name>/<phase>_<epoch>/images/<image>_<visual>.png`` (1-channel infrared as
1-channel PNG), ``index.html`` and, when references exist, ``metrics.csv`` with per-image
PSNR/SSIM/RMSE, whose mean and standard deviation are printed as a Markdown table.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from data import create_dataset
from data.loader import create_eval_loader
from models import create_model
from options.test_options import TestOptions
from util.errors import run_cli
from util.evaluation import MetricTable, image_metrics
from util.html import HTMLPage
from util.image_io import tensor_to_image, write_image
from util.logging_setup import setup_logging

logger = logging.getLogger("test")


def save_visual(tensor: torch.Tensor, path: Path, bit16: bool, aspect_ratio: float) -> None:
    array = tensor_to_image(tensor, bit16=bit16)
    if aspect_ratio != 1.0:
        height, width = array.shape[:2]
        size = (round(width * aspect_ratio), height) if aspect_ratio > 1.0 else (width, round(height / aspect_ratio))
        array = np.asarray(Image.fromarray(array).resize(size, Image.BICUBIC))
    write_image(path, array)


@dataclass(frozen=True)
class TestRun:
    """What a test run did: where it wrote, how many images, how long the loop took."""

    web_dir: Path
    images: int
    seconds: float


def main(argv: Sequence[str] | None = None) -> TestRun:
    opt = TestOptions().parse(argv)
    setup_logging(verbose=opt.verbose)
    torch.manual_seed(opt.seed)  # dropout at test time (pix2pix default) is then repeatable

    dataset = create_dataset(opt, opt.phase)
    loader = create_eval_loader(dataset, opt, limit=opt.num_test)
    model = create_model(opt)
    model.setup()
    if opt.eval:
        model.eval()

    tag = model.checkpoint_tag()
    web_dir = Path(opt.results_dir) / opt.name / f"{opt.phase}_{tag}"
    page = HTMLPage(web_dir, f"{opt.name}: {opt.phase}, epoch {tag}")
    table = MetricTable()
    start, count = time.perf_counter(), 0
    for batch in loader:
        model.set_input(batch)
        model.test()
        visuals = model.get_current_visuals()
        names = [Path(path).stem for path in model.get_image_paths()]
        for index, name in enumerate(names):
            files = []
            for visual_name, tensor in visuals.items():
                file_name = f"{name}_{visual_name}.png"
                save_visual(tensor[index], page.image_dir / file_name, opt.save_16bit, opt.aspect_ratio)
                files.append(file_name)
            page.add_header(name)
            page.add_images(files, list(visuals), width=opt.display_winsize)
        target = getattr(model, model.target_visual, None)
        if target is not None:
            table.add(names, image_metrics(getattr(model, model.output_visual), target))
        count += len(names)
    elapsed = time.perf_counter() - start

    if len(table):
        summary_table = table.markdown(f"{opt.name} ({opt.phase}, epoch {tag})")
        table.write_csv(web_dir / "metrics.csv")
        (web_dir / "metrics.json").write_text(json.dumps(
            {name: {"mean": mean, "std": std} for name, (mean, std) in table.summary().items()}, indent=2))
        page.add_text(summary_table)
        logger.info("\n%s\n", summary_table)
    page.save()
    logger.info("%d images in %.1f s (%.2f images/s); results in %s", count, elapsed, count / max(elapsed, 1e-9), web_dir)
    return TestRun(web_dir, count, elapsed)


if __name__ == "__main__":
    run_cli(main)
