"""VGG19 perceptual loss of ESRGAN/IRSRGAN: L1 between conv5_4 feature maps, before the ReLU.

Images arrive in the model range [-1, 1] with 1 or 3 channels; they are mapped to [0, 1],
grey images are copied to RGB (what the ImageNet network expects), and normalised with
ImageNet's mean and standard deviation, exactly as IRSRGAN feeds its [0, 1] RGB tensors.

Weights: a local file (``--vgg_weights``: torchvision's ``vgg19-dcbb9e9d.pth`` or any state dict
with its ``features.N`` keys), else ``--perceptual_vgg``: ``torchvision`` (ImageNet ``IMAGENET1K_V1``
through torchvision's weights API: read from ``$TORCH_HOME/hub/checkpoints`` when cached, downloaded
when online) or ``random`` (untrained features; for tests and smoke runs only).
"""
from __future__ import annotations

import logging
import re

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from util.checkpoint import load_state_dict_file
from util.errors import UserError

logger = logging.getLogger(__name__)

# torchvision's vgg19 "E" configuration: conv widths, "M" = 2x2 max-pool.
_VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
CONV5_4 = 34  # index of conv5_4 in torchvision's vgg19().features
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PERCEPTUAL_VGG_CHOICES = ("torchvision", "random")
_FEATURE_KEY = re.compile(r"^(?:features\.)?(\d+)\.(weight|bias)$")


def vgg19_features(last_index: int = CONV5_4) -> nn.Sequential:
    """``torchvision.models.vgg19().features[: last_index + 1]`` with the same indices (so its
    state-dict keys match torchvision's), without building the 120 M-parameter classifier."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers[: last_index + 1])


def imagenet_vgg19_state(source: str) -> dict[str, torch.Tensor] | None:
    """The VGG19 state dict of ``source``: a file, ``torchvision`` or ``random`` (None)."""
    if source == "random":
        logger.warning("--perceptual_vgg random: the perceptual loss uses untrained VGG19 features (tests only)")
        return None
    if source == "torchvision":
        try:
            return torchvision.models.VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as error:  # offline, proxy, disk full, corrupt cache: all mean the same to the user
            raise UserError(
                f"could not get torchvision's ImageNet VGG19 weights ({type(error).__name__}: {error}); the "
                f"perceptual loss needs them. Download vgg19-dcbb9e9d.pth on a machine with internet access and "
                f"pass --vgg_weights PATH (or put it in $TORCH_HOME/hub/checkpoints/)") from None
    return load_state_dict_file(source)


class PerceptualLoss(nn.Module):
    """``mean |phi(output) - phi(target)|`` with ``phi`` = VGG19 up to conv5_4 (pre-activation).

    The network is frozen; the target's features carry no gradient.
    """

    def __init__(self, weights: str = "torchvision", last_index: int = CONV5_4) -> None:
        super().__init__()
        self.features = vgg19_features(last_index)
        state = imagenet_vgg19_state(weights)
        if state is not None:
            self._load(state, weights)
        for parameter in self.features.parameters():
            parameter.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval()

    def _load(self, state: dict[str, torch.Tensor], source: str) -> None:
        wanted = self.features.state_dict()
        found = {}
        for key, value in state.items():
            match = _FEATURE_KEY.match(key)
            if match and f"{match[1]}.{match[2]}" in wanted:
                found[f"{match[1]}.{match[2]}"] = value
        missing = [f"features.{key}" for key in sorted(set(wanted) - set(found), key=lambda k: int(k.split(".")[0]))]
        wrong = [f"features.{key}" for key in found if found[key].shape != wanted[key].shape]
        if missing or wrong:
            problem = f"missing {', '.join(missing[:3])}" if missing else f"wrong shapes: {', '.join(wrong[:3])}"
            raise UserError(f"--vgg_weights {source} is not a VGG19 state dict: {problem}; "
                            f"use torchvision's vgg19-dcbb9e9d.pth")
        self.features.load_state_dict(found)

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)  # always frozen

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """Features of images in [-1, 1] (1 or 3 channels)."""
        unit = (images + 1.0) / 2.0
        if unit.shape[1] == 1:
            unit = unit.expand(-1, 3, -1, -1)
        return self.features((unit - self.mean) / self.std)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.extract(target)
        return F.l1_loss(self.extract(output), target_features)
