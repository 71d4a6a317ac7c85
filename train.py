"""Train a model: ``python train.py --model pix2pix --direction BtoA [--dataroot DIR]``.

Without ``--dataroot`` it trains on the built-in synthetic visible/infrared dataset.
Progress goes to a tqdm bar, ``checkpoints/<name>/loss_log.txt`` and ``train.log``;
``latest`` is saved after every epoch so ``--continue_train`` resumes exactly where the
run stopped (weights, optimizers, schedules, counters and random-number states).
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from data import create_dataset, find_dataset_class
from data.loader import create_eval_loader, create_train_loader
from models import create_model
from models.base_model import BaseModel
from options.train_options import TrainOptions
from util.errors import run_cli
from util.evaluation import ImageEvaluator, MetricTable, quantise
from util.logging_setup import setup_logging
from util.loss_log import LossLog
from util.visualizer import Visualizer

logger = logging.getLogger("train")


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def crossed(count: int, step: int, frequency: int) -> bool:
    """Whether advancing a counter by ``step`` to ``count`` passed a multiple of ``frequency``."""
    return count // frequency > (count - step) // frequency


def validate(model: BaseModel, loader, seed: int) -> MetricTable:
    """Metrics of the model on the validation split, without side effects on training."""
    table = MetricTable()
    evaluator = ImageEvaluator(crop_border=getattr(model, "metric_crop_border", 0))  # test.py's metrics
    with model.preserved_state(seed):
        for batch in loader:
            model.set_input(batch)
            model.test()
            names = [Path(path).stem for path in model.get_image_paths()]
            table.add(names, evaluator(quantise(getattr(model, model.output_visual)),
                                       quantise(getattr(model, model.target_visual))))
    return table


def append_validation_csv(path: Path, epoch: int, means: dict[str, float]) -> None:
    is_new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if is_new:
            writer.writerow(["epoch", *means])
        writer.writerow([epoch, *(f"{value:.6f}" for value in means.values())])


class Trainer:
    """The training loop: epochs of optimisation steps, logging, validation, checkpoints."""

    def __init__(self, opt: argparse.Namespace) -> None:
        self.opt = opt
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        dataset = create_dataset(opt, opt.phase)
        self.loader, self.sampler = create_train_loader(dataset, opt)
        self.batches_per_epoch = math.ceil(len(dataset) / opt.batch_size)
        logger.info("training images: %d (%s/%s)", len(dataset), opt.dataroot, opt.phase)
        self.val_loader = None
        if opt.val_freq > 0 and find_dataset_class(opt.dataset_mode).has_split(opt, opt.val_phase):
            self.val_loader = create_eval_loader(create_dataset(opt, opt.val_phase), opt, limit=opt.num_val)
        self.model = create_model(opt)
        self.model.setup()
        self.first_epoch, self.skip_batches, self.total_iters = opt.epoch_count, 0, 0
        self.last_epoch = opt.n_epochs + opt.n_epochs_decay
        self.loss_log = LossLog(self.save_dir / "loss_log.txt")
        self.visualizer = Visualizer(opt)

    def resume(self) -> None:
        """Continue from the ``--epoch``/``--load_iter`` checkpoint where it stopped."""
        progress = self.model.load_checkpoint(self.model.checkpoint_tag())
        if progress is None:
            return
        self.total_iters = int(progress["total_iters"])
        complete = bool(progress["epoch_complete"])
        self.first_epoch = int(progress["epoch"]) + (1 if complete else 0)
        self.skip_batches = 0 if complete else int(progress["batches_done"])
        logger.info("resuming at epoch %d (%d batches of it done, %d images seen)",
                    self.first_epoch, self.skip_batches, self.total_iters)

    def run(self) -> None:
        if self.first_epoch > self.last_epoch:
            logger.info("nothing to do: training already reached epoch %d of %d", self.first_epoch - 1,
                        self.last_epoch)
            return
        for epoch in range(self.first_epoch, self.last_epoch + 1):
            epoch_start = time.perf_counter()
            batches_done, loss_means = self.train_epoch(epoch, self.skip_batches)
            self.skip_batches = 0
            self.end_epoch(epoch, batches_done, loss_means)
            logger.info("end of epoch %d/%d: %.1f s, checkpoint saved to %s", epoch, self.last_epoch,
                        time.perf_counter() - epoch_start, self.save_dir)

    def train_epoch(self, epoch: int, skip_batches: int) -> tuple[int, dict[str, float]]:
        """Optimise over one epoch (after skipping batches a resumed run already did).

        Returns the number of batches done in the epoch and the mean of each loss.
        """
        opt, model = self.opt, self.model
        self.sampler.set_epoch(epoch, skip=skip_batches * opt.batch_size)
        model.begin_epoch(epoch)
        model.train()
        batches_done, batches_run, loss_sums = skip_batches, 0, defaultdict(float)
        interval_start, interval_images, data_wait = time.perf_counter(), 0, 0.0
        bar = tqdm(self.loader, desc=f"epoch {epoch}/{self.last_epoch}", leave=False, dynamic_ncols=True,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
        wait_start = time.perf_counter()
        for batch in bar:
            data_wait += time.perf_counter() - wait_start
            model.set_input(batch)
            model.optimize_parameters()
            images = len(model.get_image_paths())
            batches_done, batches_run = batches_done + 1, batches_run + 1
            self.total_iters += images
            interval_images += images
            for name in model.loss_names:  # summed on the device: no synchronisation per step
                loss_sums[name] += getattr(model, f"loss_{name}").detach()
            if crossed(self.total_iters, images, opt.print_freq):
                losses = model.get_current_losses()
                elapsed = time.perf_counter() - interval_start
                line = LossLog.format(epoch, self.total_iters, (elapsed - data_wait) / interval_images,
                                      data_wait / interval_images, losses)
                self.loss_log.write(line)
                bar.set_postfix({name: f"{value:.3f}" for name, value in losses.items()}, refresh=False)
                self.visualizer.plot_current_losses(epoch - 1 + batches_done / self.batches_per_epoch, losses,
                                                    self.total_iters)
                logger.debug(line)
                interval_start, interval_images, data_wait = time.perf_counter(), 0, 0.0
            if crossed(self.total_iters, images, opt.display_freq):
                self.visualizer.display_current_results(model.get_current_visuals(), epoch, self.total_iters)
            if crossed(self.total_iters, images, opt.update_html_freq):
                self.visualizer.save_html(model.get_current_visuals(), epoch)
            if crossed(self.total_iters, images, opt.save_latest_freq):
                tag = f"iter_{self.total_iters}" if opt.save_by_iter else "latest"
                model.save_checkpoint(tag, {"epoch": epoch, "epoch_complete": False,
                                            "batches_done": batches_done, "total_iters": self.total_iters})
                logger.info("saved checkpoint %s (epoch %d, %d images seen)", tag, epoch, self.total_iters)
            wait_start = time.perf_counter()
        bar.close()
        if batches_run:  # the epoch's last visuals, before validation replaces them
            self.visualizer.save_html(model.get_current_visuals(), epoch)
        return batches_done, {name: float(total) / max(batches_run, 1) for name, total in loss_sums.items()}

    def end_epoch(self, epoch: int, batches_done: int, loss_means: dict[str, float]) -> None:
        """Validate, step the learning-rate schedule and save checkpoints."""
        opt = self.opt
        logger.info("epoch %d/%d: %s", epoch, self.last_epoch,
                    " ".join(f"{name}={value:.4f}" for name, value in loss_means.items()))
        # The plateau schedule watches validation RMSE, or the generator's losses without a val split.
        plateau_metric = sum(value for name, value in loss_means.items() if name.startswith("G"))
        if self.val_loader is not None and epoch % opt.val_freq == 0:
            table = validate(self.model, self.val_loader, opt.seed + epoch)
            val_means = table.means()
            logger.info("validation (%d images): %s", len(table),
                        " ".join(f"{name}={value:.4f}" for name, value in val_means.items()))
            append_validation_csv(self.save_dir / "val_log.csv", epoch, val_means)
            self.visualizer.plot_validation(epoch, val_means, self.total_iters)
            plateau_metric = val_means["rmse"]
        self.model.update_learning_rate(plateau_metric)
        self.visualizer.write_loss_plot()

        progress = {"epoch": epoch, "epoch_complete": True, "batches_done": batches_done,
                    "total_iters": self.total_iters}
        self.model.save_checkpoint("latest", progress)
        if epoch % opt.save_epoch_freq == 0 or epoch == self.last_epoch:
            self.model.save_checkpoint(str(epoch), progress)


def main(argv: Sequence[str] | None = None) -> None:
    opt = TrainOptions().parse(argv)
    setup_logging(Path(opt.checkpoints_dir) / opt.name / "train.log", opt.verbose)
    logger.info("experiment %s on %s (device %s)", opt.name, opt.dataroot, opt.device)
    seed_everything(opt.seed, opt.deterministic)
    trainer = Trainer(opt)
    try:
        if opt.continue_train:
            trainer.resume()
        trainer.run()
    finally:
        trainer.visualizer.close()


if __name__ == "__main__":
    run_cli(main)
