"""Train a model: ``python train.py --model pix2pix --direction BtoA [--dataroot DIR]``.

Without ``--dataroot`` it trains on the built-in synthetic visible/infrared dataset.
Progress goes to a tqdm bar, ``checkpoints/<name>/loss_log.txt`` and ``train.log``;
``latest`` is saved after every epoch so ``--continue_train`` resumes exactly where the
run stopped (weights, optimizers, schedules, counters and random-number states).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import logging
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import NoReturn, Sequence

import numpy as np
import torch
from tqdm import tqdm

from data import create_dataset, find_dataset_class
from data.loader import create_eval_loader, create_train_loader
from models import create_model
from models.base_model import BaseModel
from options.train_options import TrainOptions
from util import distributed
from util.checkpoint import experiment_lock
from util.errors import UserError, run_cli, user_message
from util.evaluation import ImageEvaluator, MetricTable, quantise
from util.interrupts import INTERRUPTED_TAG, StopRequest, load_newest_checkpoint
from util.logging_setup import setup_logging
from util.loss_log import LossLog
from util.numerics import StepGuard
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
        with distributed.main_process_first():  # built-in data is generated once, by rank 0
            dataset = create_dataset(opt, opt.phase)
        self.loader, self.sampler = create_train_loader(dataset, opt)
        self.batches_per_epoch = math.ceil(len(self.sampler) / opt.batch_size)  # of this process
        logger.info("training images: %d (%s/%s)", len(dataset), opt.dataroot, opt.phase)
        # Under torchrun, rank 0 alone logs, validates, shows visuals and saves checkpoints.
        self.is_main = distributed.is_main_process()
        self.val_loader = None
        if self.is_main and opt.val_freq > 0 and find_dataset_class(opt.dataset_mode).has_split(opt, opt.val_phase):
            self.val_loader = create_eval_loader(create_dataset(opt, opt.val_phase), opt, limit=opt.num_val)
        self.model = create_model(opt)
        self.model.setup()
        self.first_epoch, self.skip_batches, self.total_iters = opt.epoch_count, 0, 0
        self.last_epoch = opt.n_epochs + opt.n_epochs_decay
        self.loss_log = LossLog(self.save_dir / "loss_log.txt") if self.is_main else None
        self.visualizer = Visualizer(opt) if self.is_main else None
        self.guard = StepGuard(self.model, opt.nan_policy, opt.nan_max_faults)  # NaN/Inf never reach the weights
        self.stop = StopRequest()  # SIGINT/SIGTERM: finish the step, save 'interrupted', exit

    def resume(self) -> None:
        """Continue from the ``--epoch``/``--load_iter`` checkpoint where it stopped."""
        _tag, progress = load_newest_checkpoint(self.model)  # latest or interrupted, whichever is newer
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
        with self.stop.installed():
            for epoch in range(self.first_epoch, self.last_epoch + 1):
                epoch_start = time.perf_counter()
                batches_done, loss_means = self.train_epoch(epoch, self.skip_batches)
                self.skip_batches = 0
                self.end_epoch(epoch, batches_done, loss_means)
                logger.info("end of epoch %d/%d: %.1f s, checkpoint saved to %s", epoch, self.last_epoch,
                            time.perf_counter() - epoch_start, self.save_dir)
                if epoch < self.last_epoch and self.stop.requested():
                    self.stop_for_signal(epoch, batches_done, epoch_complete=True)

    def save_checkpoint(self, tag: str, progress: dict[str, int | bool]) -> None:
        self.model.save_checkpoint(tag, progress)
        if tag == "latest":  # the 'interrupted' set of an earlier stop is now behind: never resume from it
            self.model.remove_checkpoint(INTERRUPTED_TAG)
        self.guard.remember()  # what --nan_policy restore goes back to

    def stop_for_signal(self, epoch: int, batches_done: int, epoch_complete: bool) -> NoReturn:
        """Save the ``interrupted`` checkpoint and exit with 128 + the signal number."""
        self.model.save_checkpoint(INTERRUPTED_TAG, {"epoch": epoch, "epoch_complete": epoch_complete,
                                                     "batches_done": batches_done, "total_iters": self.total_iters})
        logger.warning("saved checkpoint '%s' (epoch %d, %d images seen) to %s; resume with --continue_train",
                       INTERRUPTED_TAG, epoch, self.total_iters, self.save_dir)
        raise SystemExit(self.stop.exit_code)

    def train_epoch(self, epoch: int, skip_batches: int) -> tuple[int, dict[str, float]]:
        """Optimise over one epoch (after skipping batches a resumed run already did).

        Returns the number of batches done in the epoch and the mean of each loss.
        """
        opt, model = self.opt, self.model
        self.sampler.set_epoch(epoch, skip=skip_batches * opt.batch_size)
        model.begin_epoch(epoch)
        model.train()
        # batches_done counts the epoch's batches; batches_run the optimisation steps applied in this call.
        batches_done, batches_run, loss_sums = skip_batches, 0, defaultdict(float)
        interval_start, interval_images, data_wait = time.perf_counter(), 0, 0.0
        bar = tqdm(self.loader, desc=f"epoch {epoch}/{self.last_epoch}", leave=False, dynamic_ncols=True,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0, disable=not self.is_main)
        wait_start = time.perf_counter()
        for batch in bar:
            data_wait += time.perf_counter() - wait_start
            model.set_input(batch)
            stepped = self.guard.optimize(f"epoch {epoch}, batch {batches_done + 1}")  # False: NaN/Inf, dropped
            images = len(model.get_image_paths()) * distributed.world_size()  # all processes' images
            batches_done += 1
            self.total_iters += images
            interval_images += images
            if stepped:
                batches_run += 1
                for name in model.loss_names:  # summed on the device: no synchronisation per step
                    loss_sums[name] += getattr(model, f"loss_{name}").detach()
            if self.is_main and stepped and crossed(self.total_iters, images, opt.print_freq):
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
            if self.is_main and stepped and crossed(self.total_iters, images, opt.display_freq):
                self.visualizer.display_current_results(model.get_current_visuals(), epoch, self.total_iters)
            if self.is_main and stepped and crossed(self.total_iters, images, opt.update_html_freq):
                self.visualizer.save_html(model.get_current_visuals(), epoch)
            if crossed(self.total_iters, images, opt.save_latest_freq):
                tag = f"iter_{self.total_iters}" if opt.save_by_iter else "latest"
                self.save_checkpoint(tag, {"epoch": epoch, "epoch_complete": False,
                                           "batches_done": batches_done, "total_iters": self.total_iters})
                logger.info("saved checkpoint %s (epoch %d, %d images seen)", tag, epoch, self.total_iters)
            if self.stop.requested():
                bar.close()
                self.stop_for_signal(epoch, batches_done, epoch_complete=False)
            wait_start = time.perf_counter()
        bar.close()
        if self.is_main and batches_run:  # the epoch's last visuals, before validation replaces them
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
            try:
                table = validate(self.model, self.val_loader, opt.seed + epoch)
            except UserError as error:
                # Keep the epoch's training: saved as not yet complete, with every batch done, a
                # resumed run goes straight to this validation, schedule step and checkpoint.
                self.save_checkpoint("latest", {"epoch": epoch, "epoch_complete": False,
                                                "batches_done": batches_done, "total_iters": self.total_iters})
                raise UserError(f"{user_message(error)} (validation after epoch {epoch}; its training is saved in "
                                f"checkpoint 'latest': fix the file, then resume with --continue_train)") from None
            val_means = table.means()
            logger.info("validation (%d images): %s", len(table),
                        " ".join(f"{name}={value:.4f}" for name, value in val_means.items()))
            append_validation_csv(self.save_dir / "val_log.csv", epoch, val_means)
            self.visualizer.plot_validation(epoch, val_means, self.total_iters)
            plateau_metric = val_means["rmse"]
        # Rank 0's metric everywhere: the learning rate must change identically on every process.
        self.model.update_learning_rate(distributed.broadcast_float(plateau_metric, self.model.device))
        if self.is_main:
            self.visualizer.write_loss_plot()
        self.loader.dataset.log_skipped(f"end of epoch {epoch}")

        progress = {"epoch": epoch, "epoch_complete": True, "batches_done": batches_done,
                    "total_iters": self.total_iters}
        self.save_checkpoint("latest", progress)
        if epoch % opt.save_epoch_freq == 0 or epoch == self.last_epoch:
            self.save_checkpoint(str(epoch), progress)


def run_training(opt: argparse.Namespace) -> None:
    """Build the trainer and run it, resuming first with ``--continue_train``."""
    trainer = Trainer(opt)
    try:
        if opt.continue_train:
            with distributed.main_process_first():  # rank 0 completes an interrupted save before others read
                trainer.resume()
        trainer.run()
        distributed.check_replicas(trainer.model.bare_networks())
    finally:
        if trainer.visualizer is not None:
            trainer.visualizer.close()


def main(argv: Sequence[str] | None = None) -> None:
    options = TrainOptions()
    opt = options.parse(argv, save=False)
    writer = distributed.environment_rank() == 0  # under torchrun, rank 0 alone writes the experiment folder
    with experiment_lock(Path(opt.checkpoints_dir) / opt.name) if writer else contextlib.nullcontext():
        if writer:
            options.save(opt)
        train_in_process_group(opt)


def train_in_process_group(opt: argparse.Namespace) -> None:
    """Join the torchrun processes (if any), set up logging and seeds, and train."""
    distributed.init_from_environment(opt)  # under torchrun: join the other processes
    try:
        if distributed.is_main_process():
            setup_logging(Path(opt.checkpoints_dir) / opt.name / "train.log", opt.verbose)
        else:  # the other processes only report problems
            setup_logging(verbose=False)
            logging.getLogger().setLevel(logging.WARNING)
        logger.info("experiment %s on %s (device %s, %d process%s)", opt.name, opt.dataroot, opt.device,
                    distributed.world_size(), "" if distributed.world_size() == 1 else "es")
        seed_everything(opt.seed, opt.deterministic)
        run_training(opt)
    finally:
        # The process group goes after the DDP-wrapped networks (and the reference cycles that hold
        # them): destroying it while DDP still uses it aborted a process now and then at exit.
        gc.collect()
        distributed.cleanup()


if __name__ == "__main__":
    run_cli(main)
