"""test.py's inference loop: run a trained model on a split and save its outputs, an HTML page and metrics.

``run_test(argv)`` takes test.py's command line (``python test.py --model pix2pix --name NAME [--dataroot DIR]
[--epoch latest]``) and writes ``<results_dir>/<name>/<phase>_<epoch>/images/<image>_<visual>.png`` (1-channel
infrared as 1-channel PNG), ``index.html`` and ``manifest.json``; when references exist, also the metrics of
``--metrics`` (util.evaluation: ``metrics.csv`` per image, ``metrics.json``, ``ssim_boxplot.png``), whose mean and
standard deviation are printed as a Markdown table and shown at the top of the HTML page.

test.py is the command-line entry; scripts that need the loop (scripts/net_interp.py, scripts/benchmark.py) import
it from here, since ``import test`` would find Python's own ``test`` package when the repository root is not first
on ``sys.path``.
"""
from __future__ import annotations

import logging
import shutil
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
from util.evaluation import ImageEvaluator, MetricTable, format_values, quantise, write_manifest
from util.html import HTMLPage
from util.image_io import tensor_to_image, write_image
from util.logging_setup import setup_logging

logger = logging.getLogger("test")  # the name test.py has always logged under


def save_visual(tensor: torch.Tensor, path: Path, bit16: bool, aspect_ratio: float) -> None:
    array = tensor_to_image(tensor, bit16=bit16)
    if aspect_ratio != 1.0:
        height, width = array.shape[:2]
        size = (round(width * aspect_ratio), height) if aspect_ratio > 1.0 else (width, round(height / aspect_ratio))
        array = np.asarray(Image.fromarray(array).resize(size, Image.BICUBIC))
    write_image(path, array)


@dataclass(frozen=True)
class TestRun:
    """What a test run did: where it wrote, how many images, how long the loop took, and how
    long after ``main`` began the first image was written (start-up latency)."""

    web_dir: Path
    images: int
    seconds: float
    first_image_seconds: float | None


def run_test(argv: Sequence[str] | None = None) -> TestRun:
    """test.py on ``argv`` (its command line; ``None``: ``sys.argv``)."""
    launched = time.perf_counter()  # after Python's imports: start-up here is options, data, model, weights
    options = TestOptions()
    opt = options.parse(argv, save=False)  # test.py only reads --checkpoints_dir: options go with the results
    setup_logging(verbose=opt.verbose)
    torch.manual_seed(opt.seed)  # dropout at test time (pix2pix default) is then repeatable

    dataset = create_dataset(opt, opt.phase)
    loader = create_eval_loader(dataset, opt, limit=opt.num_test)
    model = create_model(opt)
    if opt.onnx:  # the exported graph replaces the networks; no checkpoint is loaded
        from models.export import run_onnx_in_model  # imports every model and onnxruntime: only when asked

        run_onnx_in_model(model, opt.onnx)
    else:
        model.setup()
    if opt.eval:
        model.eval()

    tag = f"onnx_{Path(opt.onnx).stem}" if opt.onnx else model.checkpoint_tag()
    web_dir = Path(opt.results_dir) / opt.name / f"{opt.phase}_{tag}"
    # Only this run's files: images, metrics and pages of an earlier run (more images, another
    # --dataroot) would otherwise mix with them, for scripts/evaluate.py too.
    if web_dir.is_dir():
        shutil.rmtree(web_dir)
    options.save(opt, web_dir)
    page = HTMLPage(web_dir, f"{opt.name}: {opt.phase}, epoch {tag}")
    bits = 16 if opt.save_16bit else 8
    evaluator = ImageEvaluator(opt.metrics, crop_border=getattr(model, "metric_crop_border", 0),
                               lpips_weights=opt.lpips_weights, device=model.device)
    table = MetricTable()
    entries: list[tuple[str, list[str], list[str], str]] = []  # page rows: image, files, captions, metrics
    start, count, first_image_seconds = time.perf_counter(), 0, None
    for batch in loader:
        model.set_input(batch)
        model.test()
        visuals = model.get_current_visuals()
        names = [Path(path).stem for path in model.get_image_paths()]
        target = getattr(model, model.target_visual, None)
        per_image = [{} for _ in names]
        if target is not None:
            per_image = table.add(names, evaluator(quantise(getattr(model, model.output_visual), bits),
                                                   quantise(target, bits)))
        for index, name in enumerate(names):
            files = []
            for visual_name, tensor in visuals.items():
                file_name = f"{name}_{visual_name}.png"
                save_visual(tensor[index], page.image_dir / file_name, opt.save_16bit, opt.aspect_ratio)
                files.append(file_name)
            entries.append((name, files, list(visuals), format_values(per_image[index])))
            if first_image_seconds is None:
                first_image_seconds = time.perf_counter() - launched
                logger.info("first image written %.2f s after start", first_image_seconds)
        count += len(names)
    elapsed = time.perf_counter() - start

    write_manifest(web_dir, name=opt.name, model=opt.model, phase=opt.phase, epoch=tag, images=count,
                   visuals=list(model.visual_names), output_visual=model.output_visual,
                   target_visual=model.target_visual, bits=bits, metric_settings=evaluator.settings())
    if len(table):
        summary_table = table.write_report(web_dir, f"{opt.name} ({opt.phase}, epoch {tag})")
        page.add_text(summary_table)
        logger.info("\n%s\n", summary_table)
    for name, files, captions, metric_line in entries:
        page.add_header(name)
        page.add_images(files, captions, width=opt.display_winsize)
        if metric_line:
            page.add_text(metric_line)
    page.save()
    dataset.log_skipped("test run")
    logger.info("%d images in %.1f s (%.2f images/s); results in %s", count, elapsed, count / max(elapsed, 1e-9),
                web_dir)
    return TestRun(web_dir, count, elapsed, first_image_seconds)

