"""Exponential moving average (EMA) of a network's weights, updated after every optimiser step.

``ema = d * ema + (1 - d) * param`` for every parameter (BasicSR's ``model_ema``, torch's
``get_ema_multi_avg_fn``); buffers are copied. IRSRGAN (after Lornatang's ESRGAN) swaps the two
weights, ``(1 - d) * ema + d * param`` with d = 0.99998, which makes its "EMA" the current
weights; that is not reproduced.

Early on the average would mostly remember the initial weights (at d = 0.999 it takes about
a thousand steps to forget them), which matters for the short runs this project often does,
so the decay is warmed up as in TensorFlow's ``ExponentialMovingAverage(num_updates=...)``:
``d_t = min(decay, (1 + t) / (10 + t))`` at update ``t`` (0.1, 0.18, ... ; equal to ``decay``
from t = 9 * decay / (1 - decay) on, about 9,000 updates for 0.999).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


class ModelEMA:
    """Holds ``average``, a frozen copy of ``model`` that tracks its weights."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.average = copy.deepcopy(model)
        self.average.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        averaged = dict(self.average.named_parameters())
        for name, parameter in model.named_parameters():
            averaged[name].mul_(decay).add_(parameter.detach(), alpha=1.0 - decay)
        averaged_buffers = dict(self.average.named_buffers())
        for name, buffer in model.named_buffers():
            averaged_buffers[name].copy_(buffer)
        self.num_updates += 1
