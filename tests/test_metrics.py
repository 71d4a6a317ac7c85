"""util.metrics against scikit-image and hand-computed numpy references."""
from __future__ import annotations

import math
import multiprocessing
import os
import threading

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from util import metric_kernels, metrics

TOLERANCE = 1e-6
WINDOWS = ("gaussian", "uniform")


def skimage_ssim(pred: np.ndarray, target: np.ndarray, data_range: float, window: str) -> float:
    """scikit-image SSIM of one (C, H, W) pair in the convention our ``window`` claims to match."""
    options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False} if window == "gaussian" else {}
    return structural_similarity(pred, target, data_range=data_range, channel_axis=0, **options)


def skimage_psnr(pred: np.ndarray, target: np.ndarray, data_range: float) -> float:
    return peak_signal_noise_ratio(target, pred, data_range=data_range)


def random_pairs(
    rng: np.random.Generator, shape: tuple[int, ...], data_range: float, noisy_copy: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform-noise targets and either a noisy copy of them or independent noise, float64."""
    target = rng.uniform(0.0, data_range, shape)
    if noisy_copy:
        pred = np.clip(target + rng.normal(0.0, 0.1 * data_range, shape), 0.0, data_range)
    else:
        pred = rng.uniform(0.0, data_range, shape)
    return pred, target


@pytest.mark.parametrize("noisy_copy", [True, False], ids=["noisy-copy", "independent"])
@pytest.mark.parametrize(
    "channels, height, width, data_range",
    [(1, 32, 48, 1.0), (1, 23, 61, 255.0), (3, 40, 29, 1.0), (3, 64, 64, 255.0)],
)
def test_psnr_and_ssim_match_skimage_on_random_images(channels, height, width, data_range, noisy_copy):
    rng = np.random.default_rng(channels * 1000 + height)
    pred, target = random_pairs(rng, (3, channels, height, width), data_range, noisy_copy)
    pred_tensor, target_tensor = torch.from_numpy(pred), torch.from_numpy(target)

    ours_psnr = metrics.psnr(pred_tensor, target_tensor, data_range=data_range)
    assert ours_psnr.shape == (3,) and ours_psnr.dtype == torch.float64
    expected_psnr = [skimage_psnr(p, t, data_range) for p, t in zip(pred, target)]
    np.testing.assert_allclose(ours_psnr.numpy(), expected_psnr, rtol=0, atol=TOLERANCE)

    for window in WINDOWS:
        ours_ssim = metrics.ssim(pred_tensor, target_tensor, data_range=data_range, window=window)
        expected_ssim = [skimage_ssim(p, t, data_range, window) for p, t in zip(pred, target)]
        np.testing.assert_allclose(ours_ssim.numpy(), expected_ssim, rtol=0, atol=TOLERANCE, err_msg=window)


def test_float32_inputs_are_computed_in_float64():
    rng = np.random.default_rng(7)
    pred, target = random_pairs(rng, (2, 1, 30, 30), 255.0, noisy_copy=True)
    pred, target = pred.astype(np.float32), target.astype(np.float32)
    ours = metrics.ssim(torch.from_numpy(pred), torch.from_numpy(target), data_range=255.0)
    expected = [skimage_ssim(p.astype(np.float64), t.astype(np.float64), 255.0, "gaussian")
                for p, t in zip(pred, target)]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=TOLERANCE)


def natural_image_pairs():
    camera = skdata.camera().astype(np.float64)
    blurred_camera = np.clip(gaussian_filter(camera, 1.2) + np.random.default_rng(1).normal(0, 6, camera.shape), 0, 255)
    astronaut = skdata.astronaut().astype(np.float64).transpose(2, 0, 1)  # (3, H, W)
    noisy_astronaut = np.clip(astronaut + np.random.default_rng(2).normal(0, 15, astronaut.shape), 0, 255)
    return [
        pytest.param(blurred_camera[None], camera[None], 255.0, id="camera-0..255"),
        pytest.param(blurred_camera[None] / 255.0, camera[None] / 255.0, 1.0, id="camera-0..1"),
        pytest.param(noisy_astronaut, astronaut, 255.0, id="astronaut-rgb-0..255"),
    ]


@pytest.mark.parametrize("pred, target, data_range", natural_image_pairs())
def test_psnr_and_ssim_match_skimage_on_natural_images(pred, target, data_range):
    pred_tensor, target_tensor = torch.from_numpy(pred), torch.from_numpy(target)
    assert metrics.psnr(pred_tensor, target_tensor, data_range).item() == pytest.approx(
        skimage_psnr(pred, target, data_range), abs=TOLERANCE)
    for window in WINDOWS:
        ours = metrics.ssim(pred_tensor, target_tensor, data_range, window=window).item()
        assert ours == pytest.approx(skimage_ssim(pred, target, data_range, window), abs=TOLERANCE), window


@pytest.mark.parametrize(
    "options, skimage_options",
    [
        ({"window": "uniform", "window_size": 5}, {"win_size": 5}),
        ({"window": "gaussian", "sigma": 1.0},
         {"gaussian_weights": True, "sigma": 1.0, "use_sample_covariance": False}),
    ],
)
def test_window_size_and_sigma_match_skimage(options, skimage_options):
    rng = np.random.default_rng(9)
    pred, target = random_pairs(rng, (2, 1, 21, 27), 1.0, noisy_copy=True)
    ours = metrics.ssim(torch.from_numpy(pred), torch.from_numpy(target), 1.0, **options)
    expected = [structural_similarity(p, t, data_range=1.0, channel_axis=0, **skimage_options)
                for p, t in zip(pred, target)]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("window", WINDOWS)
def test_batch_equals_one_by_one_across_chunk_boundaries(monkeypatch, window, threads):
    rng = np.random.default_rng(3)
    pred, target = (torch.from_numpy(a) for a in random_pairs(rng, (5, 3, 24, 31), 1.0, noisy_copy=True))
    # Chunks of two planes straddle the 3-channel images; with two threads each worker's
    # share of the 15 planes ends in a shorter chunk.
    monkeypatch.setitem(metric_kernels._CHUNK_BYTES, "cpu", 2 * 4 * 24 * 31 * 8)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batched = metrics.compute_metrics(pred, target, 1.0, window=window)
    finally:
        torch.set_num_threads(previous_threads)
    for name, function in (("ssim", metrics.ssim), ("psnr", metrics.psnr), ("rmse", metrics.rmse)):
        options = {"window": window} if name == "ssim" else {}
        one_by_one = torch.cat([function(p, t, **options) for p, t in zip(pred, target)])
        torch.testing.assert_close(batched[name], one_by_one, rtol=0, atol=1e-12, msg=name)


def test_pool_workers_run_single_threaded_and_leave_the_caller_alone():
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pool = metric_kernels._single_threaded_pool(2)
        assert list(pool.map(lambda _: torch.get_num_threads(), range(4))) == [1, 1, 1, 1]
        assert torch.get_num_threads() == 2
        new_thread_threads = []
        thread = threading.Thread(target=lambda: new_thread_threads.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert new_thread_threads == [2]  # threads started later inherit the caller's count again
    finally:
        torch.set_num_threads(previous_threads)


@pytest.mark.parametrize("bad_value", [math.nan, math.inf])
def test_non_finite_image_gives_nan_without_affecting_the_others(bad_value):
    pred, target = torch.rand(3, 2, 20, 20, dtype=torch.float64), torch.rand(3, 2, 20, 20, dtype=torch.float64)
    expected = metrics.ssim(pred, target)
    # Corners, so that the shared filter blocks reach into the neighbouring planes.
    pred[1, 0, 0, 0] = bad_value
    pred[1, 1, -1, -1] = bad_value
    result = metrics.ssim(pred, target)
    assert torch.isnan(result[1])
    torch.testing.assert_close(result[[0, 2]], expected[[0, 2]], rtol=0, atol=1e-12)


def test_accepts_hw_chw_and_nchw_shapes():
    rng = np.random.default_rng(4)
    pred, target = (torch.from_numpy(a) for a in random_pairs(rng, (20, 20), 1.0, noisy_copy=True))
    expected = metrics.ssim(pred[None, None], target[None, None])
    for shaped_pred, shaped_target in ((pred, target), (pred[None], target[None])):
        result = metrics.ssim(shaped_pred, shaped_target)
        assert result.shape == (1,)
        torch.testing.assert_close(result, expected)


def test_rmse_matches_numpy():
    rng = np.random.default_rng(5)
    pred, target = random_pairs(rng, (4, 2, 17, 25), 255.0, noisy_copy=True)
    expected = np.sqrt(((pred - target) ** 2).mean(axis=(1, 2, 3)))
    ours = metrics.rmse(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("window", WINDOWS)
def test_identical_images_are_perfect(window):
    image = torch.rand(2, 3, 20, 20, dtype=torch.float64)
    assert torch.isinf(metrics.psnr(image, image)).all()
    torch.testing.assert_close(metrics.ssim(image, image, window=window), torch.ones(2, dtype=torch.float64))
    assert (metrics.rmse(image, image) == 0).all()


def test_crop_border_matches_cropped_reference():
    rng = np.random.default_rng(6)
    pred, target = random_pairs(rng, (2, 1, 40, 36), 255.0, noisy_copy=True)
    border = 4
    pred_cropped = pred[..., border:-border, border:-border]
    target_cropped = target[..., border:-border, border:-border]
    pred_tensor, target_tensor = torch.from_numpy(pred), torch.from_numpy(target)

    np.testing.assert_allclose(
        metrics.rmse(pred_tensor, target_tensor, crop_border=border).numpy(),
        np.sqrt(((pred_cropped - target_cropped) ** 2).mean(axis=(1, 2, 3))), rtol=1e-12)
    np.testing.assert_allclose(
        metrics.psnr(pred_tensor, target_tensor, 255.0, crop_border=border).numpy(),
        [skimage_psnr(p, t, 255.0) for p, t in zip(pred_cropped, target_cropped)], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(
        metrics.ssim(pred_tensor, target_tensor, 255.0, crop_border=border).numpy(),
        [skimage_ssim(p, t, 255.0, "gaussian") for p, t in zip(pred_cropped, target_cropped)], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    "rgb, expected_y",
    [
        ((0.0, 0.0, 0.0), 16.0),
        ((1.0, 1.0, 1.0), 235.0),
        ((1.0, 0.5, 0.0), 16.0 + 65.481 + 0.5 * 128.553),
        ((0.2, 0.4, 0.8), 16.0 + 0.2 * 65.481 + 0.4 * 128.553 + 0.8 * 24.966),
    ],
)
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_rgb_to_y_on_known_pixels(rgb, expected_y, data_range):
    pixel = torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1) * data_range
    luma = metrics.rgb_to_y(pixel, data_range)
    assert luma.shape == (1, 1, 1, 1)
    assert luma.item() == pytest.approx(expected_y / 255.0 * data_range, abs=1e-12)


def test_y_channel_matches_hand_computed_luma():
    rng = np.random.default_rng(8)
    pred, target = random_pairs(rng, (2, 3, 30, 34), 255.0, noisy_copy=True)

    def luma(rgb: np.ndarray) -> np.ndarray:
        red, green, blue = rgb[:, 0:1] / 255.0, rgb[:, 1:2] / 255.0, rgb[:, 2:3] / 255.0
        return (16.0 + 65.481 * red + 128.553 * green + 24.966 * blue) / 255.0 * 255.0

    pred_y, target_y = luma(pred), luma(target)
    pred_tensor, target_tensor = torch.from_numpy(pred), torch.from_numpy(target)
    np.testing.assert_allclose(
        metrics.psnr(pred_tensor, target_tensor, 255.0, y_channel=True).numpy(),
        [skimage_psnr(p, t, 255.0) for p, t in zip(pred_y, target_y)], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(
        metrics.ssim(pred_tensor, target_tensor, 255.0, y_channel=True, crop_border=2).numpy(),
        [skimage_ssim(p[:, 2:-2, 2:-2], t[:, 2:-2, 2:-2], 255.0, "gaussian") for p, t in zip(pred_y, target_y)],
        rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(
        metrics.rmse(pred_tensor, target_tensor, y_channel=True).numpy(),
        np.sqrt(((pred_y - target_y) ** 2).mean(axis=(1, 2, 3))), rtol=1e-12)


def test_y_channel_is_a_no_op_for_one_channel_images():
    pred, target = torch.rand(2, 1, 16, 16, dtype=torch.float64), torch.rand(2, 1, 16, 16, dtype=torch.float64)
    for function in (metrics.psnr, metrics.ssim, metrics.rmse):
        torch.testing.assert_close(function(pred, target, y_channel=True), function(pred, target))


def test_compute_metrics_and_summarize():
    pred, target = torch.rand(4, 1, 16, 16, dtype=torch.float64), torch.rand(4, 1, 16, 16, dtype=torch.float64)
    per_image = metrics.compute_metrics(pred, target, 1.0, crop_border=1, window="uniform")
    assert list(per_image) == ["psnr", "ssim", "rmse"]
    torch.testing.assert_close(per_image["psnr"], metrics.psnr(pred, target, 1.0, crop_border=1))
    torch.testing.assert_close(per_image["ssim"], metrics.ssim(pred, target, 1.0, crop_border=1, window="uniform"))
    torch.testing.assert_close(per_image["rmse"], metrics.rmse(pred, target, crop_border=1))
    assert list(metrics.compute_metrics(pred, target, 1.0, names=("rmse",))) == ["rmse"]

    summary = metrics.summarize(per_image)
    for name, values in per_image.items():
        mean, std = summary[name]
        assert mean == pytest.approx(values.numpy().mean(), rel=1e-12)
        assert std == pytest.approx(values.numpy().std(), rel=1e-12)


def test_format_markdown_table():
    rows = {
        "pix2pix": {"psnr": (21.123456, 1.5), "ssim": (0.7123456, 0.0123456), "rmse": (22.3456789, 3.0)},
        "val": {"psnr": (math.inf, 0.0), "ssim": (1.0, 0.0)},
    }
    assert metrics.format_markdown_table(rows) == (
        "| Method | PSNR | SSIM | RMSE |\n"
        "|---|---:|---:|---:|\n"
        "| pix2pix | 21.123 ± 1.500 | 0.71235 ± 0.01235 | 22.34568 ± 3.00000 |\n"
        "| val | inf ± 0.000 | 1.00000 ± 0.00000 | - |\n"
    )
    assert metrics.format_markdown_table({"test": {"fid": (1.23456, 0.5)}}, row_header="Split") == (
        "| Split | FID |\n|---|---:|\n| test | 1.2346 ± 0.5000 |\n"
    )


def pair(*shape: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(*shape).to(dtype), torch.rand(*shape).to(dtype)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.psnr(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9)), "same shape"),
        (lambda: metrics.ssim(*pair(1, 1, 16, 16, dtype=torch.uint8)), "floating-point"),
        (lambda: metrics.rmse(torch.rand(1, 1, 8, 8), torch.zeros(1, 1, 8, 8, dtype=torch.int64)), "floating-point"),
        (lambda: metrics.ssim(*pair(1, 1, 10, 30)), "smaller than the 11x11 SSIM window"),
        (lambda: metrics.ssim(*pair(1, 1, 16, 16), crop_border=3), "smaller than the 11x11 SSIM window"),
        (lambda: metrics.ssim(*pair(1, 1, 6, 6), window="uniform"), "7x7 SSIM window"),
        (lambda: metrics.ssim(*pair(1, 1, 16, 16), window_size=4), "odd"),
        (lambda: metrics.ssim(*pair(1, 1, 16, 16), window="box"), "'gaussian' or 'uniform'"),
        (lambda: metrics.psnr(*pair(2, 1, 1, 8, 8)), r"\(N, C, H, W\)"),
        (lambda: metrics.psnr(*pair(1, 1, 8, 8), data_range=0), "data_range"),
        (lambda: metrics.rmse(*pair(1, 1, 8, 8), crop_border=4), "crop_border"),
        (lambda: metrics.psnr(*pair(1, 2, 8, 8), y_channel=True), "3 channels"),
        (lambda: metrics.compute_metrics(*pair(1, 1, 8, 8), 1.0, names=("lpips",)), "unknown metric"),
    ],
)
def test_bad_input_raises_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    pred, target = torch.rand(3, 3, 40, 40), torch.rand(3, 3, 40, 40)
    for name, values in metrics.compute_metrics(pred.cuda(), target.cuda(), 1.0).items():
        assert values.device.type == "cuda"
        torch.testing.assert_close(values.cpu(), metrics.compute_metrics(pred, target, 1.0)[name], rtol=0, atol=1e-10)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_metrics_work_in_a_forked_child_after_the_pool_started():
    pred, target = torch.rand(4, 1, 24, 24, dtype=torch.float64), torch.rand(4, 1, 24, 24, dtype=torch.float64)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        expected = metrics.ssim(pred, target)  # starts the worker pool
        with multiprocessing.get_context("fork").Pool(1) as pool:
            result = pool.apply_async(metrics.ssim, (pred, target)).get(timeout=60)  # hangs if the dead pool is reused
    finally:
        torch.set_num_threads(previous_threads)
    torch.testing.assert_close(result, expected)
