"""scripts/reproduce_sr_table.py: the whole pipeline on a micro budget, and its no-download weight choices."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from scripts import reproduce_sr_table as table_script
from conftest import run_script
from util.image_io import read_image, write_image

SCALE = 4
MICRO = ["--nf", "4", "--nb", "1", "--gc", "4", "--ndf", "8", "--batch_size", "1", "--max_dataset_size", "2",
         "--psnr_epochs", "1", "--gan_epochs", "1", "--lpips_weights", "random", "--vgg_weights", "random",
         "--threads", "2"]


def write_hr_images(root: Path) -> Path:
    """64x64 1-channel HR images of blocky random content."""
    rng = np.random.default_rng(0)
    for split, count in {"train": 2, "test": 2}.items():
        for index in range(count):
            image = np.kron(rng.random((9, 9)), np.ones((8, 8)))[:64, :64]
            write_image(root / split / f"{index:03d}.png", (image * 255).round().astype(np.uint8))
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def independent_bicubic_metrics(image_dir: Path) -> tuple[float, float]:
    """Mean PSNR and SSIM of Pillow-bicubic LR vs HR, border SCALE, with scikit-image (Gaussian 11x11 SSIM)."""
    psnrs, ssims = [], []
    for lr_path in sorted(image_dir.glob("*_LR.png")):
        lr = read_image(lr_path)[..., 0]
        hr = read_image(lr_path.with_name(lr_path.name.replace("_LR", "_HR")))[..., 0].astype(np.float64)
        upscaled = Image.fromarray(lr.astype(np.float32)).resize((lr.shape[1] * SCALE, lr.shape[0] * SCALE),
                                                                  Image.Resampling.BICUBIC)
        sr = np.clip(np.rint(np.asarray(upscaled)), 0, 255)
        sr, hr = sr[SCALE:-SCALE, SCALE:-SCALE], hr[SCALE:-SCALE, SCALE:-SCALE]
        psnrs.append(peak_signal_noise_ratio(hr, sr, data_range=255))
        ssims.append(structural_similarity(hr, sr, data_range=255, gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def test_micro_run_writes_the_table_the_ablation_and_the_box_plot(tmp_path):
    root = write_hr_images(tmp_path / "data")
    result = run_script("scripts/reproduce_sr_table.py", "--dataroot", str(root), *MICRO, cwd=tmp_path)
    results = tmp_path / "results"

    rows = read_csv(results / "sr_table.csv")
    assert [row["method"] for row in rows] == ["bicubic", "IRSRNet", "IRSRGAN (untrained-VGG19 loss)",
                                               "interpolated (alpha = 0.8)"]
    assert list(rows[0]) == ["method", "psnr", "psnr_std", "ssim", "ssim_std", "lpips_random_vgg",
                             "lpips_random_vgg_std", "lpips_i_random_vgg", "lpips_i_random_vgg_std",
                             "train_seconds", "epochs"]
    assert [row["epochs"] for row in rows] == ["", "1", "1", ""]
    for row in rows:
        assert 5.0 < float(row["psnr"]) < 60.0 and -1.0 < float(row["ssim"]) <= 1.0
        assert float(row["lpips_random_vgg"]) >= 0.0

    header = next(line for line in result.stdout.splitlines() if line.startswith("| method"))
    assert header == ("| method | PSNR ↑ | SSIM ↑ | LPIPS ↓ (random VGG, not comparable) | "
                      "LPIPS-I ↑ (random VGG, not comparable) |")

    # The bicubic row is Pillow's bicubic upscaling of the LR images test.py saved, measured by scikit-image.
    psnr, ssim = independent_bicubic_metrics(results / "sr_table_irsrnet" / "test_latest" / "images")
    assert float(rows[0]["psnr"]) == pytest.approx(psnr, abs=2e-6)
    assert float(rows[0]["ssim"]) == pytest.approx(ssim, abs=2e-6)

    # The interpolated generator is evaluated on the same images as the others.
    assert len(list((results / "sr_table_interp" / "interp_0.80" / "test_latest" / "images").glob("*_SR.png"))) == 2

    ablation = read_csv(results / "sr_table_degradation.csv")
    assert [(row["training"], row["test_lr"]) for row in ablation] == [
        ("with (p = 0.25)", "clean"), ("without (p = 0)", "clean"),
        ("with (p = 0.25)", "degraded"), ("without (p = 0)", "degraded")]
    # The 'with' arm on clean LR is the main table's IRSRNet row.
    assert ablation[0]["ssim"] == rows[1]["ssim"]
    # Degraded test LR differs from clean LR, so the same network scores differently on it.
    assert ablation[2]["psnr"] != ablation[0]["psnr"]
    plot = results / "sr_table_degradation_ssim.png"
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 400


def test_weights_come_from_the_cache_a_file_or_are_left_out(tmp_path, monkeypatch):
    monkeypatch.setattr(table_script.torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    lpips = table_script.resolve_lpips("auto")
    assert lpips.weights is None and "--lpips_weights" in lpips.note
    assert table_script.resolve_vgg("auto").flags == ("--lambda_perceptual", "0", "--lambda_L1", "1.0")
    assert "no VGG19 weights" in table_script.resolve_vgg("auto").label

    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    for file_name in (table_script.VGG16_FILE, table_script.VGG19_FILE):
        (tmp_path / "hub" / "checkpoints" / file_name).write_bytes(b"")
    assert table_script.resolve_lpips("auto").weights == "torchvision"
    assert table_script.resolve_vgg("auto") == table_script.VggChoice(("--vgg_weights", "torchvision"), "IRSRGAN")


def test_missing_weight_files_are_user_errors(tmp_path):
    missing = str(tmp_path / "vgg.pth")
    with pytest.raises(table_script.UserError, match="--lpips_weights"):
        table_script.resolve_lpips(missing)
    with pytest.raises(table_script.UserError, match="--vgg_weights"):
        table_script.resolve_vgg(missing)


def test_bicubic_upscale_keeps_dtype_channels_and_constant_images():
    flat = np.full((5, 7, 3), 40000, dtype=np.uint16)
    upscaled = table_script.bicubic_upscale(flat, 3)
    assert upscaled.dtype == np.uint16 and upscaled.shape == (15, 21, 3)
    assert (upscaled == 40000).all()
