"""Options used only for training."""
from __future__ import annotations

import argparse

from options.base_options import BaseOptions
from util.errors import UserError


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
        g.add_argument("--lr_decay_iters", type=int, default=50, help="step policy: decay by 0.1 every this many epochs")
        g.add_argument("--deterministic", action="store_true",
                       help="use deterministic algorithms (bit-reproducible runs, possibly slower)")

        g = parser.add_argument_group("logging and saving")
        g.add_argument("--print_freq", type=int, default=100, help="log losses every this many images")
        g.add_argument("--save_latest_freq", type=int, default=5000, help="save the latest checkpoint every this many images")
        g.add_argument("--save_epoch_freq", type=int, default=5, help="keep a numbered checkpoint every this many epochs")
        g.add_argument("--save_by_iter", action="store_true", help="name intermediate checkpoints iter_<images seen>")
        g.add_argument("--val_phase", default="val", help="split used for validation when it exists")
        g.add_argument("--val_freq", type=int, default=1, help="validate every this many epochs (0: never)")
        g.add_argument("--num_val", type=int, default=50, help="validate on at most this many images")
        return parser

    def validate(self, opt: argparse.Namespace) -> None:
        super().validate(opt)
        if opt.n_epochs < 0 or opt.n_epochs_decay < 0 or opt.n_epochs + opt.n_epochs_decay < 1:
            raise UserError("--n_epochs + --n_epochs_decay must be at least 1")
        for option in ("print_freq", "save_latest_freq", "save_epoch_freq"):
            if getattr(opt, option) <= 0:
                raise UserError(f"--{option} must be positive")
