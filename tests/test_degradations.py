"""Degradations: kernels against independent formulas, resizing, noise statistics, JPEG
without bit-depth loss, and the presets' determinism, sizes and ranges."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from data import degradations as deg


def smooth_image(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    """A smooth random float32 image in [0, 1] (JPEG and blur behave as on real images)."""
    coarse = np.random.default_rng(seed).random((height // 4 + 2, width // 4 + 2, channels)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    return image.reshape(height, width, channels)


# --------------------------------------------------------------------------- kernels


def test_isotropic_gaussian_equals_opencv_kernel():
    reference = cv2.getGaussianKernel(9, 1.3).astype(np.float32)
    np.testing.assert_allclose(deg.bivariate_kernel(9, 1.3), reference @ reference.T, atol=1e-7)


def test_anisotropic_gaussian_has_the_rotated_covariance():
    sigma_x, sigma_y, theta = 3.0, 1.0, math.pi / 6
    kernel = deg.bivariate_kernel(41, sigma_x, sigma_y, theta)
    offsets = np.arange(41) - 20.0
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    moments = np.array([[np.sum(kernel * x * x), np.sum(kernel * x * y)],
                        [np.sum(kernel * x * y), np.sum(kernel * y * y)]])
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    expected = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    np.testing.assert_allclose(moments, expected, atol=0.02)
    # a quarter turn swaps the axes
    np.testing.assert_allclose(deg.bivariate_kernel(15, 3.0, 1.0, math.pi / 2), deg.bivariate_kernel(15, 3.0, 1.0).T,
                               atol=1e-7)


def test_generalized_and_plateau_profiles():
    np.testing.assert_allclose(deg.bivariate_kernel(11, 2.0, beta=1.0), deg.bivariate_kernel(11, 2.0), atol=0)
    sigma, beta = 2.0, 1.5
    for plateau, profile in ((False, lambda q: math.exp(-0.5 * q**beta)), (True, lambda q: 1 / (1 + q**beta))):
        kernel = deg.bivariate_kernel(11, sigma, beta=beta, plateau=plateau)
        for distance in (1, 3, 5):
            ratio = kernel[5, 5 + distance] / kernel[5, 5]
            assert ratio == pytest.approx(profile(distance**2 / sigma**2) / profile(0.0), rel=1e-5)


def test_sinc_kernel_is_the_inverse_fourier_transform_of_a_disk():
    size, cutoff = 11, math.pi / 2
    # numerical inverse Fourier transform of the disk |w| < cutoff, sampled on the kernel grid
    step = 2 * cutoff / 600
    w = np.arange(-cutoff + step / 2, cutoff, step)
    wx, wy = np.meshgrid(w, w)
    inside = wx**2 + wy**2 < cutoff**2
    wx, wy = wx[inside], wy[inside]
    offsets = np.arange(size) - (size - 1) / 2
    reference = np.array([[np.cos(wx * x + wy * y).sum() for x in offsets] for y in offsets])
    reference /= reference.sum()
    np.testing.assert_allclose(deg.sinc_kernel(size, cutoff), reference, atol=2e-4)


@pytest.mark.parametrize("seed", range(40))
def test_random_kernels_stay_in_the_published_ranges(seed):
    order = deg.RealEsrganParams().first
    kernel = deg.random_kernel(np.random.default_rng(seed), order)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1 and 7 <= kernel.shape[0] <= 21
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-6)  # point-symmetric: filtering = convolution


# --------------------------------------------------------------------------- resizing


def test_area_downsampling_is_the_block_mean():
    image = smooth_image(24, 36, 3)
    expected = image.reshape(6, 4, 9, 4, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(deg.downsample(image, 4, "area"), expected, atol=1e-6)


def test_bicubic_downsampling_matches_pil():
    image = smooth_image(48, 40, 1)
    reference = np.asarray(Image.fromarray(image[..., 0]).resize((10, 12), Image.BICUBIC))
    np.testing.assert_allclose(deg.downsample(image, 4, "bicubic")[..., 0], reference.clip(0, 1), atol=1e-5)


def test_resize_keeps_one_channel_axis_and_range():
    image = smooth_image(20, 20, 1)
    resized = deg.resize(image, (7, 9), "bicubic")
    assert resized.shape == (7, 9, 1) and resized.dtype == np.float32
    assert 0.0 <= resized.min() and resized.max() <= 1.0


# --------------------------------------------------------------------------- noise and JPEG


def test_gaussian_noise_statistics_and_gray_option():
    flat = np.full((256, 256, 3), 0.5, np.float32)
    colour = deg.add_gaussian_noise(flat, np.random.default_rng(0), 0.05)
    assert abs(colour.mean() - 0.5) < 0.002 and colour.std() == pytest.approx(0.05, rel=0.03)
    assert not np.array_equal(colour[..., 0], colour[..., 1])
    gray = deg.add_gaussian_noise(flat, np.random.default_rng(0), 0.05, gray=True)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    biased = deg.add_gaussian_noise(flat, np.random.default_rng(0), 0.01, mean=0.01)
    assert biased.mean() - 0.5 == pytest.approx(0.01, abs=0.001)


def test_poisson_noise_variance_follows_the_signal():
    # 256 grey levels -> photon counts scaled by 256: variance = value / 256 * scale^2
    ramp = np.tile(np.arange(256, dtype=np.float32) / 255.0, (2000, 1))[..., None]
    scale = 2.0
    noisy = deg.add_poisson_noise(ramp, np.random.default_rng(1), scale)
    for column in (64, 128, 192):
        value = column / 255.0
        noise = noisy[:, column, 0] - value
        assert noise.std() == pytest.approx(math.sqrt(value / 256.0) * scale, rel=0.06)
        assert abs(noise.mean()) < 0.004


def test_jpeg_of_8bit_data_is_the_codec_round_trip():
    image = np.round(smooth_image(32, 40, 1) * 255) / 255
    eight_bit = np.round(image[..., 0] * 255).astype(np.uint8)
    _, buffer = cv2.imencode(".jpg", eight_bit, [cv2.IMWRITE_JPEG_QUALITY, 40])
    expected = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    np.testing.assert_allclose(deg.jpeg_compress(image, 40)[..., 0], expected, atol=1e-6)


def test_jpeg_keeps_16bit_precision_and_adds_the_codec_error():
    levels = 4096  # a 12-bit ramp: more levels than 8 bits can hold
    image = (np.tile(np.arange(64), (64, 1)) * (levels - 1) // 63 / (levels - 1)).astype(np.float32)[..., None]
    image = image + smooth_image(64, 64, 1, seed=3) * 0.1
    image = np.round(image / image.max() * (levels - 1)) / (levels - 1)
    compressed = deg.jpeg_compress(image.astype(np.float32), 50)
    assert len(np.unique(np.round(compressed * 65535))) > 512  # not squashed to 256 levels
    eight_bit = np.round(image[..., 0] * 255).astype(np.uint8)
    _, buffer = cv2.imencode(".jpg", eight_bit, [cv2.IMWRITE_JPEG_QUALITY, 50])
    codec_error = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 - eight_bit / 255
    np.testing.assert_allclose(compressed[..., 0], np.clip(image[..., 0] + codec_error, 0, 1), atol=1e-6)
    assert np.abs(codec_error).max() > 1 / 255  # the codec really changed the image


def test_lower_jpeg_quality_means_larger_error():
    image = smooth_image(64, 64, 3)
    error = {quality: np.abs(deg.jpeg_compress(image, quality) - image).mean() for quality in (20, 90)}
    assert error[20] > 1.5 * error[90]


def test_quantize_rounds_to_levels():
    values = np.array([0.0, 0.3, 1 / 510 + 1e-4, 1.0], np.float32)
    np.testing.assert_allclose(deg.quantize(values, 255), np.round(values * 255) / 255)
    assert deg.quantize(values, None) is values


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize("preset", sorted(deg.PRESETS))
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_presets_are_deterministic_with_exact_sizes_and_range(preset, scale, channels):
    pipeline = deg.PRESETS[preset]
    image = smooth_image(48, 60, channels)
    outputs = [pipeline.apply(image, scale, pipeline.defaults, np.random.default_rng(seed)) for seed in (7, 7, 8)]
    assert outputs[0].shape == (48 // scale, 60 // scale, channels) and outputs[0].dtype == np.float32
    assert 0.0 <= outputs[0].min() and outputs[0].max() <= 1.0
    assert np.array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])
    assert np.array_equal(image, smooth_image(48, 60, channels)), "the input must not be modified"


@pytest.mark.parametrize("preset", sorted(deg.PRESETS))
def test_presets_cope_with_tiny_patches(preset):
    pipeline = deg.PRESETS[preset]
    for seed in range(20):
        out = pipeline.apply(smooth_image(16, 16, 1), 4, pipeline.defaults, np.random.default_rng(seed))
        assert out.shape == (4, 4, 1) and np.isfinite(out).all()


def test_irsrgan_noise_mean_biases_brightness_only_when_asked():
    image = np.full((64, 64, 1), 0.5, np.float32)
    biases = {}
    for mean in (0.0, 0.01):
        params = deg.replace_parameters(deg.IrsrganParams(), {"noise_mean": mean, "jpeg_quality": (95, 95)})
        outputs = [deg.irsrgan_degradation(image, 4, params, np.random.default_rng(seed)) for seed in range(8)]
        biases[mean] = float(np.mean(outputs)) - 0.5
    assert abs(biases[0.0]) < 0.002
    assert biases[0.01] == pytest.approx(0.01, abs=0.003)


def test_realesrgan_without_blur_noise_and_jpeg_is_a_plain_resize():
    params = deg.replace_parameters(deg.RealEsrganParams(), {
        "blur_prob": 0.0, "blur_prob2": 0.0, "final_sinc_prob": 0.0,
        "resize_prob": (0, 0, 1), "resize_prob2": (0, 0, 1),
        "gaussian_noise_prob": 1.0, "gaussian_noise_prob2": 1.0, "noise_range": (0, 0), "noise_range2": (0, 0),
        "jpeg_range": (100, 100), "jpeg_range2": (100, 100)})
    image = smooth_image(32, 32, 1)
    out = deg.realesrgan_degradation(image, 4, params, np.random.default_rng(0))
    assert np.abs(out - deg.downsample(image, 4, "area")).max() < 0.03  # a smooth image: all resize modes agree


def test_parameter_table_round_trip_and_validation():
    params = deg.RealEsrganParams()
    table = deg.parameter_table(params)
    assert table["noise_range"].value == (1.0, 30.0) and table["noise_range2"].value == (1.0, 25.0)
    assert table["blur_sigma2"].value == (0.2, 1.5) and table["final_sinc_prob"].value == 0.8
    changed = deg.replace_parameters(params, {"noise_range2": [2.0, 5.0]})
    assert changed.second.noise_range == (2.0, 5.0) and changed.first.noise_range == (1.0, 30.0)
    deg.check_parameters(params)
    deg.check_parameters(deg.IrsrganParams())
    for name, value in (("noise_range2", (30.0, 1.0)), ("jpeg_range", (0, 95)), ("kernel_range", (6, 21)),
                        ("sinc_prob2", 1.5), ("kernel_probs", (1.0, 0.0))):
        with pytest.raises(ValueError, match=name):
            deg.check_parameters(deg.replace_parameters(params, {name: value}))
    with pytest.raises(ValueError, match="resize_modes"):
        deg.check_parameters(deg.replace_parameters(deg.IrsrganParams(), {"resize_modes": ("nearest",)}))
