"""LPIPS wrapper (weight sources, no downloads), LPIPS-I as IRSRGAN defines it, and the reference-aware variant."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import urllib.error

import cv2
import numpy as np
import pytest
import torch
import torchvision
from scipy.ndimage import gaussian_filter
from skimage import data as skdata

from conftest import REPO_ROOT
from util.errors import UserError
from util.lpips_metrics import LPIPSMetric, laplacian_variance, lpips_i, lpips_i_ref


@pytest.fixture(scope="module")
def random_lpips() -> LPIPSMetric:
    return LPIPSMetric("random")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path):
    """Any attempt to fetch weights fails the test; the hub cache points at an empty folder."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def camera_crop(size: int = 128) -> np.ndarray:
    return skdata.camera().astype(np.float64)[100:100 + size, 150:150 + size]


def as_batch(*images: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) arrays -> (N, C, H, W) float64."""
    return torch.stack([torch.from_numpy(np.atleast_3d(image).transpose(2, 0, 1).copy()) for image in images])


@pytest.mark.parametrize("channels, height, width", [(1, 17, 23), (3, 32, 20)])
def test_laplacian_variance_equals_opencv(channels, height, width):
    rng = np.random.default_rng(channels)
    images = [rng.integers(0, 256, (height, width, channels), dtype=np.uint8) for _ in range(2)]
    # IRSRGAN's Lpips-I.py: cv2.Laplacian(cv2.imread(path), cv2.CV_64F).var() on the uint8 image.
    expected = [cv2.Laplacian(image, cv2.CV_64F).var() for image in images]
    ours = laplacian_variance(as_batch(*(image.astype(np.float64) for image in images)))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)


def test_lpips_i_is_log2_laplacian_variance_over_lpips_on_known_inputs():
    # A 0/255 checkerboard: every pixel's four neighbours (reflected ones included) have the other
    # value, so the Laplacian is +-1020 everywhere, with variance 1020^2.
    checkerboard = (np.indices((8, 8)).sum(axis=0) % 2) * 255.0
    flat = np.full((8, 8), 77.0)
    values = lpips_i(as_batch(checkerboard, flat), torch.tensor([0.25, 0.5], dtype=torch.float64))
    assert values[0].item() == pytest.approx(math.log2(1020.0**2) / 0.25, rel=1e-12)
    assert values[1].item() == -math.inf  # a flat SR image: log2(0)


def test_lpips_i_of_an_evaluated_pair_matches_the_formula(random_lpips):
    hr = camera_crop(64)
    sr = np.round(gaussian_filter(hr, 1.0))
    distance = random_lpips(as_batch(sr), as_batch(hr))
    expected = math.log2(cv2.Laplacian(sr.astype(np.uint8), cv2.CV_64F).var()) / distance.item()
    assert lpips_i(as_batch(sr), distance).item() == pytest.approx(expected, rel=1e-12)


def test_lpips_random_backbone_is_repeatable_and_zero_for_identical_images(random_lpips):
    rng = np.random.default_rng(0)
    pred, target = (torch.from_numpy(rng.uniform(0, 255, (3, 1, 32, 32))) for _ in range(2))
    distances = random_lpips(pred, target)
    assert distances.shape == (3,) and distances.dtype == torch.float64 and (distances > 0).all()
    torch.testing.assert_close(LPIPSMetric("random")(pred, target), distances)
    assert torch.allclose(random_lpips(target, target), torch.zeros(3, dtype=torch.float64), atol=1e-7)
    # Grey images are compared as RGB with three equal channels.
    torch.testing.assert_close(random_lpips(pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)), distances)


def test_lpips_matches_the_lpips_package_on_minus_one_to_one_inputs(random_lpips):
    rng = np.random.default_rng(1)
    pred, target = (torch.from_numpy(rng.integers(0, 256, (2, 3, 32, 32)).astype(np.float64)) for _ in range(2))
    expected = random_lpips.network(pred.float() / 127.5 - 1, target.float() / 127.5 - 1).flatten()
    torch.testing.assert_close(random_lpips(pred, target), expected.double())


def features_state_dict(metric: LPIPSMetric) -> dict[str, torch.Tensor]:
    """A torchvision-style VGG16 ``features.N.*`` state dict with new random values (lpips' backbone
    slices keep torchvision's layer indices)."""
    generator = torch.Generator().manual_seed(5)
    return {f"features.{index}.{name}": torch.randn(parameter.shape, generator=generator) * 0.05
            for part in metric.network.net.children() for index, layer in part.named_children()
            for name, parameter in layer.named_parameters()}


def test_local_weights_file_is_loaded_into_the_backbone(tmp_path, random_lpips):
    state = features_state_dict(random_lpips)
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    metric = LPIPSMetric(str(path))
    torch.testing.assert_close(metric.network.net.slice1[0].weight, state["features.0.weight"])
    torch.testing.assert_close(getattr(metric.network.net.slice5, "28").bias, state["features.28.bias"])
    pred, target = (torch.rand(1, 1, 32, 32, dtype=torch.float64) * 255 for _ in range(2))
    assert not torch.allclose(metric(pred, target), random_lpips(pred, target))
    assert not list((tmp_path / "torch_home").rglob("*"))  # nothing was cached or downloaded


def test_bad_weight_sources_raise_clear_user_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="no such file"):
        LPIPSMetric(str(tmp_path / "missing.pth"))
    wrong = tmp_path / "vgg19.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, wrong)
    with pytest.raises(UserError, match=r"not torchvision's VGG16 state dict: features.0.weight is shaped"):
        LPIPSMetric(str(wrong))

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.models.VGG16_Weights, "get_state_dict", offline)
    with pytest.raises(UserError, match=r"could not get torchvision's ImageNet VGG16 weights.*--lpips_weights PATH"):
        LPIPSMetric("torchvision")


def test_import_and_random_backbone_touch_no_network_and_no_cache(tmp_path):
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('network access')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import lpips, util.lpips_metrics, util.evaluation\n"
        "util.lpips_metrics.LPIPSMetric('random')\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home"), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert not (tmp_path / "torch_home").exists()


def test_reference_variant_equals_the_seed_numerator_for_weakened_detail_and_is_symmetric():
    hr = camera_crop(64)
    mean = hr.mean()
    weakened, strengthened = mean + 0.5 * (hr - mean), mean + 2.0 * (hr - mean)
    unit = torch.ones(1, dtype=torch.float64)  # LPIPS = 1 isolates the numerators
    hr_batch = as_batch(hr)
    seed_numerator = lpips_i(as_batch(weakened), unit)
    assert lpips_i_ref(as_batch(weakened), hr_batch, unit).item() == pytest.approx(seed_numerator.item(), rel=1e-9)
    # Twice HR's detail scores like half of it, while the seed rewards it.
    assert lpips_i_ref(as_batch(strengthened), hr_batch, unit).item() == pytest.approx(seed_numerator.item(), rel=1e-9)
    assert lpips_i(as_batch(strengthened), unit) > seed_numerator
    assert lpips_i_ref(hr_batch, hr_batch, unit).item() == pytest.approx(math.log2(laplacian_variance(hr_batch).item()))


@pytest.mark.parametrize("blur", [0.0, 1.0], ids=["sharp", "blurred"])
def test_reference_variant_does_not_improve_when_noise_is_added(random_lpips, blur):
    hr = camera_crop(128)
    if blur:
        sr = np.round(gaussian_filter(hr, blur))
    else:  # nearly HR: a little noise of its own
        sr = np.clip(np.round(hr + np.random.default_rng(9).normal(0, 2, hr.shape)), 0, 255)
    rng = np.random.default_rng(0)
    noisy = [np.clip(np.round(sr + rng.normal(0.0, sigma, sr.shape)), 0, 255) for sigma in (2, 5, 10, 20)]
    candidates = as_batch(sr, *noisy)
    references = as_batch(*[hr] * len(candidates))
    distance = random_lpips(candidates, references)
    seed, variant = lpips_i(candidates, distance), lpips_i_ref(candidates, references, distance)
    assert (variant[1:] < variant[0]).all(), variant
    if blur:
        assert (seed[1:] > seed[0]).any(), seed  # the seed definition does reward noise on blurred output
