"""The model contract shared by every model, in the style of upstream pix2pix.

A model fills ``loss_names``, ``model_names``, ``visual_names`` and ``optimizers`` in its
constructor and implements ``set_input``, ``forward`` and ``optimize_parameters``. Names
tie to attributes: loss ``G_L1`` is ``self.loss_G_L1``, network ``G`` is ``self.netG``
(saved as ``<tag>_net_G.pth``), visual ``fake_B`` is ``self.fake_B``.

Speed and scale options reach every model through this class: ``set_input`` moves tensors
with ``to_device`` (channels-last layout), ``optimize_parameters`` runs its forward passes and
losses inside ``self.autocast()`` and sends every backward pass and optimizer step through
``self.backward`` and ``self.step`` (mixed precision, loss scaling), and ``setup`` wraps the
networks (channels-last weights, DDP under torchrun, torch.compile).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import random
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn

from models.lr_schedulers import get_scheduler, restore_scheduler
from models.network_wrappers import to_memory_format, unwrap, wrap_network
from models.networks import count_parameters
from models.precision import MixedPrecision
from util import distributed
from util.checkpoint import (
    commit_marker,
    finish_interrupted_save,
    load_state_dict_file,
    load_training_state,
    partial_path,
    save_files_together,
    state_dict_digest,
)
from util.errors import UserError
from util.numerics import check_finite_weights, nonfinite_entries

logger = logging.getLogger(__name__)

TRAINING_STATE_FORMAT = 1
# Channels of each domain in this project's translation datasets: A is infrared, B is visible.
DOMAIN_CHANNELS = {"A": 1, "B": 3}


class BaseModel(ABC):
    # Which visuals are the prediction and its reference, for metrics.
    output_visual = "fake_B"
    target_visual = "real_B"
    # The options that define the model's networks (their shapes, or what they compute): saved with every
    # checkpoint, and what test.py and the scripts rebuild the networks from (options/saved_config.py).
    architecture_options: tuple[str, ...] = ()

    def __init__(self, opt: argparse.Namespace) -> None:
        self.opt = opt
        self.is_train = bool(opt.isTrain)
        self.device = torch.device(opt.device)
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        self.loss_names: list[str] = []
        self.model_names: list[str] = []
        self.visual_names: list[str] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[Any] = []
        self.image_paths: list[str] = []
        self.precision = MixedPrecision(opt.amp, self.device)

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Add model-specific options or change defaults of existing ones."""
        return parser

    @classmethod
    def architecture(cls, opt: argparse.Namespace) -> dict[str, Any]:
        """``--model`` and the values of ``architecture_options`` in ``opt``."""
        return {"model": opt.model, **{name: getattr(opt, name) for name in cls.architecture_options}}

    @staticmethod
    def default_channels(opt: argparse.Namespace) -> tuple[int, int]:
        """``(input_nc, output_nc)`` where ``--input_nc``/``--output_nc`` are not given: translation between
        the infrared (A, 1 channel) and visible (B, 3) domains, in the ``--direction`` the model maps."""
        source, target = ("B", "A") if opt.direction == "BtoA" else ("A", "B")
        return DOMAIN_CHANNELS[source], DOMAIN_CHANNELS[target]

    @abstractmethod
    def set_input(self, batch: dict) -> None:
        """Unpack a batch from the data loader and move it to the device."""

    @abstractmethod
    def forward(self) -> None:
        """Compute the outputs (visuals) from the current input."""

    @abstractmethod
    def optimize_parameters(self) -> None:
        """One training step: forward, losses, backward and optimizer updates."""

    # ----------------------------------------------------------------- set-up
    def networks(self) -> dict[str, nn.Module]:
        return {name: getattr(self, f"net{name}") for name in self.model_names}

    def setup(self) -> None:
        """Create schedulers, load weights for testing, report network sizes, and wrap the
        networks for ``--channels_last``, ``--compile`` and torchrun (DDP)."""
        if self.is_train:
            self.schedulers = [get_scheduler(optimizer, self.opt) for optimizer in self.optimizers]
        else:
            self.load_networks(self.checkpoint_tag())
        for name, net in self.networks().items():
            logger.info("[network %s] %s parameters: %.3f M", name, type(net).__name__, count_parameters(net) / 1e6)
            if self.opt.verbose:
                logger.info("%s", net)
            setattr(self, f"net{name}", wrap_network(
                net, self.device, self.opt.channels_last, self.opt.compile,
                distributed=self.is_train and distributed.is_distributed(),
                sync_bn=getattr(self.opt, "sync_bn", False), gemm_conv_max_side=self.opt.gemm_conv_max_side))

    def bare_networks(self) -> dict[str, nn.Module]:
        """The networks without DDP / compile wrappers (what checkpoints hold)."""
        return {name: unwrap(net) for name, net in self.networks().items()}

    def checkpoint_tag(self) -> str:
        """The checkpoint named by ``--epoch`` / ``--load_iter``."""
        return f"iter_{self.opt.load_iter}" if self.opt.load_iter > 0 else str(self.opt.epoch)

    def eval(self) -> None:
        for net in self.networks().values():
            net.eval()

    def train(self) -> None:
        for net in self.networks().values():
            net.train()

    # ------------------------------------------------- precision and layout
    def create_adam(self, net: nn.Module, betas: tuple[float, float]) -> torch.optim.Adam:
        """Adam over ``net``'s parameters at ``--lr``, fused: one pass over the weights instead
        of about ten (it saves 14 % of a pix2pix training step on the project's CPU).

        Not under ``--amp fp16``: a fused Adam is always called and skips overflowed steps
        itself, so the NaN guard (util/numerics.py) would see the overflows that loss scaling
        expects; unfused, ``GradScaler`` skips those steps before the optimizer runs."""
        return torch.optim.Adam(net.parameters(), lr=self.opt.lr, betas=betas, fused=self.opt.amp != "fp16")

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """An input batch on the model's device, in the networks' memory layout."""
        return to_memory_format(tensor.to(self.device, non_blocking=True), self.opt.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Wrap forward passes and losses: they run in ``--amp`` precision inside it."""
        return self.precision.autocast()

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled under ``--amp fp16``."""
        self.precision.backward(loss)

    def step(self, *optimizers: torch.optim.Optimizer) -> None:
        """Step the optimizers whose gradients the last ``backward`` produced."""
        self.precision.step(optimizers)

    @staticmethod
    def set_requires_grad(nets: nn.Module | list[nn.Module], requires_grad: bool) -> None:
        for net in nets if isinstance(nets, list) else [nets]:
            for parameter in net.parameters():
                parameter.requires_grad_(requires_grad)

    # ------------------------------------------------------------- inference
    def test(self) -> None:
        """The inference pass, in inference mode (no autograd bookkeeping) and ``--amp`` precision."""
        with torch.inference_mode(), self.autocast():
            self.inference()

    def inference(self) -> None:
        """What ``test`` runs; models whose inference differs from training override it."""
        self.forward()

    @contextlib.contextmanager
    def preserved_state(self, seed: int) -> Iterator[None]:
        """Evaluate without side effects on training: network buffers (batch-norm running
        statistics) and the global RNG are restored afterwards, and dropout draws from a
        fixed seed so validation numbers are repeatable."""
        buffers = {name: {key: value.clone() for key, value in net.named_buffers()}
                   for name, net in self.networks().items()}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            try:
                yield
            finally:
                for name, net in self.networks().items():
                    for key, value in net.named_buffers():
                        value.copy_(buffers[name][key])

    def get_current_visuals(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names)

    def get_current_losses(self) -> OrderedDict[str, float]:
        """Current loss values as floats (this synchronises with the device: call it only when logging)."""
        return OrderedDict((name, float(getattr(self, f"loss_{name}").detach())) for name in self.loss_names)

    def get_image_paths(self) -> list[str]:
        return self.image_paths

    def begin_epoch(self, epoch: int) -> None:
        """Called before each training epoch (also the first one of a resumed run), for
        models whose training depends on the epoch, such as stage-wise schedules."""

    def update_learning_rate(self, metric: float | None = None) -> None:
        """Step every scheduler once (at the end of an epoch)."""
        old_lr = self.optimizers[0].param_groups[0]["lr"]
        for scheduler in self.schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if metric is not None:
                    scheduler.step(metric)
            else:
                scheduler.step()
        new_lr = self.optimizers[0].param_groups[0]["lr"]
        if new_lr != old_lr:
            logger.info("learning rate %.7f -> %.7f", old_lr, new_lr)

    # ------------------------------------------------------------ checkpoints
    def net_path(self, tag: str, name: str) -> Path:
        return self.save_dir / f"{tag}_net_{name}.pth"

    def state_path(self, tag: str) -> Path:
        return self.save_dir / f"{tag}_state.pth"

    def checkpoint_files(self, tag: str) -> list[Path]:
        """The files of checkpoint ``tag``, in the order they are committed (the state file last)."""
        return [*(self.net_path(tag, name) for name in self.model_names), self.state_path(tag)]

    def finish_interrupted_save(self, tag: str) -> None:
        """Complete (or discard) a save of checkpoint ``tag`` that a crash cut short."""
        if finish_interrupted_save(self.checkpoint_files(tag)):
            logger.warning("checkpoint '%s': completed a save that was interrupted after it was written", tag)

    def finish_interrupted_saves(self) -> None:
        """``finish_interrupted_save`` for every tag whose save left files behind in the folder."""
        blank = self.checkpoint_files("")  # the names without a tag: "_net_G.pth", ..., "_state.pth"
        leftovers = [partial_path(path).name for path in blank] + [commit_marker(blank).name]
        tags = {path.name[: -len(leftover)] for path in self.save_dir.glob("*") for leftover in leftovers
                if path.name.endswith(leftover)}
        for tag in sorted(tags):
            self.finish_interrupted_save(tag)

    def save_checkpoint(self, tag: str, progress: dict[str, int | bool]) -> None:
        """Save every network (plain state dicts) and the training state as one unit.

        ``progress`` holds the loop counters (epoch, batches done, images seen). Weights holding
        NaN/Inf are refused. The files are committed together (util.checkpoint), and the state
        file records a digest of each network, so files of different saves are never mixed.
        Under torchrun only rank 0 writes.
        """
        if not distributed.is_main_process():
            return
        # contiguous: channels-last weights are saved in the usual layout
        state_dicts = {name: {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
                       for name, net in self.bare_networks().items()}
        check_finite_weights(tag, state_dicts)
        digests = {name: state_dict_digest(state_dict) for name, state_dict in state_dicts.items()}
        state = {
            "format": TRAINING_STATE_FORMAT,
            "progress": dict(progress),
            "optimizers": [optimizer.state_dict() for optimizer in self.optimizers],
            "schedulers": [scheduler.state_dict() for scheduler in self.schedulers],
            "rng": capture_rng_state(),
            "net_digests": digests,
            "grad_scaler": self.precision.state_dict(),
            "architecture": self.architecture(self.opt),  # this checkpoint's networks, whatever later runs change
        }
        save_files_together([*((self.net_path(tag, name), state_dict) for name, state_dict in state_dicts.items()),
                             (self.state_path(tag), state)])

    def remove_checkpoint(self, tag: str) -> None:
        """Delete the files of checkpoint ``tag`` (rank 0 alone, as it alone saves)."""
        if distributed.is_main_process():
            for path in self.checkpoint_files(tag):
                path.unlink(missing_ok=True)

    def load_networks(self, tag: str) -> dict[str, Any] | None:
        """Load every network's weights from ``<tag>_net_<name>.pth`` and return the training state
        ``<tag>_state.pth`` (None without one, e.g. upstream's weights-only checkpoints).

        Weights holding NaN/Inf are refused, and so is a network file whose digest differs from
        the one the state file recorded (a damaged file, or files of different saves).
        """
        state = self.training_state(tag)
        for name, net in self.bare_networks().items():
            path = self.net_path(tag, name)
            state_dict = self.verified_network_file(tag, name, state)
            try:
                net.load_state_dict(state_dict)
            except RuntimeError as error:
                raise UserError(
                    f"{path} does not fit network {name} as configured ({error.args[0].splitlines()[0]} ...); "
                    f"use the --netG/--netD/--norm/--ngf/--input_nc/--output_nc values it was trained with (this "
                    f"model's architecture options: {', '.join('--' + option for option in self.architecture_options)})"
                ) from None
            logger.info("loaded %s", path)
        return state

    def training_state(self, tag: str) -> dict[str, Any] | None:
        """The ``<tag>_state.pth`` training state, or None without one (weights-only checkpoints)."""
        state_file = self.state_path(tag)
        return load_training_state(state_file) if state_file.exists() else None

    def verified_network_file(self, tag: str, name: str, state: dict[str, Any] | None) -> dict[str, torch.Tensor]:
        """The weights in ``<tag>_net_<name>.pth``, refused when they hold NaN/Inf or differ from the
        digest that ``state`` (the same save's training state) recorded."""
        path = self.net_path(tag, name)
        state_dict = load_state_dict_file(path, map_location=self.device)
        bad = nonfinite_entries(state_dict)
        if bad:
            raise UserError(f"{path} holds NaN or infinite weights (in {bad[0]} and {len(bad) - 1} more tensors); "
                            f"it is damaged: use another checkpoint (--epoch)")
        if state is not None and state["net_digests"].get(name) != state_dict_digest(state_dict):
            raise UserError(
                f"checkpoint '{tag}' in {self.save_dir} is inconsistent: {path.name} does not match the digest "
                f"recorded in {self.state_path(tag).name} (a damaged file, or files of different saves, e.g. copied "
                f"in by hand). Use another checkpoint with --epoch")
        return state_dict

    def load_checkpoint(self, tag: str) -> dict[str, int | bool] | None:
        """Restore networks and, when present, optimizers, schedulers and RNG states.

        Returns the saved loop progress, or None for a weights-only checkpoint (for
        example one written by upstream pix2pix).
        """
        self.finish_interrupted_save(tag)
        state = self.load_networks(tag)
        if state is None:
            logger.warning("no training state %s: resuming from the weights only (optimizers and learning-rate "
                           "schedule restart; epoch numbering follows --epoch_count)", self.state_path(tag))
            return None
        for optimizer, optimizer_state in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(optimizer_state)
        for scheduler, scheduler_state in zip(self.schedulers, state["schedulers"], strict=True):
            restore_scheduler(scheduler, scheduler_state)
        restore_rng_state(state["rng"])
        self.precision.load_state_dict(state.get("grad_scaler", {}))
        return state["progress"]


def capture_rng_state() -> dict[str, Any]:
    """Every RNG state a training step may touch, in a weights-only-loadable form."""
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(_as_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    # random.setstate needs tuples; serialisation may hand back lists.
    return tuple(_as_tuples(item) for item in value) if isinstance(value, (list, tuple)) else value
