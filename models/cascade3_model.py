"""cascade3: a three-stage cascaded GAN for visible -> infrared translation.

Stage 1 (``netG1``, a pix2pix U-Net) maps the visible image to a coarse infrared image,
supervised by the target (or, as in the paper, a low-pass copy of it: ``--stage1_target
blur``). Stage 2, the improved DoubleU-Net (residual VGG19 encoder, ASPP, Dropout, SE
blocks, edge sharpening), refines it from the coarse image and the visible image (the
paper feeds the coarse image alone: ``--stage2_input coarse``): output 1 is a sigmoid
mask multiplied into network 2, output 2 the detailed image, supervised by L1 and an
edge (gradient) L1. Stage 3, a residual denoiser, gives the final image, supervised by
L1 (+ optional SSIM) and judged by a conditional PatchGAN (weight ``--lambda_GAN``).
The defaults are chosen by measurement on real pairs: docs/v2ir_recipe.md.

``--cascade_train joint`` trains everything end to end with the weighted sum of the
losses; ``progressive`` trains stage 1 alone, then stage 2 on a frozen stage 1, then
stage 3 (with the GAN), for the epochs given by ``--stage_epochs``, and jointly after.
Each stage is its own network (``G1``, ``G2``, ``G3``) with its own optimizer, so
checkpoints are per stage and only the active stages are stepped.
"""
from __future__ import annotations

import argparse
import logging
import math
import warnings
from dataclasses import replace

import torch
import torch.nn as nn

from models.base_model import BaseModel
from models.losses.edge_loss import EDGE_OPERATORS, EdgeL1Loss
from models.losses.gan_loss import GANLoss, gradient_penalty
from models.losses.ssim_loss import SSIMLoss
from models.networks import define_D, define_G, initialise
from models.networks.denoiser import ResidualDenoiser
from models.networks.doubleunet import IMPROVED, DoubleUNet
from models.networks.filters import filter_channels, gaussian_kernel
from models.networks.norm import get_norm_layer
from models.networks.padding import crop_to, pad_to_multiple
from util.errors import UserError

logger = logging.getLogger(__name__)

STAGES = (1, 2, 3)
# --stage2_encoder: the DoubleU-Net encoder settings of each choice.
STAGE2_ENCODERS = {"resvgg19": {"residual_encoder": True, "encoder_norm": True},
                   "vgg19": {"residual_encoder": False, "encoder_norm": False}}
PHASES = ("stage1", "stage2", "stage3", "joint")


def parse_stage_epochs(text: str) -> tuple[int, int, int]:
    """``"a,b,c"`` -> epochs of stage 1 alone, stage 2 alone and stage 3 alone."""
    try:
        epochs = tuple(int(part) for part in text.split(","))
    except ValueError:
        epochs = ()
    if len(epochs) != 3 or min(epochs) < 0:
        raise UserError(f"--stage_epochs must be three non-negative integers such as 1,1,1, got {text!r}")
    return epochs  # type: ignore[return-value]


def progressive_phase(epoch: int, stage_epochs: tuple[int, int, int]) -> str:
    """The phase of a 1-based ``epoch``: each stage alone for its epochs, then joint."""
    end = 0
    for phase, epochs in zip(PHASES, stage_epochs):
        end += epochs
        if epoch <= end:
            return phase
    return "joint"


def stage2_input(stage1: torch.Tensor, image: torch.Tensor, mode: str) -> torch.Tensor:
    """What stage 2 sees (``--stage2_input``): the stage-1 image, or it and the visible input."""
    return stage1 if mode == "coarse" else torch.cat([stage1, image], 1)


class CascadeGenerator(nn.Module):
    """The three stages as one network, from the (padded) input to the final image: the graph
    scripts/export.py exports. Training keeps the stages apart (per-stage gradients and visuals)."""

    def __init__(self, stage1: nn.Module, stage2: nn.Module, stage3: nn.Module, stage2_mode: str) -> None:
        super().__init__()
        self.stage1, self.stage2, self.stage3, self.stage2_mode = stage1, stage2, stage3, stage2_mode

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.stage3(self.stage2(stage2_input(self.stage1(image), image, self.stage2_mode)))


class Cascade3Model(BaseModel):
    architecture_options = ("direction", "input_nc", "output_nc", "netG1", "ngf", "norm", "no_dropout",
                            "stage2_input", "stage2_encoder", "stage2_width", "aspp_dropout", "denoise_depth",
                            "denoise_features", "denoise_scale", "netD", "ndf", "n_layers_D")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(norm="batch", dataset_mode="aligned")
        g = parser.add_argument_group("cascade3 architecture (saved with the run: test.py reads it)")
        g.add_argument("--netG1", default="unet_256", help="stage-1 generator (any --netG architecture)")
        g.add_argument("--stage2_input", default="coarse+visible", choices=["coarse", "coarse+visible"],
                       help="stage-2 input: the stage-1 image concatenated with the visible input (the visible "
                            "detail reaches stages 2-3; docs/v2ir_recipe.md), or the stage-1 image alone (the "
                            "paper's wiring)")
        g.add_argument("--stage2_encoder", default="resvgg19", choices=list(STAGE2_ENCODERS),
                       help="stage-2 encoder: resvgg19 (VGG19 with a shortcut around each group and normalisation, "
                            "the cascade's design) or vgg19 (VGG19's own layers, so --vgg_weights ImageNet weights "
                            "compute what they computed in VGG19)")
        g.add_argument("--stage2_width", type=float, default=1.0,
                       help="channel multiplier of the stage-2 DoubleU-Net (1.0: VGG19's 64..512)")
        g.add_argument("--aspp_dropout", type=float, default=0.6, help="dropout after each stage-2 ASPP")
        g.add_argument("--denoise_depth", type=int, default=8, help="stage-3 denoiser convolution layers")
        g.add_argument("--denoise_features", type=int, default=32, help="stage-3 denoiser channels")
        g.add_argument("--denoise_scale", type=float, default=1.0,
                       help="scale of the noise the denoiser subtracts (before the tanh)")
        if is_train:
            parser.set_defaults(gan_mode="vanilla")
            g = parser.add_argument_group("cascade3 training")
            g.add_argument("--cascade_train", default="joint", choices=["joint", "progressive"],
                           help="joint: all stages end to end; progressive: stage by stage (--stage_epochs), "
                                "then joint")
            g.add_argument("--stage_epochs", default="1,1,1",
                           help="progressive: epochs of stage 1 alone, stage 2 alone (stage 1 frozen) and stage 3 "
                                "alone (stages 1-2 frozen); joint training after them")
            g.add_argument("--stage1_target", default="full", choices=["blur", "full"],
                           help="stage-1 supervision: the target itself, or its Gaussian-blurred copy (structure "
                                "only, the paper's choice)")
            g.add_argument("--stage1_sigma", type=float, default=2.0, help="Gaussian sigma (pixels) of the blur target")
            g.add_argument("--lambda_stage1", type=float, default=100.0, help="weight of the stage-1 L1 loss")
            g.add_argument("--lambda_stage2", type=float, default=100.0, help="weight of the stage-2 L1 loss")
            g.add_argument("--lambda_edge", type=float, default=25.0, help="weight of the stage-2 edge L1 loss")
            g.add_argument("--edge_operator", default="sobel", choices=list(EDGE_OPERATORS),
                           help="edge maps compared by the edge loss")
            g.add_argument("--lambda_L1", type=float, default=100.0, help="weight of the final-output L1 loss")
            g.add_argument("--lambda_GAN", type=float, default=0.1,
                           help="weight of the adversarial loss on the final output (pix2pix: 1; at 1 the GAN makes "
                                "the small stage-3 network paint hot spots, docs/v2ir_recipe.md)")
            g.add_argument("--lambda_ssim", type=float, default=0.0, help="weight of the final-output 1-SSIM loss")
            g.add_argument("--lambda_gp", type=float, default=10.0, help="gradient penalty weight (wgangp only)")
            g.add_argument("--vgg_weights", default=None,
                           help="local torchvision VGG19 state dict (e.g. vgg19-dcbb9e9d.pth) to initialise the "
                                "stage-2 encoder with ImageNet weights; default: random initialisation")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.visual_names = ["real_A", "stage1", "mask", "stage2", "fake_B", "real_B"]
        self.model_names = ["G1", "G2", "G3", "D"] if self.is_train else ["G1", "G2", "G3"]
        if opt.stage2_width <= 0 or opt.denoise_depth < 2 or opt.denoise_features < 1:
            raise UserError("--stage2_width must be positive, --denoise_depth at least 2 and --denoise_features "
                            "at least 1")
        norm_layer = get_norm_layer(opt.norm)
        self.netG1 = define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG1, opt.norm, not opt.no_dropout,
                              opt.init_type, opt.init_gain).to(self.device)
        stage2_channels = opt.output_nc + (opt.input_nc if opt.stage2_input == "coarse+visible" else 0)
        stage2_config = replace(IMPROVED, width=opt.stage2_width, aspp_dropout=opt.aspp_dropout,
                                **STAGE2_ENCODERS[opt.stage2_encoder])
        self.netG2 = initialise(DoubleUNet(stage2_channels, opt.output_nc, norm_layer, stage2_config),
                                opt.init_type, opt.init_gain).to(self.device)
        self.netG3 = initialise(ResidualDenoiser(opt.output_nc, opt.denoise_features, opt.denoise_depth, norm_layer,
                                                 opt.denoise_scale), opt.init_type, opt.init_gain).to(self.device)
        # One padding for the whole cascade: every stage then sees the same pixel grid.
        self.size_multiple = math.lcm(*(net.size_multiple for net in (self.netG1, self.netG2, self.netG3)))
        self.phase, self.announced_phase = "joint", ""
        if not self.is_train:
            return

        self.stage_epochs = parse_stage_epochs(opt.stage_epochs)
        if opt.vgg_weights:
            self.netG2.encoder1.load_vgg19_weights(opt.vgg_weights)  # after initialisation, never re-initialised
            logger.info("stage-2 encoder initialised from %s", opt.vgg_weights)
            if opt.stage2_encoder == "resvgg19":
                logger.warning("--vgg_weights with --stage2_encoder resvgg19: the shortcuts and normalisation change "
                               "what the ImageNet filters compute; --stage2_encoder vgg19 keeps VGG19's layers")
        self.netD = define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                             opt.init_type, opt.init_gain).to(self.device)
        self.loss_names = ["G1_L1", "G2_L1", "G2_edge", "G3_L1", "G_GAN", "D_real", "D_fake"]
        if opt.lambda_ssim > 0:
            self.loss_names.insert(4, "G3_SSIM")
        if opt.gan_mode == "wgangp":
            self.loss_names.append("D_GP")
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        self.criterionL1 = nn.L1Loss()
        self.criterionEdge = EdgeL1Loss(opt.edge_operator).to(self.device)
        self.criterionSSIM = SSIMLoss().to(self.device)
        self.register_stage1_target(opt)
        # One optimizer per network: progressive training steps only the active ones, and
        # the saved optimizer states always line up with the networks.
        self.stage_optimizers = {
            stage: self.create_adam(net, (opt.beta1, 0.999))
            for stage, net in zip(STAGES, (self.netG1, self.netG2, self.netG3))
        }
        self.optimizer_D = self.create_adam(self.netD, (opt.beta1, 0.999))
        self.optimizers = [*self.stage_optimizers.values(), self.optimizer_D]

    def register_stage1_target(self, opt: argparse.Namespace) -> None:
        if opt.stage1_target == "blur":
            if opt.stage1_sigma <= 0:
                raise UserError(f"--stage1_sigma must be positive, got {opt.stage1_sigma}")
            self.stage1_kernel: torch.Tensor | None = gaussian_kernel(opt.stage1_sigma).to(self.device)
        else:
            self.stage1_kernel = None

    # ------------------------------------------------------------- schedule
    def begin_epoch(self, epoch: int) -> None:
        phase = "joint" if self.opt.cascade_train == "joint" else progressive_phase(epoch, self.stage_epochs)
        if phase != self.announced_phase:
            logger.info("epoch %d: training %s", epoch, "all stages jointly" if phase == "joint" else f"{phase} alone")
        self.phase = self.announced_phase = phase

    def active_stages(self) -> tuple[int, ...]:
        return STAGES if self.phase == "joint" else (PHASES.index(self.phase) + 1,)

    def update_learning_rate(self, metric: float | None = None) -> None:
        # Schedules are functions of the epoch; progressive training steps the schedule of a
        # stage that has not been trained yet, which torch warns about for no reason here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            super().update_learning_rate(metric)

    # -------------------------------------------------------------- forward
    def set_input(self, batch: dict) -> None:
        a_to_b = self.opt.direction == "AtoB"
        self.real_A = self.to_device(batch["A" if a_to_b else "B"])
        self.real_B = self.to_device(batch["B" if a_to_b else "A"])
        self.image_paths = batch["A_paths" if a_to_b else "B_paths"]

    def forward(self, trainable: tuple[int, ...] = STAGES) -> None:
        """Run the three stages. A stage builds a graph only between the first and the last
        ``trainable`` stage: frozen stages before them and unused ones after them run
        without gradients (the later ones still give the visuals)."""
        padded, size = pad_to_multiple(self.real_A, self.size_multiple)

        def graph(stage: int) -> torch.autograd.grad_mode.set_grad_enabled:
            return torch.set_grad_enabled(torch.is_grad_enabled() and min(trainable) <= stage <= max(trainable))

        with graph(1):
            stage1 = self.netG1(padded)
        with graph(2):
            stage2, mask = self.netG2(stage2_input(stage1, padded, self.opt.stage2_input), with_mask=True)
        with graph(3):
            final = self.netG3(stage2)
        self.stage1, self.stage2, self.fake_B = (crop_to(image, size) for image in (stage1, stage2, final))
        self.mask = crop_to(mask, size) * 2 - 1  # shown as an image in [-1, 1]

    # ------------------------------------------------------------- training
    def stage1_target(self) -> torch.Tensor:
        if self.stage1_kernel is None:
            return self.real_B
        return filter_channels(self.real_B, self.stage1_kernel)

    def backward_D(self) -> None:
        fake_pair = torch.cat((self.real_A, self.fake_B), 1).detach()
        real_pair = torch.cat((self.real_A, self.real_B), 1)
        self.loss_D_fake = self.criterionGAN(self.netD(fake_pair), False)
        self.loss_D_real = self.criterionGAN(self.netD(real_pair), True)
        loss = (self.loss_D_fake + self.loss_D_real) * 0.5
        if self.opt.gan_mode == "wgangp":
            self.loss_D_GP = gradient_penalty(self.netD, real_pair, fake_pair, self.opt.lambda_gp)
            loss = loss + self.loss_D_GP
        self.backward(loss)

    def backward_G(self, active: tuple[int, ...]) -> None:
        opt, zero = self.opt, self.real_B.new_zeros(())
        self.loss_G1_L1 = self.loss_G2_L1 = self.loss_G2_edge = self.loss_G3_L1 = self.loss_G3_SSIM = zero
        self.loss_G_GAN = zero
        if 1 in active:
            self.loss_G1_L1 = self.criterionL1(self.stage1, self.stage1_target()) * opt.lambda_stage1
        if 2 in active:
            self.loss_G2_L1 = self.criterionL1(self.stage2, self.real_B) * opt.lambda_stage2
            self.loss_G2_edge = self.criterionEdge(self.stage2, self.real_B) * opt.lambda_edge
        if 3 in active:
            self.loss_G3_L1 = self.criterionL1(self.fake_B, self.real_B) * opt.lambda_L1
            if opt.lambda_ssim > 0:
                self.loss_G3_SSIM = self.criterionSSIM(self.fake_B, self.real_B) * opt.lambda_ssim
            self.loss_G_GAN = self.criterionGAN(self.netD(torch.cat((self.real_A, self.fake_B), 1)),
                                                True) * opt.lambda_GAN
        total = (self.loss_G1_L1 + self.loss_G2_L1 + self.loss_G2_edge + self.loss_G3_L1 + self.loss_G3_SSIM
                 + self.loss_G_GAN)
        self.backward(total)

    def optimize_parameters(self) -> None:
        active = self.active_stages()
        with self.autocast():
            self.forward(trainable=active)
            zero = self.real_B.new_zeros(())
            self.loss_D_real = self.loss_D_fake = self.loss_D_GP = zero
            if 3 in active:  # the discriminator judges the final output, trained whenever that is
                self.set_requires_grad(self.netD, True)
                self.optimizer_D.zero_grad(set_to_none=True)
                self.backward_D()
                self.step(self.optimizer_D)
            self.set_requires_grad(self.netD, False)
            optimizers = [self.stage_optimizers[stage] for stage in active]
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            self.backward_G(active)
            self.step(*optimizers)
