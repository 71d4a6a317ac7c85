"""train.py and test.py end to end, as a user runs them."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_script, write_aligned_dataset
from data.paired_transforms import PairedTransform
from models.networks import define_G
from upstream_layout import random_state_dict, unet_keys
from util.image_io import read_image, tensor_to_image

TINY_NETWORKS = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8"]  # test.py must match these
TINY = [*TINY_NETWORKS, "--crop_size", "32", "--load_size", "36", "--num_threads", "0", "--print_freq", "1"]


def train(tmp_path: Path, root: Path, name: str, *args: str, check: bool = True):
    return run_script("train.py", "--dataroot", str(root), "--name", name, "--checkpoints_dir",
                      str(tmp_path / "checkpoints"), *TINY, *args, cwd=tmp_path, check=check)


def load_weights(tmp_path: Path, name: str, tag: str = "latest") -> dict[str, torch.Tensor]:
    folder = tmp_path / "checkpoints" / name
    weights = {}
    for net in ("G", "D"):
        weights.update({f"{net}.{k}": v for k, v in torch.load(folder / f"{tag}_net_{net}.pth",
                                                                 weights_only=True).items()})
    return weights


def test_two_iterations_then_test(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 4, "val": 2, "test": 3}, size=32)
    result = train(tmp_path, root, "e2e", "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2")
    folder = tmp_path / "checkpoints" / "e2e"
    for file_name in ("latest_net_G.pth", "latest_net_D.pth", "latest_state.pth", "1_net_G.pth", "opt.txt",
                      "train.log"):
        assert (folder / file_name).is_file(), file_name
    log_lines = [line for line in (folder / "loss_log.txt").read_text().splitlines() if line.startswith("(epoch")]
    assert len(log_lines) == 2  # one line per iteration with --print_freq 1
    assert re.match(r"\(epoch: 1, iters: 2, time: [\d.]+, data: [\d.]+\) G_GAN: [\d.]+ G_L1: [\d.]+ D_real: [\d.]+ "
                    r"D_fake: [\d.]+$", log_lines[1])
    with open(folder / "val_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1"] and 0 < float(rows[0]["ssim"]) <= 1
    assert "validation (2 images)" in result.stdout + result.stderr

    result = run_script("test.py", "--dataroot", str(root), "--name", "e2e", "--checkpoints_dir",
                        str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / "results"), *TINY_NETWORKS,
                        "--crop_size", "32", cwd=tmp_path)
    web = tmp_path / "results" / "e2e" / "test_latest"
    images = sorted(p.name for p in (web / "images").iterdir())
    assert len(images) == 9 and "0000_fake_B.png" in images
    with Image.open(web / "images" / "0000_fake_B.png") as output, \
            Image.open(web / "images" / "0000_real_A.png") as src:
        assert (output.mode, output.size, src.mode) == ("L", (32, 32), "RGB")  # infrared saved as 1 channel
    html = (web / "index.html").read_text()
    assert sorted(re.findall(r'src="images/([^"]+)"', html)) == images
    with open(web / "metrics.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 3
    assert re.search(r"\| PSNR .*\| SSIM .*\| RMSE", result.stdout + result.stderr)


def test_resume_equals_uninterrupted_training(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 3, "val": 1}, size=32)
    schedule = ["--n_epochs", "1", "--n_epochs_decay", "1", "--deterministic", "--batch_size", "2"]
    train(tmp_path, root, "straight", *schedule)
    # Stop after epoch 1 (a shorter schedule), then resume with the full one.
    train(tmp_path, root, "resumed", "--n_epochs", "1", "--n_epochs_decay", "0", "--deterministic", "--batch_size", "2")
    result = train(tmp_path, root, "resumed", *schedule, "--continue_train")
    assert "resuming at epoch 2" in result.stdout + result.stderr
    expected, resumed = load_weights(tmp_path, "straight"), load_weights(tmp_path, "resumed")
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    state = torch.load(tmp_path / "checkpoints" / "resumed" / "latest_state.pth", weights_only=True)
    assert state["progress"] == {"epoch": 2, "epoch_complete": True, "batches_done": 2, "total_iters": 6}


def test_resume_in_the_middle_of_an_epoch(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 4}, size=32)
    # Two loader workers here (none in the test above): augmentation must not depend on them.
    schedule = ["--n_epochs", "1", "--n_epochs_decay", "1", "--deterministic", "--num_threads", "2"]
    train(tmp_path, root, "run", *schedule, "--save_latest_freq", "1", "--save_by_iter")
    final = load_weights(tmp_path, "run")
    middle = torch.load(tmp_path / "checkpoints" / "run" / "iter_6_state.pth", weights_only=True)
    assert middle["progress"] == {"epoch": 2, "epoch_complete": False, "batches_done": 2, "total_iters": 6}
    result = train(tmp_path, root, "run", *schedule, "--continue_train", "--load_iter", "6")
    assert "resuming at epoch 2 (2 batches of it done, 6 images seen)" in result.stdout + result.stderr
    resumed = load_weights(tmp_path, "run")
    assert all(torch.equal(final[key], resumed[key]) for key in final)


def test_upstream_generator_checkpoint_loads_unchanged(tmp_path):
    """A ``latest_net_G.pth`` laid out exactly as upstream pix2pix writes it."""
    root = write_aligned_dataset(tmp_path / "data", {"test": 1}, size=32)
    state = random_state_dict(unet_keys(7, 3, 1), seed=1)
    (tmp_path / "checkpoints" / "upstream").mkdir(parents=True)
    torch.save(state, tmp_path / "checkpoints" / "upstream" / "latest_net_G.pth")
    run_script("test.py", "--dataroot", str(root), "--name", "upstream", "--checkpoints_dir",
               str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / "results"), "--netG", "unet_128",
               "--preprocess", "none", "--eval", "--save_16bit", cwd=tmp_path)
    saved = read_image(tmp_path / "results" / "upstream" / "test_latest" / "images" / "0000_fake_B.png")[..., 0]
    assert saved.dtype == np.uint16

    net = define_G(3, 1, 64, "unet_128", "batch")
    net.load_state_dict(state)
    net.eval()
    visible = torch.from_numpy(read_image(root / "test" / "0000.png")[:, 32:].transpose(2, 0, 1).copy()).float()
    source = PairedTransform(None, None, False)(visible / 255) * 2 - 1
    padded = torch.nn.functional.pad(source[None], (0, 96, 0, 96), mode="replicate")
    with torch.no_grad():
        expected = tensor_to_image(net(padded)[0, :, :32, :32], bit16=True)
    assert np.array_equal(saved, expected)


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", ["--dataroot", "{tmp}/missing"], r"error: --dataroot .*missing does not exist"),
        ("empty", ["--dataroot", "{tmp}/empty"], r"error: no images found in .*empty/train"),
        ("corrupt", ["--dataroot", "{tmp}/data", "--num_threads", "2"],
         r"error: cannot read image .*0000\.png: .*Replace or remove the file"),
        ("none", ["--model", "cyclegan_typo"], r"error: unknown --model 'cyclegan_typo'; available: .*pix2pix"),
    ],
)
def test_user_errors_give_one_clear_message(tmp_path, setup, args, message):
    if setup == "empty":
        (tmp_path / "empty" / "train").mkdir(parents=True)
    if setup == "corrupt":
        root = write_aligned_dataset(tmp_path / "data", {"train": 2}, size=32)
        (root / "train" / "0000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    argv = [arg.format(tmp=tmp_path) for arg in args]
    result = run_script("train.py", *argv, "--checkpoints_dir", str(tmp_path / "ck"), "--serial_batches",
                        cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert re.search(message, output), output
    assert "Traceback" not in output
