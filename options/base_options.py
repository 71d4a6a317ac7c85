"""Options shared by training and testing, and the option-gathering protocol.

Gathering follows upstream pix2pix: parse the base options, let the chosen model and then
the chosen dataset add their own options through their static
``modify_commandline_options(parser, is_train)`` hook, then parse strictly so that a
misspelt flag is an error rather than silently ignored.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

import data
import models
from data.base_dataset import BAD_IMAGE_POLICIES
from models.precision import AMP_MODES, resolve_amp
from options.config_file import (
    check_unknown_keys,
    config_defaults,
    config_path,
    explicit_keys,
    option_keys,
    read_config,
)
from options.saved_config import (
    SavedArchitecture,
    contradictions,
    explicit_flags,
    option_names,
    read_saved_architecture,
    write_config,
)
from util.errors import UserError
from util.image_io import BIT16_NORMALISATIONS

logger = logging.getLogger(__name__)

DEFAULT_DATAROOT = data.DEFAULT_DATAROOT
_PLAIN_NAME = re.compile(r"[^/\\\x00-\x1f]+")
# Longest --name/--epoch/--phase in bytes: file names such as "<epoch>_state.pth.commit" must stay
# under the usual 255-byte limit.
MAX_NAME_BYTES = 200


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    pass


class BaseOptions:
    """Options common to every entry point; subclasses add phase-specific ones."""

    is_train: bool = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        g = parser.add_argument_group("experiment")
        g.add_argument("--dataroot", default=None,
                       help=f"dataset root holding train/ val/ test/ splits; when omitted, the dataset mode's "
                            f"built-in data, generated on first use (the synthetic visible/infrared dataset at "
                            f"{DEFAULT_DATAROOT}; for --dataset_mode sr its infrared images at "
                            f"./datasets/synthetic_sr)")
        g.add_argument("--name", default=None,
                       help="experiment name, the folder under --checkpoints_dir; default <dataroot name>_<model>")
        g.add_argument("--checkpoints_dir", default="./checkpoints", help="models, options and logs are saved here")
        g.add_argument("--config", default=None, metavar="FILE",
                       help="read options from this YAML or JSON file (a flat mapping, e.g. configs/*.yaml, or a "
                            "run's train_opt.json); flags given on the command line override it (default: none)")
        g.add_argument("--model", default="pix2pix", help=f"model to use: {', '.join(models.available_models())}")
        g.add_argument("--seed", type=int, default=0, help="random seed for weights, data order and augmentation")
        g.add_argument("--device", default="auto",
                       help="auto | cpu | cuda | cuda:N; auto picks CUDA when available")
        g.add_argument("--gpu_ids", default=None,
                       help="upstream compatibility: -1 = CPU, 0 = cuda:0 (several ids: use torchrun instead)")
        g.add_argument("--suffix", default="",
                       help="appended to --name, formatted with the options, e.g. {model}_{netG}")
        g.add_argument("--verbose", action="store_true", help="print network architectures and debug messages")

        g = parser.add_argument_group("speed (every model; see scripts/benchmark.py)")
        g.add_argument("--amp", default="none", choices=AMP_MODES,
                       help="mixed precision: bf16 autocast (CPU and recent GPUs), fp16 autocast with loss scaling "
                            "(CUDA only), or auto: bf16 where the hardware runs it natively (GPUs with bf16, CPUs "
                            "with AMX), fp32 elsewhere; weights and optimizer states stay fp32")
        g.add_argument("--channels_last", action="store_true",
                       help="channels-last (NHWC) memory layout for networks and inputs, faster convolutions")
        g.add_argument("--compile", action="store_true",
                       help="torch.compile the networks (slow first steps while compiling; checkpoints unchanged)")
        g.add_argument("--gemm_conv_max_side", type=int, default=16,
                       help="on the CPU, convolutions on inputs of at most this many px per side (a U-Net's inner "
                            "layers) run as one matrix product instead of oneDNN, faster at small batches; 0 = never")

        g = parser.add_argument_group("networks")
        g.add_argument("--input_nc", type=int, default=None,
                       help="input channels; default decided by the model: translation models take the source "
                            "domain's (infrared A: 1, visible B: 3), super-resolution models 1")
        g.add_argument("--output_nc", type=int, default=None,
                       help="output channels; default decided by the model: translation models give the target "
                            "domain's (infrared A: 1, visible B: 3), super-resolution models 1")
        g.add_argument("--ngf", type=int, default=64, help="generator filters in the first conv layer")
        g.add_argument("--ndf", type=int, default=64, help="discriminator filters in the first conv layer")
        g.add_argument("--netG", default="unet_256", help="generator architecture")
        g.add_argument("--netD", default="basic", help="discriminator architecture")
        g.add_argument("--n_layers_D", type=int, default=3, help="discriminator depth for --netD n_layers")
        g.add_argument("--norm", default="batch", choices=["batch", "instance", "none", "syncbatch"],
                       help="normalisation layer")
        g.add_argument("--init_type", default="normal", choices=["normal", "xavier", "kaiming", "orthogonal"],
                       help="weight initialisation")
        g.add_argument("--init_gain", type=float, default=0.02, help="scale for normal, xavier and orthogonal init")
        g.add_argument("--no_dropout", action="store_true", help="no dropout in the generator")

        g = parser.add_argument_group("data")
        g.add_argument("--dataset_mode", default="aligned",
                       help=f"dataset loader: {', '.join(data.available_datasets())}")
        g.add_argument("--direction", default="BtoA", choices=["AtoB", "BtoA"],
                       help="BtoA maps B (visible) to A (infrared), the layout of KAIST-style and synthetic data")
        g.add_argument("--serial_batches", action="store_true", help="take images in order instead of shuffling")
        g.add_argument("--num_threads", type=int, default=min(4, os.cpu_count() or 1), help="data loading workers")
        g.add_argument("--image_cache_mb", type=int, default=512,
                       help="training: decoded images each data-loading process keeps in memory (MB, least recently "
                            "used out first), so an image is decoded once rather than every epoch; 0 = off")
        g.add_argument("--batch_size", type=int, default=1)
        g.add_argument("--load_size", type=int, default=None,
                       help="resize images to this size before cropping; default 286/256 x crop_size for "
                            "training and crop_size for testing")
        g.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
        g.add_argument("--max_dataset_size", type=int, default=sys.maxsize,
                       help="use at most this many images of the split")
        g.add_argument("--preprocess", default="resize_and_crop",
                       choices=["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"],
                       help="scaling and cropping at load time ('none' keeps the size; models pad internally)")
        g.add_argument("--no_flip", action="store_true", help="no random horizontal flips")
        g.add_argument("--bit16_norm", default="minmax", choices=BIT16_NORMALISATIONS,
                       help="how 16-bit/float images map to [0, 1]: per-image min-max or the fixed --bit16_range")
        g.add_argument("--bit16_range", type=float, nargs=2, default=[0.0, 65535.0], metavar=("LOW", "HIGH"),
                       help="raw values mapped to 0 and 1 with --bit16_norm fixed")
        g.add_argument("--display_winsize", type=int, default=256, help="image width in HTML pages")
        g.add_argument("--bad_image", default="error", choices=BAD_IMAGE_POLICIES,
                       help="an unreadable, truncated, oversized or mismatched image file: stop with a message naming "
                            "it, or skip: check every item when the dataset is built and leave those out (each is "
                            "logged, and the count again at the end of every epoch/run)")

        g = parser.add_argument_group("checkpoint to load")
        g.add_argument("--epoch", default="latest", help="which checkpoint to load: latest, an epoch number or a tag")
        g.add_argument("--load_iter", type=int, default=0, help="if > 0, load the iter_<load_iter> checkpoint")
        return parser

    def gather_options(self, argv: Sequence[str] | None) -> argparse.Namespace:
        # Help is added only to the final parser, so --help lists the model's and dataset's
        # options too instead of exiting after the base ones.
        argv = list(sys.argv[1:] if argv is None else argv)
        file_name = config_path(argv)
        self.config = read_config(file_name) if file_name is not None else None
        parser = argparse.ArgumentParser(formatter_class=_HelpFormatter, allow_abbrev=False, add_help=False)
        parser = self.initialize(parser)
        self.apply_config(parser)
        opt, _ = parser.parse_known_args(argv)
        self.saved = self.saved_architecture(opt)
        if self.saved is not None:  # the run's model, unless --model is given (then checked in parse)
            parser.set_defaults(model=self.saved.values["model"])
            self.apply_config(parser)
            opt, _ = parser.parse_known_args(argv)

        model_class = models.find_model_class(opt.model)
        parser = model_class.modify_commandline_options(parser, self.is_train)
        self.apply_saved_architecture(parser)
        self.apply_config(parser)
        opt, _ = parser.parse_known_args(argv)  # the model may change the dataset default

        dataset_class = data.find_dataset_class(opt.dataset_mode)
        parser = dataset_class.modify_commandline_options(parser, self.is_train)
        self.apply_saved_architecture(parser)  # after the hooks, whose defaults it replaces
        self.apply_config(parser)
        if self.config is not None:
            check_unknown_keys(self.config, parser, self.other_phase_options(opt.model, opt.dataset_mode),
                               opt.model, "train.py" if self.is_train else "test.py")

        parser.add_argument("-h", "--help", action="help", help="show this help message and exit")
        self.parser = parser
        # Unknown flags are refused in parse, after a --model contradicting the run (whose options differ) is.
        opt, self.unknown = parser.parse_known_args(argv)
        self.explicit = {}
        if self.saved is not None:  # a value from the file contradicting the saved architecture is refused too
            self.explicit = {**(explicit_keys(self.config, parser) if self.config is not None else {}),
                             **explicit_flags(parser, argv)}
        return opt

    def apply_config(self, parser: argparse.ArgumentParser) -> None:
        """Make the ``--config`` file's values the defaults of ``parser``'s options (the command line overrides)."""
        if self.config is not None:
            parser.set_defaults(**config_defaults(self.config, parser))

    def other_phase_options(self, model: str, dataset_mode: str) -> set[str]:
        """The option names of the other entry point (test.py for train.py and back): a configuration file
        may set those too, for one file serves both."""
        from options.test_options import TestOptions
        from options.train_options import TrainOptions

        other = TestOptions() if self.is_train else TrainOptions()
        parser = other.initialize(argparse.ArgumentParser(add_help=False, allow_abbrev=False))
        parser = models.find_model_class(model).modify_commandline_options(parser, other.is_train)
        parser = data.find_dataset_class(dataset_mode).modify_commandline_options(parser, other.is_train)
        return option_keys(parser)

    def reads_saved_architecture(self, opt: argparse.Namespace) -> bool:
        """Whether this entry point rebuilds the networks of an existing run (see options.saved_config)."""
        return True

    def saved_architecture(self, opt: argparse.Namespace) -> SavedArchitecture | None:
        """The architecture saved for the ``--name``/``--epoch`` checkpoint, when this entry point reads one."""
        if opt.name is None or opt.suffix or not self.reads_saved_architecture(opt):
            return None  # the run's name is known only once resolved: parse looks again then
        check_plain_name("name", opt.name)
        check_plain_name("epoch", opt.epoch)
        tag = f"iter_{opt.load_iter}" if opt.load_iter > 0 else opt.epoch
        return read_saved_architecture(Path(opt.checkpoints_dir) / opt.name, tag)

    def apply_saved_architecture(self, parser: argparse.ArgumentParser) -> None:
        """Make the saved architecture the defaults of ``parser``'s options."""
        if self.saved is not None:
            known = option_names(parser)
            parser.set_defaults(**{key: value for key, value in self.saved.values.items() if key in known})

    def parse(self, argv: Sequence[str] | None = None, save: bool = True) -> argparse.Namespace:
        """Parse, resolve derived defaults, validate and (optionally) save the options."""
        argv = list(sys.argv[1:] if argv is None else argv)
        opt = self.gather_options(argv)
        opt.isTrain = self.is_train
        self._resolve_defaults(opt)
        if self.saved is None and self.reads_saved_architecture(opt):
            # A name made from --dataroot/--model or --suffix: read that run's architecture now.
            if self.saved_architecture(argparse.Namespace(**{**vars(opt), "suffix": ""})) is not None:
                return self.parse([*argv, "--name", opt.name, "--suffix", ""], save)
        if self.saved is not None:
            message = contradictions(self.saved, opt, self.explicit, opt.name)
            if message:
                raise UserError(message)
        if self.unknown:
            self.parser.error(f"unrecognized arguments: {' '.join(self.unknown)}")
        self.validate(opt)
        if save:
            self.save(opt)
        return opt

    def _resolve_defaults(self, opt: argparse.Namespace) -> None:
        opt.dataroot_is_default = opt.dataroot is None
        if opt.dataroot is None:
            opt.dataroot = data.default_dataroot(opt.dataset_mode)
        if opt.name is None:
            opt.name = f"{Path(opt.dataroot).resolve().name}_{opt.model}"
        if opt.suffix:
            try:
                opt.name = f"{opt.name}_{opt.suffix.format(**vars(opt))}"
            except (KeyError, IndexError, ValueError, AttributeError) as error:
                raise UserError(f"--suffix {opt.suffix!r} is not a valid template ({type(error).__name__}: {error}); "
                                f"use option names in braces, e.g. {{model}}_{{netG}}") from None
        if opt.norm == "syncbatch":  # upstream's name: batch norm synchronised across torchrun processes
            opt.norm, opt.sync_bn = "batch", True
        input_nc, output_nc = models.find_model_class(opt.model).default_channels(opt)
        if opt.input_nc is None:
            opt.input_nc = input_nc
        if opt.output_nc is None:
            opt.output_nc = output_nc
        if opt.load_size is None:
            opt.load_size = round(opt.crop_size * 286 / 256) if self.is_train else opt.crop_size
        opt.device = resolve_device(opt.device, opt.gpu_ids)
        opt.amp = resolve_amp(opt.amp, opt.device)  # recorded as run, not as "auto"

    def validate(self, opt: argparse.Namespace) -> None:
        for option in ("ngf", "ndf", "n_layers_D", "max_dataset_size", "display_winsize"):
            check_range(opt, option, lambda value: value >= 1, "a whole number of at least 1")
        check_range(opt, "num_threads", lambda value: value >= 0, "0 (load in this process) or more")
        check_range(opt, "image_cache_mb", lambda value: value >= 0, "0 (off) or a size in MB")
        check_range(opt, "gemm_conv_max_side", lambda value: value >= 0, "0 (off) or a positive number of pixels")
        check_range(opt, "init_gain", lambda value: math.isfinite(value) and value > 0, "a positive finite number")
        check_folder_option(opt, "checkpoints_dir")
        for option in ("input_nc", "output_nc"):
            if getattr(opt, option) not in (1, 3):
                raise UserError(f"--{option} must be 1 (infrared/grey) or 3 (colour), got {getattr(opt, option)}")
        if opt.crop_size <= 0 or opt.load_size <= 0 or opt.batch_size <= 0:
            raise UserError("--crop_size, --load_size and --batch_size must be positive")
        if opt.preprocess == "resize_and_crop" and opt.load_size < opt.crop_size:
            raise UserError(f"--load_size {opt.load_size} is smaller than --crop_size {opt.crop_size}")
        if opt.bit16_range[1] <= opt.bit16_range[0]:
            raise UserError(f"--bit16_range LOW HIGH needs LOW < HIGH, got {opt.bit16_range}")
        if not opt.dataroot_is_default and not Path(opt.dataroot).is_dir():
            raise UserError(f"--dataroot {opt.dataroot} does not exist or is not a folder")
        # These become file and folder names under --checkpoints_dir / --results_dir.
        for option in ("name", "epoch", "phase"):
            check_plain_name(option, getattr(opt, option))

    @property
    def phase_name(self) -> str:
        return "train" if self.is_train else "test"

    def format(self, opt: argparse.Namespace) -> str:
        lines = [f"----------------- Options ({self.phase_name}) ---------------"]
        for key, value in sorted(vars(opt).items()):
            default = self.parser.get_default(key)
            marker = f"\t[default: {default}]" if default is not None and value != default else ""
            lines.append(f"{key:>25}: {value!s:<30}{marker}")
        lines.append("----------------- End -------------------")
        return "\n".join(lines)

    def save(self, opt: argparse.Namespace, folder: Path | None = None) -> Path:
        """Write the options to ``<folder>/<phase>_opt.txt`` (and, when training, ``opt.txt`` and the
        run's configuration ``train_opt.json``); the folder defaults to ``<checkpoints_dir>/<name>``."""
        folder = Path(opt.checkpoints_dir) / opt.name if folder is None else folder
        folder.mkdir(parents=True, exist_ok=True)
        text = self.format(opt) + "\n"
        file_names = ("opt.txt", f"{self.phase_name}_opt.txt") if self.is_train else (f"{self.phase_name}_opt.txt",)
        for file_name in file_names:
            (folder / file_name).write_text(text)
        if self.is_train:  # the machine-readable record test.py and the scripts rebuild the networks from
            write_config(folder, models.find_model_class(opt.model).architecture(opt), vars(opt))
        logger.debug(text)
        return folder / "opt.txt"


def check_plain_name(option: str, value: str) -> None:
    """Refuse an option value that would not stay one folder or file name (``a/b``, ``..``)."""
    if value in ("", ".", "..") or not _PLAIN_NAME.fullmatch(value):
        raise UserError(f"--{option} {value!r} must be a plain name (no '/', '\\', '..' or control characters): it "
                        f"names files and folders inside --checkpoints_dir and --results_dir, which set where they go")
    if len(value.encode()) > MAX_NAME_BYTES:
        raise UserError(f"--{option} is {len(value.encode())} bytes long; at most {MAX_NAME_BYTES} are allowed (file "
                        f"names are limited to 255 bytes, and checkpoint files add to it)")


def check_range(opt: argparse.Namespace, option: str, valid: Callable[[Any], bool], what: str) -> None:
    """Refuse ``--option`` unless ``valid(value)``; ``what`` says the valid range (NaN fails every comparison)."""
    value = getattr(opt, option)
    if not valid(value):
        raise UserError(f"--{option} must be {what}, got {value}")


def check_folder_option(opt: argparse.Namespace, option: str) -> None:
    """A folder option must not name an existing file (writing under it would fail much later)."""
    path = Path(getattr(opt, option))
    if path.exists() and not path.is_dir():
        raise UserError(f"--{option} {path} is a file, not a folder; give a folder (it is created if missing)")


def resolve_device(device: str, gpu_ids: str | None = None) -> str:
    """Turn ``--device``/``--gpu_ids`` into a torch device string, failing clearly without CUDA."""
    if gpu_ids is not None:
        ids = [part.strip() for part in gpu_ids.split(",") if part.strip()]
        if not ids or ids[0] == "-1":
            device = "cpu"
        else:
            if len(ids) > 1:
                logger.warning("--gpu_ids %s: only cuda:%s is used; for several GPUs run with torchrun",
                               gpu_ids, ids[0])
            device = f"cuda:{ids[0]}"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device} was requested but CUDA is not available; use --device cpu or auto")
        return device
    if device == "cpu":
        return device
    raise UserError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
