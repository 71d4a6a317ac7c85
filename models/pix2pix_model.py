"""pix2pix: a conditional GAN for paired image-to-image translation (Isola et al., 2017).

The generator maps the input (``real_A``, after ``--direction`` is applied) to ``fake_B``;
a conditional discriminator sees (input, output) pairs. Objective:
``GAN(G, D) + lambda_L1 * |fake_B - real_B|_1``.
"""
from __future__ import annotations

import argparse

import torch

from models.base_model import BaseModel
from models.losses.gan_loss import GANLoss, gradient_penalty
from models.networks import define_D, define_G
from models.networks.padding import crop_to, pad_to_multiple
from util.errors import UserError


class Pix2PixModel(BaseModel):
    architecture_options = ("direction", "input_nc", "output_nc", "netG", "ngf", "norm", "no_dropout", "netD", "ndf",
                            "n_layers_D")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        if is_train:
            parser.set_defaults(gan_mode="vanilla")
            parser.add_argument("--lambda_L1", type=float, default=100.0, help="weight of the L1 loss")
            parser.add_argument("--lambda_gp", type=float, default=10.0, help="gradient penalty weight (wgangp only)")
            parser.add_argument("--vgg_weights", default=None,
                                help="--netG doubleunet: local torchvision VGG19 state dict (vgg19-dcbb9e9d.pth) for "
                                     "its VGG19 encoder (needs --ngf 64); default: random initialisation")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.is_train else ["G"]
        self.netG = define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout,
                             opt.init_type, opt.init_gain).to(self.device)
        if self.is_train:
            if opt.vgg_weights:
                if opt.netG != "doubleunet":
                    raise UserError(f"--vgg_weights initialises the VGG19 encoder of --netG doubleunet; "
                                    f"--netG {opt.netG} has none: leave --vgg_weights out")
                self.netG.encoder1.load_vgg19_weights(opt.vgg_weights)  # after initialisation, never re-initialised
            # Conditional discriminator: it judges the output together with the input.
            self.netD = define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                 opt.init_type, opt.init_gain).to(self.device)
            self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
            self.criterionL1 = torch.nn.L1Loss()
            if opt.gan_mode == "wgangp":
                self.loss_names.append("D_GP")
            self.optimizer_G = self.create_adam(self.netG, (opt.beta1, 0.999))
            self.optimizer_D = self.create_adam(self.netD, (opt.beta1, 0.999))
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def set_input(self, batch: dict) -> None:
        a_to_b = self.opt.direction == "AtoB"
        self.real_A = self.to_device(batch["A" if a_to_b else "B"])
        self.real_B = self.to_device(batch["B" if a_to_b else "A"])
        self.image_paths = batch["A_paths" if a_to_b else "B_paths"]

    def forward(self) -> None:
        padded, size = pad_to_multiple(self.real_A, self.netG.size_multiple)
        self.fake_B = crop_to(self.netG(padded), size)

    def backward_D(self) -> None:
        fake_pair = torch.cat((self.real_A, self.fake_B), 1).detach()  # no gradient into G here
        real_pair = torch.cat((self.real_A, self.real_B), 1)
        self.loss_D_fake = self.criterionGAN(self.netD(fake_pair), False)
        self.loss_D_real = self.criterionGAN(self.netD(real_pair), True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        if self.opt.gan_mode == "wgangp":
            self.loss_D_GP = gradient_penalty(self.netD, real_pair, fake_pair, self.opt.lambda_gp)
            self.loss_D = self.loss_D + self.loss_D_GP
        self.backward(self.loss_D)

    def backward_G(self) -> None:
        fake_pair = torch.cat((self.real_A, self.fake_B), 1)
        self.loss_G_GAN = self.criterionGAN(self.netD(fake_pair), True)
        self.loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.opt.lambda_L1
        self.loss_G = self.loss_G_GAN + self.loss_G_L1
        self.backward(self.loss_G)

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
            self.set_requires_grad(self.netD, True)
            self.optimizer_D.zero_grad(set_to_none=True)
            self.backward_D()
            self.step(self.optimizer_D)
            self.set_requires_grad(self.netD, False)  # D is fixed while G learns
            self.optimizer_G.zero_grad(set_to_none=True)
            self.backward_G()
            self.step(self.optimizer_G)
