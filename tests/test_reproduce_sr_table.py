"""scripts/reproduce_sr_table.py: the whole pipeline on a micro budget, and its no-download weight choices."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import run_script
from models.precision import resolve_amp
from scripts import reproduce_sr_table as table_script
from util.image_io import read_image, write_image

SCALE = 4
MICRO = ["--nf", "4", "--nb", "1", "--gc", "4", "--ndf", "8", "--batch_size", "1", "--max_dataset_size", "2",
         "--psnr_iters", "2", "--gan_iters", "1", "--crop_size", "64", "--lpips_weights", "random",
         "--vgg_weights", "random", "--threads", "2"]


def write_hr_images(root: Path) -> Path:
    """64x64 1-channel HR images of blocky random content; the test split has two sources."""
    rng = np.random.default_rng(0)
    for folder, count in {"train": 2, "test/cam_a": 2, "test/cam_b": 1}.items():
        for index in range(count):
            image = np.kron(rng.random((9, 9)), np.ones((8, 8)))[:64, :64]
            write_image(root / folder / f"{folder[-1]}{index:03d}.png", (image * 255).round().astype(np.uint8))
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


def test_micro_run_over_two_seeds_writes_the_table_per_source_and_the_side_by_side(tmp_path):
    root = write_hr_images(tmp_path / "data")
    result = run_script("scripts/reproduce_sr_table.py", "--dataroot", str(root), "--seeds", "0,1", *MICRO,
                        "--metrics", "psnr,ssim,psnr_y,lpips", cwd=tmp_path)
    results = tmp_path / "results"

    rows = read_csv(results / "sr_table.csv")
    methods = ["bicubic", "HR band-limited to the LR's Nyquist", "IRSRNet", "IRSRGAN (untrained-VGG19 loss)",
               "interpolated (alpha = 0.8)"]
    assert [(row["method"], row["source"]) for row in rows] == [
        (method, source) for method in methods for source in ("all", "cam_a", "cam_b")]
    assert list(rows[0])[:10] == ["method", "source", "psnr", "psnr_std", "ssim", "ssim_std", "psnr_y", "psnr_y_std",
                                  "lpips_random_vgg", "lpips_random_vgg_std"]
    for row in rows:
        assert 5.0 < float(row["psnr"]) < 60.0 and -1.0 < float(row["ssim"]) <= 1.0
        assert float(row["psnr_y"]) == pytest.approx(float(row["psnr"]) + 20 * np.log10(255 / 219), abs=0.05)
    # Two seeds: the networks differ between them, the reference rows do not.
    assert float(rows[0]["psnr_std"]) == float(rows[3]["psnr_std"]) == 0.0 and float(rows[6]["psnr_std"]) > 0.0
    # 'all' is the mean over the three images, the sources over their own.
    by_source = {row["source"]: float(row["psnr"]) for row in rows if row["method"] == "bicubic"}
    assert by_source["all"] == pytest.approx((2 * by_source["cam_a"] + by_source["cam_b"]) / 3, abs=1e-6)
    assert rows[6]["iters"] == "2" and rows[9]["iters"] == "1"
    # --amp auto reached train.py resolved, with channels-last exactly when it trains in bf16.
    for stage in ("irsrnet", "irsrgan"):
        saved = json.loads((tmp_path / "checkpoints" / f"sr_table_s0_{stage}" / "train_opt.json").read_text())
        amp = resolve_amp("auto", "cpu")
        assert (saved["options"]["amp"], saved["options"]["channels_last"]) == (amp, amp == "bf16")

    header = next(line for line in result.stdout.splitlines() if line.startswith("| method"))
    assert header.startswith("| method | source | PSNR ↑ | SSIM ↑ | PSNR-Y ↑ | LPIPS ↓ (random VGG, not comparable) |")
    assert "sharpness" in header and "Δ PSNR vs bicubic" in header and "beats bicubic" in header

    # The bicubic row is Pillow's bicubic upscaling of the LR images test.py saved, measured by scikit-image.
    psnr, ssim = independent_bicubic_metrics(results / "sr_table_s0_irsrnet" / "test_latest" / "images")
    assert float(rows[0]["psnr"]) == pytest.approx(psnr, abs=2e-6)
    assert float(rows[0]["ssim"]) == pytest.approx(ssim, abs=2e-6)

    # The interpolated generator is evaluated on the same images as the others.
    assert len(list((results / "sr_table_s1_interp" / "interp_0.80" / "test_latest" / "images").glob("*_SR.png"))) == 3
    with Image.open(results / "sr_table_side_by_side.png") as sheet:  # 5 columns of 128 + 4 px, 3 rows
        assert sheet.size == (5 * 132, 14 + 3 * 132)


def test_ablations_compare_degradation_arms_and_generators(tmp_path):
    root = write_hr_images(tmp_path / "data")
    result = run_script("scripts/reproduce_sr_table.py", "--dataroot", str(root), "--seeds", "0", *MICRO,
                        "--metrics", "psnr", "--ablations", "degradation,architecture", cwd=tmp_path)
    results = tmp_path / "results"

    ablation = read_csv(results / "sr_table_degradation.csv")
    assert [(row["training"], row["test_lr"]) for row in ablation] == [
        ("with (p = 0.25)", "clean"), ("without (p = 0)", "clean"),
        ("with (p = 0.25)", "degraded"), ("without (p = 0)", "degraded")]
    # Degraded test LR differs from clean LR, so the same network scores differently on it.
    assert ablation[2]["psnr"] != ablation[0]["psnr"]
    # The p = 0 arm is the main table's IRSRNet (same flags and seed): tested, not trained again.
    main_table = {row["method"]: row for row in read_csv(results / "sr_table.csv") if row["source"] == "all"}
    assert ablation[1]["psnr"] == main_table["IRSRNet"]["psnr"]
    assert not list((tmp_path / "checkpoints").glob("sr_table_s0_degradation1*"))
    assert (tmp_path / "checkpoints" / "sr_table_s0_degradation0_irsrnet").is_dir()
    with Image.open(results / "sr_table_degradation_ssim.png") as image:
        assert image.format == "PNG" and image.width > 400

    generators = read_csv(results / "sr_table_architecture.csv")
    assert [row["generator"].split(", ")[0] for row in generators] == ["CRDB (3-channel)"] * 2 + [
        "RRDB (3-channel)"] * 2
    assert [row["generator"].split(", ")[1].split()[0] for row in generators] == ["IRSRNet", "IRSRGAN"] * 2
    # each stage's row is its own test run: the PSNR stage's, read back from its metrics file
    psnr_stage = read_csv(results / "sr_table_s0_crdb_rgb_irsrnet" / "test_latest" / "metrics.csv")
    assert float(generators[0]["psnr"]) == pytest.approx(np.mean([float(row["psnr"]) for row in psnr_stage]), abs=1e-3)
    for row in generators:  # 3-channel output of grey images: the channels may drift apart, never negatively
        assert float(row["colour_spread"]) >= 0.0 and float(row["train_seconds"]) > 0.0
    assert "colour_spread" in result.stdout

    # --reuse rebuilds all three tables from the recorded runs without training anything again.
    tables = {name: (results / name).read_text() for name in
              ("sr_table.csv", "sr_table_degradation.csv", "sr_table_architecture.csv")}
    reused = run_script("scripts/reproduce_sr_table.py", "--dataroot", str(root), "--seeds", "0", *MICRO,
                        "--metrics", "psnr", "--ablations", "degradation,architecture", "--reuse", cwd=tmp_path)
    assert "] training" not in reused.stdout
    for run in ("sr_table_s0", "sr_table_s0_degradation0", "sr_table_s0_crdb_rgb", "sr_table_s0_rrdb_rgb"):
        assert f"[{run}] reusing" in reused.stdout
    assert {name: (results / name).read_text() for name in tables} == tables


@pytest.mark.parametrize("amx", [True, False])
def test_the_recipe_runs_more_steps_where_bf16_is_native(monkeypatch, amx):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    opt = table_script.parse_args([])
    assert (opt.amp, opt.psnr_iters) == (("bf16", 4000) if amx else ("none", 1000))
    assert table_script.parse_args(["--amp", "none"]).psnr_iters == table_script.RECIPE_PSNR_ITERS["none"]
    assert table_script.parse_args(["--psnr_iters", "7"]).psnr_iters == 7  # a given budget is kept


def test_weights_come_from_the_cache_a_file_or_are_left_out(tmp_path, monkeypatch):
    monkeypatch.setattr(table_script.torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    lpips = table_script.resolve_lpips("auto")
    assert lpips.weights is None and "--lpips_weights" in lpips.note
    assert table_script.resolve_vgg("auto").flags == ("--lambda_perceptual", "0", "--lambda_L1", "1.0",
                                                      "--lambda_gan", "0.0025")
    assert "no VGG19 weights" in table_script.resolve_vgg("auto").label

    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    for file_name in (table_script.VGG16_FILE, table_script.VGG19_FILE):
        (tmp_path / "hub" / "checkpoints" / file_name).write_bytes(b"")
    assert table_script.resolve_lpips("auto").weights == "torchvision"
    assert table_script.resolve_vgg("auto") == table_script.VggChoice(("--perceptual_vgg", "torchvision"), "IRSRGAN")


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


def test_band_limit_keeps_the_lr_band_and_removes_the_rest():
    """Reference: cosines of the DCT-II basis, whose mirrored extension holds exactly one frequency,
    k / (2 N) cycles per pixel; at x4 the LR band is below 1/8 cycles per pixel (k < N / 4)."""
    height, width = 32, 48
    y, x = np.mgrid[:height, :width] + 0.5
    low = 100 + 30 * np.cos(np.pi * 5 * x / width) * np.cos(np.pi * 3 * y / height)  # 5/96, 3/64 cycles/px
    high = 20 * np.cos(np.pi * 13 * x / width) + 10 * np.cos(np.pi * 9 * y / height)  # 13/96, 9/64: above 1/8
    image = np.stack([low + high, low], axis=2)
    limited = table_script.band_limit(image, 4)
    assert limited.shape == image.shape
    np.testing.assert_allclose(limited[..., 0], low, atol=1e-9)
    np.testing.assert_allclose(limited[..., 1], low, atol=1e-9)
    # At x2 the band reaches 1/4 cycles per pixel and keeps both.
    np.testing.assert_allclose(table_script.band_limit(image, 2)[..., 0], low + high, atol=1e-9)
