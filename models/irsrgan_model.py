"""IRSRGAN: the GAN stage of infrared super-resolution, initialised from an IRSRNet checkpoint.

Generator loss (ESRGAN's weights): ``lambda_L1 * L1 + lambda_perceptual * VGG19(conv5_4, before
ReLU) + lambda_gan * RaGAN`` (+ ``lambda_ssim * (1 - SSIM)`` when set); the discriminator
(``--netD vgg``, any patch of at least 32x32) is trained with the relativistic average loss.
Generator and discriminator see 1-channel images; only the VGG19 input is copied to three channels.

The L1 weight refers to images in [-1, 1], where L1 is twice its value on IRSRGAN's [0, 1]
images: the default 0.005 is IRSRGAN's 0.01.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from models.irsrnet_model import IrsrnetModel
from models.losses.perceptual_loss import PERCEPTUAL_VGG_CHOICES, PerceptualLoss
from models.losses.relativistic_gan_loss import REFERENCE_MODES, ragan_discriminator_losses, ragan_generator_loss
from models.networks import define_D
from models.networks.sr_weight_mapping import load_generator_weights
from models.networks.vgg_discriminator import VGGStyleDiscriminator
from util.errors import UserError

logger = logging.getLogger(__name__)


class IrsrganModel(IrsrnetModel):
    architecture_options = (*IrsrnetModel.architecture_options, "netD", "ndf", "n_layers_D", "norm")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser = IrsrnetModel.modify_commandline_options(parser, is_train)
        if not is_train:
            return parser
        # IRSRGAN's GAN stage: 150 epochs at a constant rate (its MultiStepLR has gamma 1).
        # Its rate is 3e-4 at batch 32; ESRGAN/BasicSR use 1e-4, the default here.
        parser.set_defaults(netD="vgg", lr=1e-4, lr_policy="linear", n_epochs=150, n_epochs_decay=0,
                            lambda_L1=0.005)
        g = parser.add_argument_group("GAN stage")
        g.add_argument("--lambda_perceptual", type=float, default=1.0,
                       help="weight of the VGG19 conv5_4 feature loss (0: no VGG19 needed)")
        g.add_argument("--lambda_gan", type=float, default=0.005, help="weight of the relativistic GAN loss")
        g.add_argument("--vgg_weights", default=None,
                       help="local torchvision VGG19 state dict file (e.g. vgg19-dcbb9e9d.pth) for the perceptual "
                            "loss; default: the --perceptual_vgg weights")
        g.add_argument("--perceptual_vgg", default="torchvision", choices=PERCEPTUAL_VGG_CHOICES,
                       help="VGG19 of the perceptual loss without --vgg_weights: torchvision's ImageNet weights "
                            "(its cache, or a download when online) or random (untrained features: tests only)")
        g.add_argument("--psnr_checkpoint", default="auto",
                       help="IRSRNet generator to start from; auto = <checkpoints_dir>/<dataroot name>_irsrnet/"
                            "latest_net_G.pth; none = random weights. Ignored by --continue_train")
        g.add_argument("--ragan_reference", default="full", choices=REFERENCE_MODES,
                       help="discriminator loss: gradient through the batch-mean references (full, IRSRGAN) "
                            "or not (detached, BasicSR)")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        if not self.is_train:
            return
        # With a norm layer, the last stage (crop / 32 pixels per side) needs more than one value
        # per channel even for a batch of one image.
        smallest = VGGStyleDiscriminator.min_size * (1 if opt.norm == "none" else 2)
        if opt.netD == "vgg" and opt.crop_size < smallest:
            raise UserError(f"--crop_size {opt.crop_size} is too small for --netD vgg with --norm {opt.norm}: "
                            f"use at least {smallest}")
        self.loss_names = [*self.loss_names, "G_GAN", "D_real", "D_fake"]  # the pixel terms first
        self.model_names.append("D")
        self.netD = define_D(opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm, opt.init_type,
                             opt.init_gain).to(self.device)
        self.criterion_perceptual = None
        if opt.lambda_perceptual > 0:
            if opt.vgg_weights in PERCEPTUAL_VGG_CHOICES:  # the option's old second meaning, still accepted
                logger.warning("--vgg_weights %s is deprecated: --vgg_weights names a file; use --perceptual_vgg "
                               "%s", opt.vgg_weights, opt.vgg_weights)
            self.criterion_perceptual = PerceptualLoss(opt.vgg_weights or opt.perceptual_vgg).to(self.device)
            self.loss_names.insert(self.loss_names.index("G_GAN"), "G_VGG")
        self.optimizer_D = self.create_adam(self.netD, (opt.beta1, opt.beta2))
        self.optimizers.append(self.optimizer_D)

    def psnr_checkpoint_path(self) -> Path | None:
        choice = self.opt.psnr_checkpoint
        if choice == "none":
            return None
        if choice != "auto":
            return Path(choice)
        return Path(self.opt.checkpoints_dir) / f"{Path(self.opt.dataroot).resolve().name}_irsrnet" / "latest_net_G.pth"

    def initialise_generator(self) -> None:
        if self.opt.continue_train:
            return  # the resumed checkpoint holds the generator
        path = self.psnr_checkpoint_path()
        if path is None:
            logger.warning("--psnr_checkpoint none: the GAN stage starts from random weights")
            return
        if not path.is_file():
            raise UserError(f"--psnr_checkpoint {self.opt.psnr_checkpoint}: {path} does not exist. Train the PSNR "
                            f"stage first (python train.py --model irsrnet with the same --dataroot), pass "
                            f"--psnr_checkpoint PATH to its latest_net_G.pth, or --psnr_checkpoint none to start "
                            f"from random weights")
        layout = load_generator_weights(self.netG, path)
        logger.info("generator initialised from %s (%s layout)", path, layout)

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
            # Generator step, the discriminator fixed.
            self.set_requires_grad(self.netD, False)
            loss = self.reconstruction_loss()
            if self.criterion_perceptual is not None:
                self.loss_G_VGG = self.criterion_perceptual(self.SR, self.HR) * self.opt.lambda_perceptual
                loss = loss + self.loss_G_VGG
            self.loss_G_GAN = ragan_generator_loss(self.netD(self.HR), self.netD(self.SR)) * self.opt.lambda_gan
            self.step_generator(loss + self.loss_G_GAN)
            # Discriminator step on the same batch.
            self.set_requires_grad(self.netD, True)
            self.optimizer_D.zero_grad(set_to_none=True)
            self.loss_D_real, self.loss_D_fake = ragan_discriminator_losses(
                self.netD(self.HR), self.netD(self.SR.detach()), self.opt.ragan_reference)
            self.backward(self.loss_D_real + self.loss_D_fake)
            self.step(self.optimizer_D)
