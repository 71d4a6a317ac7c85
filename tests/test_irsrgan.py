"""IRSRNet (PSNR stage) and IRSRGAN (GAN stage) end to end: train.main, then test.main."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from models import create_model
from models.losses.ssim_loss import SSIMLoss
from models.networks import define_sr_G
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError
from util.image_io import read_image, write_image

TINY_G = ["--ngf", "8", "--nb", "1", "--gc", "4"]  # test.py must repeat these
TINY_TRAIN = [*TINY_G, "--crop_size", "64", "--batch_size", "1", "--num_threads", "0", "--print_freq", "1",
              "--display_id", "0", "--no_html"]
TINY_GAN = ["--ndf", "8", "--perceptual_vgg", "random"]


def write_sr_dataset(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """1-channel 8-bit 'HR' images of blocky random content, sizes not multiples of the scale."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        for index in range(count):
            coarse = rng.random((11, 11))
            image = np.kron(coarse, np.ones((8, 8)))[:70 + index, :66 + 3 * index]
            write_image(root / split / f"{index:03d}.png", (image * 255).round().astype(np.uint8))
    return root


@pytest.fixture
def sr_root(tmp_path: Path) -> Path:
    return write_sr_dataset(tmp_path / "data", {"train": 2, "val": 1, "test": 2})


def train(tmp_path: Path, root: Path, model: str, *args: str) -> Path:
    """``python train.py`` in-process; returns the experiment folder."""
    train_script.main(["--model", model, "--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "checkpoints"),
                       *TINY_TRAIN, *(TINY_GAN if model == "irsrgan" else []), *args])
    name = args[args.index("--name") + 1] if "--name" in args else f"{root.name}_{model}"
    return tmp_path / "checkpoints" / name


def run_test(tmp_path: Path, root: Path, model: str, *args: str, results: str = "results") -> Path:
    result = test_script.main(["--model", model, "--dataroot", str(root), "--checkpoints_dir",
                               str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / results),
                               *TINY_G, *args])
    return result.web_dir


def loss_lines(folder: Path) -> list[str]:
    return [line for line in (folder / "loss_log.txt").read_text().splitlines() if line.startswith("(epoch")]


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def test_psnr_stage_then_gan_stage_then_test_on_a_folder(tmp_path, sr_root):
    psnr = train(tmp_path, sr_root, "irsrnet", "--n_epochs", "1")
    for file_name in ("latest_net_G.pth", "latest_net_G_ema.pth", "latest_state.pth", "val_log.csv"):
        assert (psnr / file_name).is_file(), file_name
    lines = loss_lines(psnr)
    assert len(lines) == 2 and re.search(r"\) G_L1: [\d.]+$", lines[-1])
    assert state_dict(psnr / "latest_state.pth")["progress"]["ema_updates"] == 2

    gan = train(tmp_path, sr_root, "irsrgan", "--n_epochs", "1")  # --psnr_checkpoint auto finds the PSNR run
    assert f"generator initialised from {psnr / 'latest_net_G.pth'}" in (gan / "train.log").read_text()
    lines = loss_lines(gan)
    assert len(lines) == 2
    assert re.search(r"\) G_L1: [\d.]+ G_VGG: [\d.]+ G_GAN: [\d.]+ D_real: [\d.]+ D_fake: [\d.]+$", lines[-1])
    assert {"latest_net_G.pth", "latest_net_G_ema.pth", "latest_net_D.pth"} <= {p.name for p in gan.iterdir()}

    web = run_test(tmp_path, sr_root, "irsrgan")
    for index, (height, width) in enumerate([(68, 64), (68, 68)]):  # HR cropped to a multiple of 4
        with Image.open(web / "images" / f"{index:03d}_SR.png") as sr, \
                Image.open(web / "images" / f"{index:03d}_LR.png") as lr:
            assert (sr.mode, sr.size, lr.size) == ("L", (width, height), (width // 4, height // 4))
        assert (web / "images" / f"{index:03d}_HR.png").is_file()
    with open(web / "metrics.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    html = (web / "index.html").read_text()
    assert "000_SR.png" in html and "PSNR" in html

    # Real low-resolution frames: no HR, no metrics; any size.
    frames = tmp_path / "frames"
    write_image(frames / "frame.png", np.random.default_rng(1).integers(0, 256, (13, 21), dtype=np.uint8))
    web = run_test(tmp_path, frames, "irsrgan", "--name", f"{sr_root.name}_irsrgan", "--sr_input", "lr",
                   results="frames")
    assert sorted(p.name for p in (web / "images").iterdir()) == ["frame_LR.png", "frame_SR.png"]
    assert read_image(web / "images" / "frame_SR.png").shape == (52, 84, 1)
    assert not (web / "metrics.csv").exists()


def test_resume_restores_generator_ema_and_its_warm_up(tmp_path, sr_root):
    schedule = ["--n_epochs", "2", "--deterministic"]
    straight = train(tmp_path, sr_root, "irsrnet", *schedule, "--name", "straight")
    train(tmp_path, sr_root, "irsrnet", "--n_epochs", "1", "--deterministic", "--name", "resumed")
    resumed = train(tmp_path, sr_root, "irsrnet", *schedule, "--name", "resumed", "--continue_train")
    for network in ("G", "G_ema"):
        file_name = f"latest_net_{network}.pth"
        expected, actual = state_dict(straight / file_name), state_dict(resumed / file_name)
        assert all(torch.equal(expected[key], actual[key]) for key in expected), network
    assert state_dict(resumed / "latest_state.pth")["progress"]["ema_updates"] == 4
    # The average differs from the weights it tracks: the test above compares two real averages.
    assert not torch.equal(state_dict(resumed / "latest_net_G.pth")["conv_last.weight"],
                           state_dict(resumed / "latest_net_G_ema.pth")["conv_last.weight"])


def gan_options(tmp_path: Path, root: Path, *args: str):
    return TrainOptions().parse(["--model", "irsrgan", "--dataroot", str(root), "--checkpoints_dir",
                                 str(tmp_path / "checkpoints"), *TINY_TRAIN, *TINY_GAN, *args], save=False)


def test_gan_stage_starts_from_the_psnr_generator_or_fails_clearly(tmp_path, sr_root):
    torch.manual_seed(3)
    psnr_generator = define_sr_G(1, 1, 8, 1, 4, 4, "crdb")
    torch.save(psnr_generator.state_dict(), tmp_path / "psnr_G.pth")
    model = create_model(gan_options(tmp_path, sr_root, "--psnr_checkpoint", str(tmp_path / "psnr_G.pth")))
    for key, value in psnr_generator.state_dict().items():
        assert torch.equal(model.netG.state_dict()[key], value)
        assert torch.equal(model.netG_ema.state_dict()[key], value)  # the average starts from it too
    assert model.model_names == ["G", "G_ema", "D"] and model.metric_crop_border == 4

    with pytest.raises(UserError, match=r"_irsrnet/latest_net_G.pth does not exist\. Train the PSNR stage first "
                                        r".*--psnr_checkpoint none"):
        create_model(gan_options(tmp_path, sr_root))
    assert create_model(gan_options(tmp_path, sr_root, "--psnr_checkpoint", "none")).netG is not None
    with pytest.raises(UserError, match="--crop_size 32 is too small for --netD vgg"):
        create_model(gan_options(tmp_path, sr_root, "--psnr_checkpoint", "none", "--crop_size", "32"))


def test_vgg_weights_names_a_file_and_its_old_spellings_still_work(tmp_path, sr_root, caplog):
    """--vgg_weights is a VGG19 file in every model; the no-file choice is --perceptual_vgg."""
    assert gan_options(tmp_path, sr_root).vgg_weights is None
    with pytest.raises(UserError, match="missing.pth does not exist"):
        create_model(gan_options(tmp_path, sr_root, "--psnr_checkpoint", "none", "--vgg_weights",
                                 str(tmp_path / "missing.pth"), "--perceptual_vgg", "torchvision"))
    create_model(gan_options(tmp_path, sr_root, "--psnr_checkpoint", "none", "--vgg_weights", "random"))
    assert "--vgg_weights random is deprecated: --vgg_weights names a file; use --perceptual_vgg random" in caplog.text


def test_gan_step_updates_generator_discriminator_and_average(tmp_path, sr_root):
    torch.manual_seed(0)
    model = create_model(gan_options(tmp_path, sr_root, "--psnr_checkpoint", "none", "--batch_size", "2"))
    model.setup()
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks().items()}
    model.set_input({"LR": torch.rand(2, 1, 16, 16) * 2 - 1, "HR": torch.rand(2, 1, 64, 64) * 2 - 1,
                     "LR_paths": ["a", "b"], "HR_paths": ["a", "b"]})
    model.optimize_parameters()
    assert model.SR.shape == (2, 1, 64, 64)
    for name, net in model.networks().items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
    losses = model.get_current_losses()
    assert list(losses) == ["G_L1", "G_VGG", "G_GAN", "D_real", "D_fake"]
    assert all(np.isfinite(value) for value in losses.values())


def test_ssim_term_joins_the_pixel_loss_of_both_stages(tmp_path, sr_root):
    batch = {"LR": torch.rand(2, 1, 16, 16) * 2 - 1, "HR": torch.rand(2, 1, 64, 64) * 2 - 1,
             "LR_paths": ["a", "b"], "HR_paths": ["a", "b"]}
    for model_name, extra, names in [("irsrnet", [], ["G_L1", "G_SSIM"]),
                                     ("irsrgan", [*TINY_GAN, "--psnr_checkpoint", "none"],
                                      ["G_L1", "G_SSIM", "G_VGG", "G_GAN", "D_real", "D_fake"])]:
        torch.manual_seed(0)
        opt = TrainOptions().parse(["--model", model_name, "--dataroot", str(sr_root), "--checkpoints_dir",
                                    str(tmp_path / "checkpoints"), *TINY_TRAIN, *extra, "--lambda_L1", "2",
                                    "--lambda_ssim", "0.5"], save=False)
        model = create_model(opt)
        model.setup()
        model.set_input(batch)
        model.optimize_parameters()  # SR is the output before the step
        losses = model.get_current_losses()
        assert list(losses) == names
        expected_ssim = 0.5 * SSIMLoss()(model.SR.detach(), model.HR).item()
        expected_l1 = 2 * (model.SR.detach() - model.HR).abs().mean().item()
        assert losses["G_SSIM"] == pytest.approx(expected_ssim, rel=1e-5)
        assert losses["G_L1"] == pytest.approx(expected_l1, rel=1e-5)


def write_generator_files(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    files = {}
    for seed, network in enumerate(("G", "G_ema")):
        torch.manual_seed(seed)
        files[network] = define_sr_G(1, 1, 8, 1, 4, 4, "crdb").state_dict()
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(files[network], folder / f"latest_net_{network}.pth")
    return files


@pytest.mark.parametrize(("args", "expected"), [([], "G_ema"), (["--test_weights", "raw"], "G"),
                                                 (["--test_weights", "ema"], "G_ema")])
def test_test_time_weights_prefer_the_average(tmp_path, sr_root, args, expected):
    files = write_generator_files(tmp_path / "checkpoints" / "run")
    opt = TestOptions().parse(["--model", "irsrgan", "--dataroot", str(sr_root), "--name", "run", "--checkpoints_dir",
                               str(tmp_path / "checkpoints"), *TINY_G, *args], save=False)
    model = create_model(opt)
    model.setup()
    assert all(torch.equal(model.netG.state_dict()[key], value) for key, value in files[expected].items())


def test_tiled_test_equals_whole_image_test(tmp_path, sr_root, monkeypatch):
    write_generator_files(tmp_path / "checkpoints" / "run")
    whole = run_test(tmp_path, sr_root, "irsrnet", "--name", "run", results="whole")
    import models.irsrnet_model as irsrnet_model

    calls = []
    tiled_upscale = irsrnet_model.tiled_upscale
    monkeypatch.setattr(irsrnet_model, "tiled_upscale", lambda *a: calls.append(a[2:]) or tiled_upscale(*a))
    tiled = run_test(tmp_path, sr_root, "irsrnet", "--name", "run", "--tile", "8", "--tile_pad", "24")
    assert calls == [(8, 24), (8, 24)]
    for index in range(2):
        expected = read_image(whole / "images" / f"{index:03d}_SR.png").astype(int)
        actual = read_image(tiled / "images" / f"{index:03d}_SR.png").astype(int)
        assert np.abs(expected - actual).max() <= 1  # equal up to 8-bit rounding of float noise


@pytest.mark.parametrize("model", ["irsrnet", "irsrgan"])
def test_sr_models_refuse_paired_visible_infrared_data(tmp_path, aligned_root, model):
    options = TestOptions().parse(["--model", model, "--dataset_mode", "aligned", "--dataroot", str(aligned_root),
                                   "--checkpoints_dir", str(tmp_path), *TINY_G])
    with pytest.raises(UserError, match=f"--model {model} needs --dataset_mode sr"):
        create_model(options)
