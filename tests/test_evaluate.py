"""util.evaluation and scripts/evaluate.py: quantisation, pairing, reports, and agreement with test.py."""
from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import test as test_script
import train as train_script
from conftest import REPO_ROOT, run_script, write_aligned_dataset
from models.networks import define_G
from models.pix2pix_model import Pix2PixModel
from util.errors import UserError
from util.evaluation import ImageEvaluator, MetricTable, find_result_pairs, quantise, read_for_metrics
from util.image_io import tensor_to_image, write_image

_spec = importlib.util.spec_from_file_location("evaluate_script", REPO_ROOT / "scripts" / "evaluate.py")
evaluate_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate_script)

TINY_NETWORKS = ["--netG", "resnet_6blocks", "--ngf", "8"]


@pytest.fixture(autouse=True)
def restore_root_logger():
    """test.main() sets up logging for a process; put the root logger back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("bits", [8, 16])
def test_quantise_gives_the_values_of_the_saved_file(bits):
    # Random values plus exact rounding boundaries of both bit depths.
    peak = 2**bits - 1
    boundaries = torch.tensor([(2 * k + 1) / (2 * peak) * 2 - 1 for k in range(0, peak, max(1, peak // 50))])
    images = torch.cat([torch.rand(3 * 40 * 40) * 2.2 - 1.1, boundaries])
    images = images[: 3 * 40 * 40].view(3, 40, 40)
    saved = tensor_to_image(images, bit16=bits == 16).astype(np.float64)
    expected = torch.from_numpy(saved.transpose(2, 0, 1)) * (255.0 / peak)
    torch.testing.assert_close(quantise(images[None], bits)[0], expected, rtol=0, atol=0)


def test_read_for_metrics_puts_8_and_16_bit_files_on_the_0_255_scale(tmp_path):
    grey16 = np.array([[0, 257, 65535]], dtype=np.uint16)
    colour8 = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    write_image(tmp_path / "a.png", grey16)
    write_image(tmp_path / "b.png", colour8)
    np.testing.assert_array_equal(read_for_metrics(tmp_path / "a.png").numpy(), [[[0.0, 1.0, 255.0]]])
    np.testing.assert_array_equal(read_for_metrics(tmp_path / "b.png").numpy(), colour8.transpose(2, 0, 1))


def write_results_folder(folder: Path, output_visual: str, target_visual: str, count: int = 3,
                         size: int = 24, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``folder/images/<image>_<visual>.png`` pairs of a noisy copy and its reference (8-bit, 1 channel)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for index in range(count):
        target = np.kron(rng.integers(0, 256, (size // 4, size // 4)), np.ones((4, 4))).astype(np.uint8)
        output = np.clip(target + rng.normal(0, 8 + 4 * index, target.shape).round(), 0, 255).astype(np.uint8)
        write_image(folder / "images" / f"im_{index:02d}_{output_visual}.png", output)
        write_image(folder / "images" / f"im_{index:02d}_{target_visual}.png", target)
        write_image(folder / "images" / f"im_{index:02d}_real_A.png", np.zeros((size, size, 3), np.uint8))
        pairs.append((output, target))
    return pairs


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_evaluate_script_matches_skimage_and_writes_the_report(tmp_path):
    pairs = write_results_folder(tmp_path / "res", "fake_B", "real_B")
    result = run_script("scripts/evaluate.py", str(tmp_path / "res"), cwd=tmp_path)

    rows = read_csv(tmp_path / "res" / "metrics.csv")
    assert [row["image"] for row in rows] == ["im_00", "im_01", "im_02"]
    for row, (output, target) in zip(rows, pairs):
        output, target = output.astype(np.float64), target.astype(np.float64)
        assert float(row["psnr"]) == pytest.approx(peak_signal_noise_ratio(target, output, data_range=255), abs=1e-6)
        assert float(row["ssim"]) == pytest.approx(structural_similarity(
            output, target, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False), abs=1e-6)
        assert float(row["rmse"]) == pytest.approx(np.sqrt(((output - target) ** 2).mean()), rel=1e-12)
    summary = json.loads((tmp_path / "res" / "metrics.json").read_text())
    ssim_values = [float(row["ssim"]) for row in rows]
    assert summary["ssim"]["mean"] == pytest.approx(np.mean(ssim_values), rel=1e-12)
    assert summary["ssim"]["std"] == pytest.approx(np.std(ssim_values), rel=1e-12)
    with Image.open(tmp_path / "res" / "ssim_boxplot.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 100
    assert re.search(r"\| res \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \|", result.stdout)
    assert "3 pairs (fake_B vs real_B)" in result.stdout


def test_pairing_defaults_manifest_and_overrides(tmp_path):
    write_results_folder(tmp_path / "sr", "SR", "HR", count=2)
    pairs, output_visual, target_visual = find_result_pairs(tmp_path / "sr")  # no fake_B files: SR/HR
    assert (output_visual, target_visual) == ("SR", "HR") and [pair.image for pair in pairs] == ["im_00", "im_01"]
    assert pairs[0].output.name == "im_00_SR.png" and pairs[0].target.name == "im_00_HR.png"

    write_results_folder(tmp_path / "custom", "out", "ref", count=2)
    (tmp_path / "custom" / "manifest.json").write_text(json.dumps({"output_visual": "out", "target_visual": "ref"}))
    assert find_result_pairs(tmp_path / "custom")[1:] == ("out", "ref")
    # Arguments win over the manifest; the folder may also be the images folder itself.
    assert find_result_pairs(tmp_path / "custom" / "images", "real_A", "ref")[1:] == ("real_A", "ref")


@pytest.mark.parametrize("case, message", [
    ("missing_folder", r"results folder .*nowhere does not exist"),
    ("no_outputs", r"no output images in .*empty.*fake_B or SR"),
    ("missing_reference",
     r"1 of 2 outputs in .*partial.* have no reference <image>_real_B.png \(first: im_01_fake_B.png\)"),
    ("size_mismatch", r"im_00_fake_B.png is 24x24 .* but its reference .*im_00_real_B.png is 20x20"),
])
def test_evaluate_script_errors_name_the_folder_and_the_fix(tmp_path, case, message):
    folder = {"missing_folder": tmp_path / "nowhere", "no_outputs": tmp_path / "empty",
              "missing_reference": tmp_path / "partial", "size_mismatch": tmp_path / "sizes"}[case]
    if case == "no_outputs":
        write_image(folder / "images" / "x_real_A.png", np.zeros((8, 8), np.uint8))
    elif case == "missing_reference":
        write_results_folder(folder, "fake_B", "real_B", count=2)
        (folder / "images" / "im_01_real_B.png").unlink()
    elif case == "size_mismatch":
        write_results_folder(folder, "fake_B", "real_B", count=1)
        write_image(folder / "images" / "im_00_real_B.png", np.zeros((20, 20), np.uint8))
    with pytest.raises(UserError, match=message):
        evaluate_script.main([str(folder)])


def test_evaluate_script_exits_with_status_2_and_one_message(tmp_path):
    result = run_script("scripts/evaluate.py", str(tmp_path / "nowhere"), cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: results folder {tmp_path / 'nowhere'} does not exist"


def save_tiny_pix2pix(checkpoints: Path, name: str) -> None:
    torch.manual_seed(0)
    generator = define_G(3, 1, 8, "resnet_6blocks", "batch", True, "normal", 0.02)
    (checkpoints / name).mkdir(parents=True)
    torch.save(generator.state_dict(), checkpoints / name / "latest_net_G.pth")


def run_test(tmp_path: Path, root: Path, results: str, *args: str) -> Path:
    return test_script.main(["--dataroot", str(root), "--name", "tiny", "--checkpoints_dir", str(tmp_path / "ckpt"),
                             "--results_dir", str(tmp_path / results), "--crop_size", "32", "--num_threads", "0",
                             *TINY_NETWORKS, *args]).web_dir


@pytest.mark.parametrize("save_16bit", [False, True], ids=["8bit", "16bit"])
def test_evaluate_script_reproduces_test_py(tmp_path, monkeypatch, save_16bit):
    root = write_aligned_dataset(tmp_path / "data", {"test": 3}, size=32)
    save_tiny_pix2pix(tmp_path / "ckpt", "tiny")
    monkeypatch.setattr(Pix2PixModel, "metric_crop_border", 3, raising=False)  # as an SR model would set it
    all_metrics = "psnr,ssim,rmse,lpips,lpips_i,lpips_i_ref"
    bit_args = ["--save_16bit"] if save_16bit else []
    web = run_test(tmp_path, root, "results", "--metrics", all_metrics, "--lpips_weights", "random", *bit_args)

    manifest = json.loads((web / "manifest.json").read_text())
    assert manifest["output_visual"] == "fake_B" and manifest["target_visual"] == "real_B"
    assert manifest["bits"] == (16 if save_16bit else 8) and manifest["images"] == 3
    assert manifest["metric_settings"]["crop_border"] == 3
    from_test = read_csv(web / "metrics.csv")
    assert list(from_test[0]) == ["image", "psnr", "ssim", "rmse", "lpips", "lpips_i", "lpips_i_ref"]

    # Cropping 3 pixels was applied: PSNR of the saved files' centres.
    output = read_for_metrics(web / "images" / "0000_fake_B.png").numpy()[0]
    target = read_for_metrics(web / "images" / "0000_real_B.png").numpy()[0]
    assert float(from_test[0]["psnr"]) == pytest.approx(
        peak_signal_noise_ratio(target[3:-3, 3:-3], output[3:-3, 3:-3], data_range=255), abs=1e-6)

    html = (web / "index.html").read_text()
    assert html.index("| Method | PSNR | SSIM | RMSE | LPIPS | LPIPS_I | LPIPS_I_REF |") < html.index("0000_fake_B.png")
    assert f"PSNR {float(from_test[0]['psnr']):.3f} | SSIM {float(from_test[0]['ssim']):.5f}" in html

    table = evaluate_script.main([str(web), "--metrics", all_metrics, "--lpips_weights", "random",
                                  "--out_dir", str(tmp_path / "again")])
    assert len(table) == 3
    from_files = read_csv(tmp_path / "again" / "metrics.csv")
    for row_files, row_test in zip(from_files, from_test, strict=True):
        # PSNR/SSIM/RMSE: the same values to the last digit. LPIPS runs in float32, where batches
        # of other sizes (test.py 1, evaluate.py 3) may round differently.
        assert [row_files[key] for key in ("image", "psnr", "ssim", "rmse")] == \
            [row_test[key] for key in ("image", "psnr", "ssim", "rmse")]
        for key in ("lpips", "lpips_i", "lpips_i_ref"):
            assert float(row_files[key]) == pytest.approx(float(row_test[key]), rel=1e-5, abs=1e-9), key


def test_16_bit_results_are_evaluated_at_16_bits(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"test": 2}, size=32)
    save_tiny_pix2pix(tmp_path / "ckpt", "tiny")
    rmse = {}
    for bits, args in ((8, []), (16, ["--save_16bit"])):
        web = run_test(tmp_path, root, f"results{bits}", "--metrics", "rmse", *args)
        rmse[bits] = [float(row["rmse"]) for row in read_csv(web / "metrics.csv")]
    # Same model, same scale; only the quantisation differs (by at most half an 8-bit level per pixel).
    assert rmse[8] != rmse[16]
    np.testing.assert_allclose(rmse[8], rmse[16], atol=0.5)


def test_test_py_refuses_lpips_without_weights_before_writing_results(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"test": 1}, size=32)
    save_tiny_pix2pix(tmp_path / "ckpt", "tiny")
    with pytest.raises(UserError, match=r"--lpips_weights .*missing.pth: no such file"):
        run_test(tmp_path, root, "results", "--metrics", "psnr,lpips", "--lpips_weights", str(tmp_path / "missing.pth"))
    assert not list((tmp_path / "results").rglob("*.png"))
    with pytest.raises(UserError, match=r"--metrics 'psnr,fid': choose a comma-separated list from psnr,ssim,rmse"):
        run_test(tmp_path, root, "results", "--metrics", "psnr,fid")


class _StubModel:
    """The parts of the model API validate() uses; outputs are a fixed perturbation of the targets."""

    output_visual, target_visual = "fake_B", "real_B"
    metric_crop_border = 2

    def __init__(self, batches: list[torch.Tensor]) -> None:
        self.batches = batches

    @contextlib.contextmanager
    def preserved_state(self, seed: int):
        yield

    def set_input(self, batch: dict) -> None:
        self.real_B, self.image_paths = batch["B"], batch["B_paths"]

    def test(self) -> None:
        self.fake_B = (self.real_B * 0.9 + 0.05).clamp(-1, 1)

    def get_image_paths(self) -> list[str]:
        return self.image_paths


def test_validation_uses_the_evaluator_with_the_models_crop_border():
    generator = torch.Generator().manual_seed(0)
    targets = [torch.rand(2, 1, 20, 20, generator=generator) * 2 - 1 for _ in range(2)]
    loader = [{"B": target, "B_paths": [f"/x/{index}_{i}.png" for i in range(2)]}
              for index, target in enumerate(targets)]
    table = train_script.validate(_StubModel(targets), loader, seed=0)
    assert [row["image"] for row in table.rows] == ["0_0", "0_1", "1_0", "1_1"]
    expected = ImageEvaluator(crop_border=2)(quantise(torch.cat(targets) * 0.9 + 0.05), quantise(torch.cat(targets)))
    for name in ("psnr", "ssim", "rmse"):
        np.testing.assert_allclose([row[name] for row in table.rows], expected[name].numpy(), rtol=0, atol=0)
    assert expected["psnr"][0] != ImageEvaluator()(quantise(targets[0] * 0.9 + 0.05), quantise(targets[0]))["psnr"][0]


def test_metric_table_report_with_infinite_psnr(tmp_path):
    table = MetricTable()
    image = torch.full((1, 1, 16, 16), 100.0, dtype=torch.float64)
    table.add(["same"], ImageEvaluator(("psnr", "rmse"))(image, image))
    markdown = table.write_report(tmp_path, "identical")
    assert "| identical | inf ± nan | 0.00000 ± 0.00000 |" in markdown
    assert json.loads((tmp_path / "metrics.json").read_text())["psnr"] == {"mean": "inf", "std": "nan"}
    assert not (tmp_path / "ssim_boxplot.png").exists()


def basicsr_y(image: np.ndarray) -> np.ndarray:
    """Independent reference: MATLAB's rgb2ycbcr Y of an 8-bit grey (H x W) or RGB (H x W x 3) image, 0..255."""
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    return 16.0 + rgb.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0


@pytest.mark.parametrize("colour", [False, True])
def test_y_channel_metrics_follow_the_sr_papers_convention(tmp_path, colour):
    rng = np.random.default_rng(5)
    shape = (32, 36, 3) if colour else (32, 36)
    target = rng.integers(0, 256, shape).astype(np.uint8)
    output = np.clip(target + rng.normal(0, 10, shape).round(), 0, 255).astype(np.uint8)
    write_image(tmp_path / "res" / "images" / "im_SR.png", output)
    write_image(tmp_path / "res" / "images" / "im_HR.png", target)
    run_script("scripts/evaluate.py", str(tmp_path / "res"), "--metrics", "psnr,psnr_y,ssim_y", "--crop_border", "4",
               cwd=tmp_path)

    row = read_csv(tmp_path / "res" / "metrics.csv")[0]
    y_out, y_ref = basicsr_y(output)[4:-4, 4:-4], basicsr_y(target)[4:-4, 4:-4]
    assert float(row["psnr_y"]) == pytest.approx(peak_signal_noise_ratio(y_ref, y_out, data_range=255), abs=1e-6)
    assert float(row["ssim_y"]) == pytest.approx(structural_similarity(
        y_out, y_ref, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False), abs=1e-6)
    if not colour:  # Y of grey is 16 + 219 g / 255: the same error on a 219/255 scale
        assert float(row["psnr_y"]) - float(row["psnr"]) == pytest.approx(20 * np.log10(255 / 219), abs=1e-6)
