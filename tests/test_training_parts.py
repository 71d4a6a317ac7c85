"""GAN objectives, learning-rate schedules and preprocessing modes."""
from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data.paired_transforms import sample_transform
from models import create_model
from models.losses.gan_loss import GANLoss, gradient_penalty
from models.losses.ssim_loss import SSIMLoss
from models.lr_schedulers import get_scheduler, restore_scheduler
from options.train_options import TrainOptions
from util.errors import UserError
from util.metrics import ssim


def test_vanilla_gan_loss_is_bce_on_logits():
    logits = torch.tensor([[-2.0, 0.5], [1.0, 3.0]])
    assert torch.isclose(GANLoss("vanilla")(logits, True), F.binary_cross_entropy_with_logits(logits, torch.ones(2, 2)))
    assert torch.isclose(GANLoss("vanilla")(logits, False),
                         F.binary_cross_entropy_with_logits(logits, torch.zeros(2, 2)))


def test_lsgan_and_wgan_losses():
    prediction = torch.tensor([0.2, 0.9, -0.4])
    assert torch.isclose(GANLoss("lsgan")(prediction, True), ((prediction - 1) ** 2).mean())
    assert torch.isclose(GANLoss("lsgan")(prediction, False), (prediction**2).mean())
    assert torch.isclose(GANLoss("wgangp")(prediction, True), -prediction.mean())
    assert torch.isclose(GANLoss("wgangp")(prediction, False), prediction.mean())
    with pytest.raises(UserError, match="--gan_mode must be one of"):
        GANLoss("hinge")


def test_gradient_penalty_is_zero_for_unit_gradient_critic():
    # D(x) = sum(x) / sqrt(numel) has gradient norm exactly 1 everywhere.
    real, fake = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    critic = lambda x: x.flatten(1).sum(1) / math.sqrt(32)  # noqa: E731
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    steep = lambda x: 3 * x.flatten(1).sum(1) / math.sqrt(32)  # noqa: E731 - gradient norm 3
    assert gradient_penalty(steep, real, fake, weight=10.0).item() == pytest.approx(10.0 * 4.0, rel=1e-5)


@pytest.mark.parametrize("gan_mode", ["vanilla", "lsgan", "wgangp"])
def test_pix2pix_trains_in_every_gan_mode(tmp_path, aligned_root, gan_mode):
    opt = TrainOptions().parse(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path), "--netG",
                                "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop_size", "32",
                                "--gan_mode", gan_mode], save=False)
    model = create_model(opt)
    model.setup()
    before = [p.clone() for p in model.netG.parameters()]
    model.set_input({"A": torch.rand(1, 1, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1,
                     "A_paths": ["a"], "B_paths": ["b"]})
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert all(math.isfinite(value) for value in losses.values())
    assert ("D_GP" in losses) == (gan_mode == "wgangp")
    assert any(not torch.equal(a, b) for a, b in zip(before, model.netG.parameters()))


def schedule(policy: str, epochs: int, **overrides) -> list[float]:
    opt = argparse.Namespace(lr_policy=policy, epoch_count=1, n_epochs=3, n_epochs_decay=3, lr_decay_iters=2)
    vars(opt).update(overrides)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = get_scheduler(optimizer, opt)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(1.0) if policy == "plateau" else scheduler.step()
    return rates


def test_ssim_loss_is_one_minus_the_evaluation_ssim_of_the_saved_images():
    """The loss sees [-1, 1] tensors; the reported SSIM is that of the [0, 1] images they become
    (the evaluation SSIM is checked against scikit-image in test_metrics.py)."""
    torch.manual_seed(0)
    target = torch.rand(2, 1, 40, 36) * 2 - 1
    output = (target + 0.3 * torch.randn_like(target)).clamp(-1, 1)
    reference = 1 - ssim((output + 1) / 2, (target + 1) / 2, data_range=1.0).mean()
    assert SSIMLoss()(output, target).item() == pytest.approx(reference.item(), abs=1e-5)
    assert SSIMLoss()(target, target).item() == pytest.approx(0.0, abs=1e-6)


def test_linear_schedule_is_pix2pix():
    # constant for n_epochs, then lr * (1 - k / (n_epochs_decay + 1))
    assert schedule("linear", 6) == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])


def test_step_cosine_and_plateau_schedules():
    assert schedule("step", 5) == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    assert schedule("cosine", 4) == pytest.approx([1, 0.75, 0.25, 0.0])
    # A metric that never improves: x0.2 after 5 epochs of patience.
    assert schedule("plateau", 8) == pytest.approx([1] * 7 + [0.2])


def test_restored_schedule_follows_the_current_options():
    short = argparse.Namespace(lr_policy="linear", epoch_count=1, n_epochs=1, n_epochs_decay=0, lr_decay_iters=1)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = get_scheduler(optimizer, short)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.0  # the short run decayed to zero
    extended = argparse.Namespace(**{**vars(short), "n_epochs_decay": 3})
    resumed_optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed = get_scheduler(resumed_optimizer, extended)
    restore_scheduler(resumed, scheduler.state_dict())
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(0.75)
    assert resumed.get_last_lr() == pytest.approx([0.75])


def transform_opt(preprocess: str, load_size: int = 48, crop_size: int = 32, no_flip: bool = False):
    return argparse.Namespace(preprocess=preprocess, load_size=load_size, crop_size=crop_size, no_flip=no_flip)


@pytest.mark.parametrize(
    ("preprocess", "expected_hw"),
    [("resize_and_crop", (32, 32)), ("crop", (32, 32)), ("scale_width", (29, 48)),
     ("scale_width_and_crop", (32, 32)), ("none", (36, 60))],
)
def test_preprocess_modes(preprocess, expected_hw):
    image = torch.rand(3, 36, 60)
    transform = sample_transform(transform_opt(preprocess), 36, 60, np.random.default_rng(0))
    assert tuple(transform(image).shape[-2:]) == expected_hw


def test_evaluation_transform_is_centred_and_unflipped():
    image = torch.arange(40 * 40, dtype=torch.float32).reshape(1, 40, 40)
    out = sample_transform(transform_opt("crop"), 40, 40, rng=None)(image)
    assert torch.equal(out, image[:, 4:36, 4:36])


def test_crop_larger_than_image_fails_clearly():
    with pytest.raises(UserError, match=r"img\.png is 20x10 after resizing, smaller than --crop_size 32"):
        sample_transform(transform_opt("crop"), 10, 20, np.random.default_rng(0), "img.png")
