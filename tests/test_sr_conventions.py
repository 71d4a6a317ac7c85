"""Imported SR weights run on the [0, 1] range they were trained on, and our own files keep their conventions.

Reference: a generator built to be exactly nearest-neighbour x4 *on [0, 1] images* (identity
convs, zero residual branches; its LeakyReLUs are the identity only on non-negative values, so
fed the project's [-1, 1] it would be wrong by tens of grey levels). Through ``test.py`` its
output must equal nearest-neighbour upscaling of the LR image the run saved.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_script
from models.networks import define_sr_G
from models.networks.sr_weight_mapping import load_generator_weights, read_generator_state
from test_sr_networks import basicsr_keys, irsrgan_keys
from util.image_io import read_image, write_image

ARCH = ["--nf", "4", "--nb", "1", "--gc", "4"]
IDENTITY_CONVS = {"irsrgan": ("initial", "upsamples.0.conv", "upsamples.1.conv", "final.0", "final.2"),
                  "basicsr": ("conv_first", "conv_up1", "conv_up2", "conv_hr", "conv_last")}


def nearest_neighbour_weights(layout: str) -> dict[str, torch.Tensor]:
    """A 1-channel, nf=4, one-block x4 generator in ``layout`` that copies channel 0 through every conv."""
    keys = irsrgan_keys(1, 1, nf=4, nb=1, gc=4) if layout == "irsrgan" else basicsr_keys(1, 1, nf=4, nb=1, gc=4)
    weights = {key: torch.zeros(shape) for key, shape in keys.items()}
    for conv in IDENTITY_CONVS[layout]:
        weights[f"{conv}.weight"][0, 0, 1, 1] = 1.0
    return weights


def write_lr_folder(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for index in range(2):
        write_image(root / "test" / f"im{index}.png", rng.integers(0, 256, (40, 48)).astype(np.uint8))
    return root


@pytest.mark.parametrize("layout, net_g", [("irsrgan", "crdb"), ("basicsr", "rrdb")])
def test_foreign_nearest_neighbour_generator_gives_nearest_neighbour_output_through_test_py(tmp_path, layout, net_g):
    weights = nearest_neighbour_weights(layout)
    file = tmp_path / "foreign.pth"
    torch.save({"state_dict": weights} if layout == "irsrgan" else {"params_ema": weights}, file)
    root = write_lr_folder(tmp_path / "data")
    run_script("test.py", "--model", "irsrnet", "--dataroot", str(root), "--name", "nn", "--pretrained_G", str(file),
               *ARCH, "--netG", net_g, "--results_dir", str(tmp_path / "results"), "--checkpoints_dir",
               str(tmp_path / "ck"), "--sr_input", "hr", cwd=tmp_path)

    images = tmp_path / "results" / "nn" / "test_latest" / "images"
    for index in range(2):
        lr = read_image(images / f"im{index}_LR.png")[..., 0].astype(int)
        sr = read_image(images / f"im{index}_SR.png")[..., 0].astype(int)
        nearest = np.kron(lr, np.ones((4, 4), dtype=int))
        assert sr.shape == nearest.shape
        assert np.abs(sr - nearest).max() <= 1  # one rounding of the [0, 1] <-> [-1, 1] mapping


def test_conventions_survive_saving_and_blending(tmp_path):
    torch.save({"state_dict": nearest_neighbour_weights("irsrgan")}, tmp_path / "foreign.pth")
    state, layout = read_generator_state(tmp_path / "foreign.pth")
    assert layout == "irsrgan" and state["value_range"].tolist() == [0.0, 1.0]

    net = define_sr_G(1, 1, 4, 1, 4, 4, "crdb", bicubic_residual=True)
    load_generator_weights(net, tmp_path / "foreign.pth")
    torch.save(net.state_dict(), tmp_path / "ours.pth")  # what training and net_interp.py write
    reloaded = define_sr_G(1, 1, 4, 1, 4, 4, "crdb", bicubic_residual=True)
    load_generator_weights(reloaded, tmp_path / "ours.pth")
    assert reloaded.value_range.tolist() == [0.0, 1.0] and reloaded.bicubic_residual.item() == 0.0
    x = torch.rand(1, 1, 6, 5) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), torch.nn.functional.interpolate(x, scale_factor=4), atol=1e-6, rtol=0)

    # A file from before the buffers existed was trained on [-1, 1] as a plain mapping.
    legacy = {key: value for key, value in define_sr_G(1, 1, 4, 1, 4, 4, "crdb").state_dict().items()
              if key not in ("value_range", "bicubic_residual")}
    torch.save(legacy, tmp_path / "legacy.pth")
    load_generator_weights(reloaded, tmp_path / "legacy.pth")
    assert reloaded.value_range.tolist() == [-1.0, 1.0] and reloaded.bicubic_residual.item() == 0.0


def test_bicubic_residual_generator_starts_near_bicubic_and_blends_only_with_its_kind(tmp_path):
    net = define_sr_G(1, 1, 8, 1, 4, 4, "crdb", bicubic_residual=True).eval()
    x = torch.rand(1, 1, 12, 12) * 2 - 1
    with torch.no_grad():
        bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        assert (net(x) - bicubic).abs().mean() < 0.05 * bicubic.abs().mean()
    torch.save(net.state_dict(), tmp_path / "residual.pth")
    torch.save(define_sr_G(1, 1, 8, 1, 4, 4, "crdb").state_dict(), tmp_path / "plain.pth")
    result = run_script("scripts/net_interp.py", "--psnr_weights", str(tmp_path / "plain.pth"), "--gan_weights",
                        str(tmp_path / "residual.pth"), "--lambdas", "0.5", "--out", str(tmp_path / "out"),
                        "--nf", "8", "--nb", "1", "--gc", "4", "--dataroot", str(tmp_path), cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "trained with different bicubic_residual" in result.stdout + result.stderr
