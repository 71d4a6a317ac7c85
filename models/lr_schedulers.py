"""Learning-rate schedules, stepped once per epoch.

``linear``, ``step`` and ``cosine`` are closed-form functions of the epoch index, so a
resumed run recomputes its learning rate from the options it is given now (for example
more decay epochs) instead of replaying a stored trajectory. ``plateau`` depends on the
metric history, so its state is restored as saved.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable

from torch.optim import Optimizer, lr_scheduler

from util.errors import UserError

Scheduler = lr_scheduler.LambdaLR | lr_scheduler.ReduceLROnPlateau


def lr_factor(opt: argparse.Namespace) -> Callable[[int], float]:
    """Multiplier of the initial learning rate after ``step`` completed epochs."""
    if opt.lr_policy == "linear":
        # Constant for n_epochs, then linearly to zero over n_epochs_decay (pix2pix).
        return lambda step: 1.0 - max(0, step + opt.epoch_count - opt.n_epochs) / float(opt.n_epochs_decay + 1)
    if opt.lr_policy == "step":
        return lambda step: 0.1 ** (step // opt.lr_decay_iters)
    if opt.lr_policy == "cosine":
        period = max(opt.n_epochs, 1)
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, period) / period))
    raise UserError(f"--lr_policy must be linear, step, plateau or cosine, got {opt.lr_policy!r}")


def get_scheduler(optimizer: Optimizer, opt: argparse.Namespace) -> Scheduler:
    """``linear`` (pix2pix), ``step`` (x0.1 every ``lr_decay_iters`` epochs), ``plateau``
    (x0.2 when the validation metric stops improving), ``cosine`` (to zero over ``n_epochs``)."""
    if opt.lr_policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    return lr_scheduler.LambdaLR(optimizer, lr_lambda=lr_factor(opt))


def restore_scheduler(scheduler: Scheduler, state: dict[str, Any]) -> None:
    """Load a scheduler's saved position and set its optimizer's learning rate from the
    current schedule at that position."""
    scheduler.load_state_dict(state)
    if isinstance(scheduler, lr_scheduler.LambdaLR):
        groups = scheduler.optimizer.param_groups
        for group, base_lr, factor in zip(groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
            group["lr"] = base_lr * factor(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in groups]
