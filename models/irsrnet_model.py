"""IRSRNet: the PSNR-oriented stage of IRSRGAN (infrared super-resolution), trained with L1 only.

The generator (``--netG crdb``, IRSRGAN's CRDB net, or ``rrdb``, ESRGAN's RRDBNet) maps the
low-resolution ``LR`` to ``SR`` (``--scale`` times larger); the loss is
``lambda_L1 * |SR - HR|_1`` on images in [-1, 1] (twice the value on [0, 1] images), plus
``lambda_ssim * (1 - SSIM(SR, HR))`` when that weight is set. Its checkpoint initialises the GAN
stage (``--model irsrgan``).

An exponential moving average of the generator (``--ema_decay``, 0 = off) is kept as its own
network ``G_ema`` (``<tag>_net_G_ema.pth``), restored on ``--continue_train``, and is what
validation and ``test.py`` run (``--test_weights``). Inference is tiled with ``--tile``.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
import torch.nn as nn

from models.base_model import BaseModel
from models.ema import ModelEMA
from models.losses.ssim_loss import SSIMLoss
from models.network_wrappers import unwrap
from models.networks import define_sr_G
from models.networks.sr_weight_mapping import load_generator_weights
from models.tiling import tiled_upscale, upscale
from util.errors import UserError

logger = logging.getLogger(__name__)


class IrsrnetModel(BaseModel):
    output_visual = "SR"
    target_visual = "HR"
    architecture_options = ("input_nc", "output_nc", "netG", "ngf", "nb", "gc", "scale", "sr_residual")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="sr", netG="crdb", crop_size=128)
        g = parser.add_argument_group("super-resolution generator")
        g.add_argument("--nf", dest="ngf", type=int, default=argparse.SUPPRESS, metavar="NF",
                       help="trunk width (ESRGAN's nf); the same option as --ngf, default 64")
        g.add_argument("--nb", type=int, default=23, help="number of CRDB/RRDB blocks")
        g.add_argument("--gc", type=int, default=32, help="growth channels of the dense blocks")
        g.add_argument("--sr_residual", default="bicubic", choices=["bicubic", "none"],
                       help="new runs: the generator predicts the residual over bicubic upsampling (starts at "
                            "bicubic quality; recorded in its weights, so test.py needs no flag) or the whole image "
                            "(ESRGAN/IRSRGAN's plain form, which imported weights use)")
        g.add_argument("--tile", type=int, default=0,
                       help="inference (validation, test.py): super-resolve in tiles of this many LR pixels "
                            "per side to bound memory; 0 = whole image")
        g.add_argument("--tile_pad", type=int, default=10, help="LR pixels of context around each tile")
        if is_train:
            # PSNR stage of IRSRGAN/ESRGAN: Adam 2e-4, betas (0.9, 0.99). IRSRGAN halves the rate
            # every 50 of 250 epochs; this framework's step policy decays by 0.1, so the default is
            # cosine annealing over the epochs (BasicSR's PSNR schedule). Batch 4 (BasicSR 16,
            # IRSRGAN 32): the full CRDB net needs about 0.45 GB of activations per 128x128 patch.
            parser.set_defaults(lr=2e-4, beta1=0.9, lr_policy="cosine", n_epochs=250, n_epochs_decay=0,
                                batch_size=4)
            g.add_argument("--beta2", type=float, default=0.99, help="Adam beta2")
            g.add_argument("--lambda_L1", type=float, default=1.0, help="weight of the L1 loss (images in [-1, 1])")
            g.add_argument("--lambda_ssim", type=float, default=0.0,
                           help="weight of the 1 - SSIM loss (Gaussian window, the evaluation's SSIM); 0 = off")
            g.add_argument("--ema_decay", type=float, default=0.999,
                           help="EMA of the generator per step: ema = d * ema + (1 - d) * weights; 0 = no EMA")
        else:
            g.add_argument("--test_weights", default="auto", choices=["auto", "ema", "raw"],
                           help="auto: <epoch>_net_G_ema.pth when it exists, else <epoch>_net_G.pth")
            g.add_argument("--pretrained_G", default=None,
                           help="test this generator file instead of the checkpoint folder's: ours, BasicSR "
                                "(params/params_ema), IRSRGAN's release (state_dict) or original ESRGAN keys")
        return parser

    @staticmethod
    def default_channels(opt: argparse.Namespace) -> tuple[int, int]:
        """Infrared in, infrared out."""
        return 1, 1

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        if opt.dataset_mode != "sr":  # the LR/HR batches and --scale come from the SR dataset
            raise UserError(f"--model {opt.model} needs --dataset_mode sr (low/high-resolution images), got "
                            f"--dataset_mode {opt.dataset_mode}; drop that option")
        if opt.tile < 0 or opt.tile_pad < 0:
            raise UserError(f"--tile and --tile_pad must be 0 or more, got {opt.tile} and {opt.tile_pad}")
        self.metric_crop_border = opt.scale  # SR convention: ignore `scale` pixels at each border
        self.loss_names = ["G_L1"]
        if self.is_train and opt.lambda_ssim > 0:
            self.loss_names.append("G_SSIM")
        self.visual_names = ["LR", "SR", "HR"]
        self.model_names = ["G"]
        self.netG = define_sr_G(opt.input_nc, opt.output_nc, opt.ngf, opt.nb, opt.gc, opt.scale, opt.netG,
                                bicubic_residual=opt.sr_residual == "bicubic").to(self.device)
        self.ema: ModelEMA | None = None
        if not self.is_train:
            return
        if not 0.0 <= opt.ema_decay < 1.0:
            raise UserError(f"--ema_decay must be in [0, 1), got {opt.ema_decay}")
        self.initialise_generator()
        if opt.ema_decay > 0:
            self.ema = ModelEMA(self.netG, opt.ema_decay)
            self.netG_ema = self.ema.average
            self.model_names.append("G_ema")
        self.criterionL1 = nn.L1Loss()
        self.criterionSSIM = SSIMLoss().to(self.device)
        self.optimizer_G = self.create_adam(self.netG, (opt.beta1, opt.beta2))
        self.optimizers = [self.optimizer_G]

    def initialise_generator(self) -> None:
        """Starting weights of the generator for a new run (the GAN stage loads the PSNR stage's)."""

    # ----------------------------------------------------------------- steps
    def set_input(self, batch: dict) -> None:
        self.LR = self.to_device(batch["LR"])
        self.HR = self.to_device(batch["HR"]) if "HR" in batch else None
        self.visual_names = ["LR", "SR", "HR"] if self.HR is not None else ["LR", "SR"]
        self.image_paths = batch["HR_paths"]

    def forward(self) -> None:
        self.SR = upscale(self.netG, self.LR)

    def inference_network(self) -> nn.Module:
        """The averaged generator when there is one (what test.py saves too), else the trained one."""
        return self.netG_ema if self.ema is not None else self.netG

    def inference(self) -> None:
        net = self.inference_network()
        if self.opt.tile > 0:
            self.SR = tiled_upscale(net, self.LR, self.opt.tile, self.opt.tile_pad)
        else:
            self.SR = upscale(net, self.LR)

    def reconstruction_loss(self) -> torch.Tensor:
        """The pixel terms of the generator loss, L1 (+ 1 - SSIM), each logged."""
        self.loss_G_L1 = self.criterionL1(self.SR, self.HR) * self.opt.lambda_L1
        if self.opt.lambda_ssim <= 0:
            return self.loss_G_L1
        self.loss_G_SSIM = self.criterionSSIM(self.SR, self.HR) * self.opt.lambda_ssim
        return self.loss_G_L1 + self.loss_G_SSIM

    def step_generator(self, loss: torch.Tensor) -> None:
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward(loss)
        self.step(self.optimizer_G)
        if self.ema is not None:
            self.ema.update(unwrap(self.netG))  # parameter names without DDP/compile prefixes

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
            self.step_generator(self.reconstruction_loss())

    # ----------------------------------------------------------- checkpoints
    def save_checkpoint(self, tag: str, progress: dict[str, int | bool]) -> None:
        if self.ema is not None:  # the EMA's warm-up position, restored on resume
            progress = {**progress, "ema_updates": self.ema.num_updates}
        super().save_checkpoint(tag, progress)

    def load_checkpoint(self, tag: str) -> dict[str, int | bool] | None:
        progress = super().load_checkpoint(tag)
        if self.ema is not None and progress is not None and "ema_updates" in progress:
            self.ema.num_updates = int(progress["ema_updates"])
        return progress

    def load_networks(self, tag: str) -> dict[str, str]:
        """Training resumes every network; testing loads one generator file (see ``--test_weights``)
        of any supported layout into ``netG``."""
        if self.is_train:
            return super().load_networks(tag)
        path = self.test_weights_path(tag)
        if not self.opt.pretrained_G:  # a file of this run: the checks of every other checkpoint load
            name = "G_ema" if path == self.net_path(tag, "G_ema") else "G"
            self.verified_network_file(tag, name, self.training_state(tag))
        layout = load_generator_weights(self.netG, path)
        logger.info("loaded %s (%s layout)", path, layout)
        return {}

    def test_weights_path(self, tag: str) -> Path:
        if self.opt.pretrained_G:
            return Path(self.opt.pretrained_G)
        ema, raw = self.net_path(tag, "G_ema"), self.net_path(tag, "G")
        if self.opt.test_weights == "raw" or (self.opt.test_weights == "auto" and not ema.exists()):
            return raw
        if not ema.exists():
            raise UserError(f"--test_weights ema: {ema} does not exist (the run had no EMA, --ema_decay 0); "
                            f"use --test_weights raw or auto")
        return ema
