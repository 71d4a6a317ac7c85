"""Adversarial objectives: vanilla (BCE on logits), least squares, and WGAN-GP."""
from __future__ import annotations

import torch
import torch.nn as nn

from util.errors import UserError

GAN_MODES = ("vanilla", "lsgan", "wgangp")


class GANLoss(nn.Module):
    """Loss of a discriminator's raw output against the real or fake label.

    The discriminators end without a sigmoid; ``vanilla`` uses ``BCEWithLogitsLoss`` for
    numerical stability.
    """

    def __init__(self, gan_mode: str, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise UserError(f"--gan_mode must be one of {', '.join(GAN_MODES)}, got {gan_mode!r}")
        self.gan_mode = gan_mode
        self.register_buffer("real_label", torch.tensor(real_label))
        self.register_buffer("fake_label", torch.tensor(fake_label))
        self.criterion = {"vanilla": nn.BCEWithLogitsLoss(), "lsgan": nn.MSELoss()}.get(gan_mode)

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        if self.gan_mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        target = (self.real_label if target_is_real else self.fake_label).expand_as(prediction)
        return self.criterion(prediction, target.to(prediction.dtype))


def gradient_penalty(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * (||grad D(x)||_2 - 1)^2`` at random interpolates of real
    and fake samples (Gulrajani et al., 2017)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = discriminator(interpolates)
    gradients = torch.autograd.grad(scores, interpolates, grad_outputs=torch.ones_like(scores), create_graph=True)[0]
    return weight * ((gradients.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
