"""Relativistic average GAN (RaGAN) losses of ESRGAN/IRSRGAN (Jolicoeur-Martineau, 2018).

The discriminator estimates whether a real image is more realistic than the fakes on
average: ``D_Ra(a, b) = C(a) - mean(C(b))`` with ``C`` the raw logit, scored with binary
cross-entropy on logits. Each loss is the mean of its two halves.

``reference``: how the batch means used as references enter the discriminator's gradient.
``full`` (IRSRGAN, and the exact gradient of the RaGAN objective) lets it flow through them;
``detached`` (BasicSR's ESRGAN) treats them as constants.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from util.errors import UserError

REFERENCE_MODES = ("full", "detached")


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def ragan_generator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator wants fakes judged more realistic than reals: labels swapped.
    ``real_logits`` need no gradient (the reals do not depend on the generator)."""
    real_logits = real_logits.detach()
    return 0.5 * (_bce(real_logits - fake_logits.mean(), 0.0) + _bce(fake_logits - real_logits.mean(), 1.0))


def ragan_discriminator_losses(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, reference: str = "full"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The real and fake halves (each already x0.5) of the discriminator loss.
    ``fake_logits`` must come from generator outputs detached from the generator."""
    if reference not in REFERENCE_MODES:
        raise UserError(f"--ragan_reference must be one of {', '.join(REFERENCE_MODES)}, got {reference!r}")
    fake_reference, real_reference = (fake_logits, real_logits) if reference == "full" else (
        fake_logits.detach(), real_logits.detach())
    real_half = 0.5 * _bce(real_logits - fake_reference.mean(), 1.0)
    fake_half = 0.5 * _bce(fake_logits - real_reference.mean(), 0.0)
    return real_half, fake_half
