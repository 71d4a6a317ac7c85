"""scripts/export.py: tiny trained generators to ONNX and TorchScript, checked against PyTorch,
and the ONNX file through test.py --onnx."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import test as test_script
import train as train_script
from conftest import write_aligned_dataset
from models import create_model
from models.export import GeneratorGraph, load_torchscript
from models.networks.padding import crop_to, pad_to_multiple
from options.test_options import TestOptions
from scripts import export as export_script
from test_irsrgan import TINY_G, write_sr_dataset
from util.errors import UserError, run_cli
from util.image_io import read_image

# test.py and export.py repeat these; unet_128 pads 32x32 images to 128x128: past the side, so by repetition
PIX2PIX = ["--model", "pix2pix", "--netG", "unet_128", "--ngf", "4"]
CASCADE3 = ["--model", "cascade3", "--netG1", "resnet_6blocks", "--ngf", "4", "--stage2_width", "0.125",
            "--denoise_features", "4", "--denoise_depth", "2", "--stage2_input", "coarse+visible"]
IRSRNET = ["--model", "irsrnet", *TINY_G, "--scale", "2"]
TRAIN_ONLY = ["--ndf", "4", "--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0", "--no_html",
              "--val_freq", "0", "--print_freq", "1"]


def train_tiny(tmp_path: Path, root: Path, architecture: list[str], *args: str) -> list[str]:
    """Train two iterations with train.py; return the options test.py and export.py need."""
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "checkpoints"), "--name", "run",
              "--num_threads", "0", *architecture, *args]
    train_script.main([*common, *TRAIN_ONLY, "--max_dataset_size", "2"])
    return common


def assert_checked(checks: list, output: str) -> None:
    """Both files written, each compared at two sizes (the test image and an odd crop), within 1e-4."""
    assert [check.format for check in checks] == ["onnx", "torchscript"]
    for check in checks:
        assert check.path.is_file() and len(check.differences) == 2
        assert max(check.differences.values()) < 1e-4
        assert re.search(rf"^{check.format}: .* max abs difference from PyTorch: [\d.e+-]+ at \d+x\d+, ", output, re.M)


@pytest.mark.parametrize("size", [(128, 256), (100, 200), (40, 52), (20, 300), (1, 1)])
def test_graph_pads_as_the_models_do(size):
    """Index-based padding equals pad_to_multiple: none, reflection, repetition (one side too short)."""
    torch.manual_seed(0)
    network = torch.nn.Conv2d(1, 1, 5, padding=2)
    image = torch.randn(2, 1, *size)
    padded, original = pad_to_multiple(image, 128)
    with torch.no_grad():
        assert torch.equal(GeneratorGraph(network, 128, 1)(image), crop_to(network(padded), original))


def test_pix2pix_export_matches_pytorch_and_runs_through_test_py(tmp_path, capsys):
    root = write_aligned_dataset(tmp_path / "data", {"train": 2, "test": 2}, size=32)
    common = train_tiny(tmp_path, root, PIX2PIX, "--crop_size", "32", "--load_size", "32")
    checks = export_script.main([*common, "--crop_size", "32", "--export_dir", str(tmp_path / "exported")])
    assert_checked(checks, capsys.readouterr().out)
    onnx_file = checks[0].path
    assert onnx_file.name == "latest_generator.onnx"
    # Visible (3 channels) in, infrared (1 channel) out; batch, height and width symbolic.
    graph = onnx.load(onnx_file).graph
    for value, channels in ((graph.input[0], 3), (graph.output[0], 1)):
        dims = value.type.tensor_type.shape.dim
        assert dims[1].dim_value == channels and all(dims[i].dim_param for i in (0, 2, 3))

    # test.py with the ONNX file gives test.py's PyTorch outputs (eval mode), without the checkpoint.
    test_options = [*common, "--crop_size", "32", "--eval"]
    reference = test_script.main([*test_options, "--results_dir", str(tmp_path / "pytorch")])
    shutil.rmtree(tmp_path / "checkpoints" / "run")
    run = test_script.main([*test_options, "--results_dir", str(tmp_path / "onnx"), "--onnx", str(onnx_file),
                            "--batch_size", "2"])
    assert run.images == 2 and run.web_dir.name == "test_onnx_latest_generator"
    for index in range(2):
        expected = read_image(reference.web_dir / "images" / f"{index:04d}_fake_B.png").astype(int)
        actual = read_image(run.web_dir / "images" / f"{index:04d}_fake_B.png").astype(int)
        assert np.abs(expected - actual).max() <= 1  # 8-bit rounding of float noise
    assert json.loads((run.web_dir / "metrics.json").read_text()) and (run.web_dir / "index.html").is_file()

    # Infrared in (AtoB) does not fit a generator exported for visible input.
    with pytest.raises(UserError, match="latest_generator.onnx takes 3-channel images, the data gives 1"):
        test_script.main([*test_options, "--direction", "AtoB", "--output_nc", "1", "--onnx", str(onnx_file),
                          "--results_dir", str(tmp_path / "wrong")])


@pytest.mark.parametrize("model", ["cascade3", "irsrnet"])
def test_cascade3_and_sr_exports_match_pytorch(tmp_path, capsys, model):
    if model == "cascade3":  # three stages, with the visible input into stage 2, as one graph
        root = write_aligned_dataset(tmp_path / "data", {"train": 2, "test": 1}, size=32)
        common = train_tiny(tmp_path, root, CASCADE3, "--crop_size", "32", "--load_size", "32")
        size_options = ["--crop_size", "32"]
    else:  # 1 channel, x2 (pixel-unshuffle: sides padded to even), the averaged generator
        root = write_sr_dataset(tmp_path / "data", {"train": 2, "test": 1})
        common = train_tiny(tmp_path, root, IRSRNET, "--crop_size", "32", "--batch_size", "1")
        size_options = []
    checks = export_script.main([*common, *size_options])
    assert_checked(checks, capsys.readouterr().out)
    assert checks[0].path.parent == tmp_path / "checkpoints" / "run"  # next to the weights by default
    scripted = load_torchscript(checks[1].path, torch.device("cpu"))
    channels = 3 if model == "cascade3" else 1
    scale = 1 if model == "cascade3" else 2
    assert tuple(scripted(torch.zeros(2, channels, 20, 23)).shape) == (2, 1, 20 * scale, 23 * scale)


def test_export_errors_are_one_line(tmp_path, capsys):
    root = write_aligned_dataset(tmp_path / "data", {"test": 1}, size=32)
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path), *PIX2PIX]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(export_script.main, [*common, "--name", "missing"])
    output = capsys.readouterr()
    assert exit_info.value.code == 2 and "Traceback" not in output.out + output.err
    assert re.search(r"^error: checkpoint \S+missing/latest_net_G.pth does not exist; ", output.out + output.err, re.M)
    with pytest.raises(UserError, match="--amp bf16: the export is fp32; drop --amp"):
        export_script.main([*common, "--amp", "bf16"])
    with pytest.raises(UserError, match="--onnx .*nothing.onnx does not exist"):
        test_script.main([*common, "--onnx", str(tmp_path / "nothing.onnx")])


def test_an_export_that_differs_from_pytorch_fails(tmp_path, monkeypatch):
    root = write_aligned_dataset(tmp_path / "data", {"test": 1}, size=32)
    options = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path), "--name", "run", *PIX2PIX]
    model = create_model(TestOptions().parse(options, save=False))
    model.save_checkpoint("latest", {})  # untrained weights stand in for a trained run
    # An exporter that writes nothing and a runtime whose output is NaN: the check must not pass it.
    monkeypatch.setitem(export_script.EXPORTERS, "onnx", lambda graph, example, path: path.touch())
    monkeypatch.setattr(export_script, "load_runner",
                        lambda *_: lambda image: torch.full_like(image[:, :1], float("nan")))
    with pytest.raises(SystemExit, match=r"latest_generator.onnx differs from PyTorch by nan, more than --tolerance"):
        export_script.main([*options, "--crop_size", "32", "--formats", "onnx"])
