"""Options used only for training."""
from __future__ import annotations

import argparse
import math

from options.base_options import BaseOptions, check_range
from util.errors import UserError
from util.numerics import NAN_POLICIES


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        g = parser.add_argument_group("training schedule")
        g.add_argument("--phase", default="train", help="split folder to train on")
        g.add_argument("--n_epochs", type=int, default=100, help="epochs at the initial learning rate")
        g.add_argument("--n_epochs_decay", type=int, default=100, help="epochs to decay the learning rate to zero")
        g.add_argument("--epoch_count", type=int, default=1,
                       help="number of the first epoch; with --continue_train it is read from the checkpoint")
        g.add_argument("--continue_train", action="store_true",
                       help="resume from the --epoch checkpoint: weights, optimizers, schedulers, counters, RNG")
        g.add_argument("--lr", type=float, default=0.0002, help="initial Adam learning rate")
        g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
        g.add_argument("--gan_mode", default="lsgan", choices=["vanilla", "lsgan", "wgangp"], help="GAN objective")
        g.add_argument("--lr_policy", default="linear", choices=["linear", "step", "plateau", "cosine"],
                       help="learning-rate schedule, stepped once per epoch")
        g.add_argument("--lr_decay_iters", type=int, default=50,
                       help="step policy: decay by 0.1 every this many epochs")
        g.add_argument("--deterministic", action="store_true",
                       help="use deterministic algorithms (bit-reproducible runs, possibly slower)")
        g.add_argument("--sync_bn", action="store_true",
                       help="with torchrun on GPUs: batch-norm statistics over all processes' images (SyncBatchNorm)")
        g.add_argument("--nan_policy", default="stop", choices=NAN_POLICIES,
                       help="a NaN/Inf loss or gradient blocks the optimizer step, is logged with the loss's name, "
                            "then: stop with a message; restore the networks and optimizers of the last checkpoint "
                            "(kept in memory) and go on; or skip the batch")
        g.add_argument("--nan_max_faults", type=int, default=10,
                       help="with restore/skip: stop after this many non-finite steps in one run")

        g = parser.add_argument_group("logging and saving")
        g.add_argument("--print_freq", type=int, default=100, help="log losses every this many images")
        g.add_argument("--save_latest_freq", type=int, default=5000,
                       help="save the latest checkpoint every this many images")
        g.add_argument("--save_epoch_freq", type=int, default=5,
                       help="keep a numbered checkpoint every this many epochs")
        g.add_argument("--save_by_iter", action="store_true", help="name intermediate checkpoints iter_<images seen>")
        g.add_argument("--val_phase", default="val", help="split used for validation when it exists")
        g.add_argument("--val_freq", type=int, default=1, help="validate every this many epochs (0: never)")
        g.add_argument("--num_val", type=int, default=50, help="validate on at most this many images")

        g = parser.add_argument_group("visualisation (visdom, W&B, HTML)")
        g.add_argument("--display_id", type=int, default=1,
                       help="visdom window id; 0 turns the live display off. Without a running server training "
                            "warns once and goes on (start one: python -m visdom.server -port 8097 -bind_local)")
        g.add_argument("--display_server", default="http://localhost", help="visdom server address")
        g.add_argument("--display_port", type=int, default=8097, help="visdom server port")
        g.add_argument("--display_env", default=None, help="visdom environment; default: the experiment --name")
        g.add_argument("--display_ncols", type=int, default=4,
                       help="visuals per row of one visdom image panel; 0: one panel per visual")
        g.add_argument("--display_freq", type=int, default=400,
                       help="show the current visuals in visdom/W&B every this many images")
        g.add_argument("--update_html_freq", type=int, default=1000,
                       help="save the current visuals to checkpoints/<name>/web/ every this many images "
                            "(and at the end of every epoch)")
        g.add_argument("--no_html", action="store_true", help="do not write the web/ pages")
        g.add_argument("--use_wandb", action="store_true",
                       help="log options, losses, visuals and validation metrics to Weights & Biases "
                            "(WANDB_MODE=offline logs locally)")
        g.add_argument("--wandb_project_name", default="irlab", help="W&B project; the run is named after --name")
        return parser

    def reads_saved_architecture(self, opt: argparse.Namespace) -> bool:
        """A resumed run rebuilds the networks it saved; a new one defines them."""
        return opt.continue_train

    def validate(self, opt: argparse.Namespace) -> None:
        super().validate(opt)
        check_range(opt, "lr", lambda value: math.isfinite(value) and value > 0, "a positive finite number")
        check_range(opt, "beta1", lambda value: 0 <= value < 1, "in [0, 1)")
        for option in ("lr_decay_iters", "num_val"):
            check_range(opt, option, lambda value: value >= 1, "a whole number of at least 1")
        check_range(opt, "val_freq", lambda value: value >= 0, "0 (never) or more")
        if opt.n_epochs < 0 or opt.n_epochs_decay < 0 or opt.n_epochs + opt.n_epochs_decay < 1:
            raise UserError("--n_epochs + --n_epochs_decay must be at least 1")
        for option in ("print_freq", "save_latest_freq", "save_epoch_freq", "display_freq", "update_html_freq"):
            if getattr(opt, option) <= 0:
                raise UserError(f"--{option} must be positive")
        if opt.display_ncols < 0 or opt.display_id < 0:
            raise UserError("--display_id and --display_ncols must be 0 or more")
        if opt.nan_max_faults < 0:
            raise UserError(f"--nan_max_faults must be 0 or more, got {opt.nan_max_faults}")
        if not 0 < opt.display_port < 65536:
            raise UserError(f"--display_port must be a port number (1-65535), got {opt.display_port}")
