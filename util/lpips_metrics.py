"""LPIPS (Zhang et al., 2018) through the ``lpips`` package, and IRSRGAN's LPIPS-I.

The ``lpips`` package ships only LPIPS's small linear heads; the VGG16 backbone needs
ImageNet weights from one of three sources (``--lpips_weights``):

- ``PATH``: a local copy of torchvision's ``vgg16-397923af.pth`` (or any state dict holding
  its ``features.N.weight/bias`` keys);
- ``torchvision``: torchvision's weights API, which reads ``$TORCH_HOME/hub/checkpoints``
  when the file is cached there and downloads it otherwise;
- ``random``: a seeded, untrained backbone, for tests and smoke runs only.

Nothing is downloaded at import or for ``PATH``/``random``.

Images arrive on the 0..255 scale with 1 or 3 channels (grey is replicated to RGB, the
input LPIPS was trained on). LPIPS-I follows IRSRGAN's ``Lpips-I.py``:

    LPIPS-I = log2(Var(Laplacian(SR))) / LPIPS_VGG(HR, SR)        (higher is better)

with OpenCV's default 3x3 Laplacian (reflect-101 border) and the variance over all pixels
and channels of the 0..255 image. Its numerator grows with any high-frequency energy,
noise included; :func:`lpips_i_ref` is a reference-aware variant that does not reward it.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from util.checkpoint import load_state_dict_file
from util.errors import UserError

logger = logging.getLogger(__name__)

LPIPS_WEIGHT_SOURCES = ("torchvision", "random")  # or a path to a local file
_RANDOM_BACKBONE_SEED = 0
_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))  # cv2.Laplacian with ksize=1


def vgg16_imagenet_state(source: str) -> dict[str, torch.Tensor] | None:
    """torchvision's ImageNet VGG16 state dict from ``source`` (a path or ``torchvision``); None for ``random``."""
    if source == "random":
        return None
    if source == "torchvision":
        import torchvision  # deferred, like lpips: runs without LPIPS need neither

        try:
            return torchvision.models.VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as error:  # offline, proxy, disk full, corrupt cache: all mean the same to the user
            raise UserError(
                f"could not get torchvision's ImageNet VGG16 weights for LPIPS ({type(error).__name__}: {error}). "
                f"Download vgg16-397923af.pth on a machine with internet access and pass --lpips_weights PATH "
                f"(or put it in {Path(torch.hub.get_dir()) / 'checkpoints'}), or leave LPIPS out of --metrics"
            ) from None
    if not Path(source).is_file():
        raise UserError(
            f"--lpips_weights {source}: no such file; pass a path to torchvision's vgg16-397923af.pth, "
            f"'torchvision' or 'random'"
        )
    return load_state_dict_file(source)


class LPIPSMetric:
    """LPIPS-VGG (v0.1 heads) of image batches on the 0..255 scale, one value per image."""

    def __init__(self, weights: str = "torchvision", device: str | torch.device = "cpu") -> None:
        import lpips  # deferred: only runs that ask for LPIPS need the package (and torchvision)

        state = vgg16_imagenet_state(weights)
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            torch.manual_seed(_RANDOM_BACKBONE_SEED)  # "random" gives the same backbone every run
            # lpips builds torchvision's vgg16 with the deprecated `pretrained` argument; pnet_rand=True
            # keeps it from downloading. The linear heads come from the package's own files.
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            self.network = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
        if state is None:
            logger.warning("--lpips_weights random: LPIPS uses an untrained VGG16 backbone; its numbers mean nothing")
        else:
            _load_backbone(self.network.net, state, weights)
        self.network.requires_grad_(False)
        self.network.eval().to(device)
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LPIPS distance of each (pred, target) pair of (N, C, H, W) batches on 0..255, float64 on the CPU."""
        distances = self.network(_to_lpips_input(pred, self.device), _to_lpips_input(target, self.device))
        return distances.flatten().double().cpu()


def _to_lpips_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device=device, dtype=torch.float32) / 127.5 - 1.0
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _load_backbone(backbone: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy torchvision's ``features.N.*`` weights into lpips' VGG16 slices, which keep torchvision's layer indices."""
    layers = {index: layer for part in backbone.children() for index, layer in part.named_children()}
    for index, layer in layers.items():
        for name, parameter in layer.named_parameters():
            key = f"features.{index}.{name}"
            if key not in state or state[key].shape != parameter.shape:
                found = "missing" if key not in state else f"shaped {tuple(state[key].shape)}"
                raise UserError(
                    f"--lpips_weights {source} is not torchvision's VGG16 state dict: {key} is {found}, "
                    f"expected {tuple(parameter.shape)}. Use vgg16-397923af.pth"
                )
            parameter.data.copy_(state[key])


def laplacian_variance(images: torch.Tensor) -> torch.Tensor:
    """Variance of OpenCV's 3x3 Laplacian over all pixels and channels of each image, shape (N,).

    Equals ``cv2.Laplacian(image, cv2.CV_64F).var()`` (reflect-101 border) on the same values.
    """
    return _laplacians(images).var(dim=1, correction=0).cpu()


def lpips_i(sr: torch.Tensor, lpips_distance: torch.Tensor) -> torch.Tensor:
    """IRSRGAN's LPIPS-I: ``log2(Var(Laplacian(SR))) / LPIPS(HR, SR)`` per image (SR on 0..255).

    It rewards any high-frequency energy in SR, noise and artefacts included; flat SR gives
    -inf and SR identical to HR (LPIPS 0) gives +inf.
    """
    return torch.log2(laplacian_variance(sr)) / lpips_distance


def lpips_i_ref(sr: torch.Tensor, hr: torch.Tensor, lpips_distance: torch.Tensor) -> torch.Tensor:
    """Reference-aware LPIPS-I: ``(log2 V_hr - |log2(V_match / V_hr)|) / LPIPS(HR, SR)`` per image (0..255 scale).

    ``V_hr`` is the Laplacian variance of HR and ``V_match = max(Cov(L_sr, L_hr), 0)^2 / V_hr``
    (= ``Var(L_sr) * corr(L_sr, L_hr)^2``) the part of SR's Laplacian energy that lines up
    with HR's. SR = HR gives the seed's numerator ``log2 V_hr``, and so does any SR whose
    Laplacian is a multiple ``a <= 1`` of HR's (``log2 Var(L_sr)``, blur-like loss of detail).
    Detail stronger than HR's (``a > 1``) lowers the numerator as much as the same factor
    of missing detail. Noise, and texture that does not match HR's, leave ``V_match``
    unchanged on average while LPIPS grows, so the score drops. Variances are floored at 1
    (grey level squared), which keeps flat images finite.
    """
    sr_laplacian, hr_laplacian = _laplacians(sr), _laplacians(hr)
    sr_centred = sr_laplacian - sr_laplacian.mean(dim=1, keepdim=True)
    hr_centred = hr_laplacian - hr_laplacian.mean(dim=1, keepdim=True)
    hr_variance = hr_centred.square().mean(dim=1).clamp(min=1.0)
    covariance = (sr_centred * hr_centred).mean(dim=1).clamp(min=0.0)
    log_hr = torch.log2(hr_variance)
    log_matched = torch.log2((covariance.square() / hr_variance).clamp(min=1.0))
    return ((log_hr - (log_matched - log_hr).abs()) / lpips_distance).cpu()


def _laplacians(images: torch.Tensor) -> torch.Tensor:
    """OpenCV's 3x3 Laplacian of each image, flattened over channels and pixels: (N, C*H*W) float64."""
    batch, channels, height, width = images.shape
    planes = images.detach().double().reshape(batch * channels, 1, height, width)
    kernel = torch.tensor(_LAPLACIAN, dtype=torch.float64, device=images.device).view(1, 1, 3, 3)
    # torch's "reflect" padding is OpenCV's default BORDER_REFLECT_101.
    return F.conv2d(F.pad(planes, (1, 1, 1, 1), mode="reflect"), kernel).reshape(batch, -1)
