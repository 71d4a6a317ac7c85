"""cascade3: stages, schedules, training and testing through the CLI, and the table script."""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from conftest import REPO_ROOT, write_aligned_dataset
from models import create_model
from models.cascade3_model import parse_stage_epochs, progressive_phase
from options.train_options import TrainOptions
from util.errors import UserError

# Tiny networks; test.py must repeat the architecture flags.
ARCHITECTURE = ["--model", "cascade3", "--netG1", "resnet_6blocks", "--ngf", "4", "--stage2_width", "0.125",
                "--denoise_features", "4", "--denoise_depth", "3"]
TRAIN = [*ARCHITECTURE, "--ndf", "4", "--crop_size", "32", "--load_size", "36", "--num_threads", "0",
         "--print_freq", "1", "--val_freq", "0"]
STAGE_NETWORKS = ("G1", "G2", "G3")


def tiny_model(*args: str):
    opt = TrainOptions().parse([*TRAIN, "--checkpoints_dir", "unused", *args], save=False)
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    return model


def tiny_batch(size: int = 32) -> dict:
    torch.manual_seed(1)
    return {"A": torch.rand(1, 1, size, size) * 2 - 1, "B": torch.rand(1, 3, size, size) * 2 - 1,
            "A_paths": ["a.png"], "B_paths": ["b.png"]}


def parameters(model, name: str) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in getattr(model, f"net{name}").named_parameters()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(before[key], after[key]) for key in before)


def test_stage_epochs_and_progressive_phases():
    assert parse_stage_epochs("1,2,0") == (1, 2, 0)
    for bad in ("1,1", "a,b,c", "1,-1,1"):
        with pytest.raises(UserError, match="--stage_epochs"):
            parse_stage_epochs(bad)
    assert [progressive_phase(epoch, (1, 1, 1)) for epoch in range(1, 6)] == [
        "stage1", "stage2", "stage3", "joint", "joint"]
    assert [progressive_phase(epoch, (0, 2, 0)) for epoch in range(1, 4)] == ["stage2", "stage2", "joint"]


@pytest.mark.parametrize("stage2_input", ["coarse", "coarse+visible"])
def test_each_stage_forward_and_backward(stage2_input):
    model = tiny_model("--stage2_input", stage2_input)
    model.set_input(tiny_batch(40))  # not a multiple of any stage: padded and cropped back
    model.forward()
    for visual in model.visual_names:
        image = getattr(model, visual)
        assert image.shape[-2:] == (40, 40) and image.min() >= -1 and image.max() <= 1, visual
    assert model.stage1.shape[1] == model.stage2.shape[1] == model.fake_B.shape[1] == model.mask.shape[1] == 1
    for stage, output in (("G1", model.stage1), ("G2", model.stage2), ("G3", model.fake_B)):
        net = getattr(model, f"net{stage}")
        net.zero_grad()
        output.abs().mean().backward(retain_graph=True)
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0, stage


def test_joint_training_sends_the_final_loss_into_stage_one():
    model = tiny_model("--cascade_train", "joint")
    model.begin_epoch(1)
    model.set_input(tiny_batch())
    model.forward()
    torch.nn.functional.l1_loss(model.fake_B, model.real_B).backward()  # the final output's loss alone
    assert next(model.netG1.parameters()).grad.abs().sum() > 0  # stage 1's first convolution
    before = {name: parameters(model, name) for name in (*STAGE_NETWORKS, "D")}
    model.optimize_parameters()
    assert all(changed(before[name], parameters(model, name)) for name in (*STAGE_NETWORKS, "D"))
    losses = model.get_current_losses()
    assert all(losses[name] > 0 for name in ("G1_L1", "G2_L1", "G2_edge", "G3_L1", "G_GAN", "D_real", "D_fake"))


@pytest.mark.parametrize(("epoch", "trained"), [(1, {"G1"}), (2, {"G2"}), (3, {"G3", "D"}),
                                                (4, {"G1", "G2", "G3", "D"})])
def test_progressive_training_steps_only_the_active_stage(epoch, trained):
    model = tiny_model("--cascade_train", "progressive", "--stage_epochs", "1,1,1")
    model.begin_epoch(epoch)
    model.set_input(tiny_batch())
    before = {name: parameters(model, name) for name in (*STAGE_NETWORKS, "D")}
    model.optimize_parameters()
    assert {name for name in before if changed(before[name], parameters(model, name))} == trained
    losses = model.get_current_losses()
    assert (losses["G1_L1"] > 0) == ("G1" in trained) and (losses["G2_edge"] > 0) == ("G2" in trained)
    assert (losses["G3_L1"] > 0) == ("G3" in trained) and (losses["D_fake"] > 0) == ("D" in trained)


def test_stage_one_target_is_the_blurred_target_or_the_target():
    blurred = tiny_model("--stage1_target", "blur", "--stage1_sigma", "2")
    blurred.set_input(tiny_batch())
    target = blurred.stage1_target()
    assert target.shape == blurred.real_B.shape and target.std() < 0.5 * blurred.real_B.std()
    full = tiny_model("--stage1_target", "full")
    full.set_input(tiny_batch())
    assert torch.equal(full.stage1_target(), full.real_B)


def train(tmp_path: Path, root: Path, name: str, *args: str) -> None:
    train_script.main(["--dataroot", str(root), "--name", name, "--checkpoints_dir", str(tmp_path / "ck"),
                       *TRAIN, *args])


def loss_lines(tmp_path: Path, name: str) -> list[dict[str, float]]:
    text = (tmp_path / "ck" / name / "loss_log.txt").read_text()
    return [{key: float(value) for key, value in re.findall(r"(\w+): ([\d.]+)", line.split(")", 1)[1])}
            for line in text.splitlines() if line.startswith("(epoch")]


def stage_weights(tmp_path: Path, name: str, tag: str, net: str) -> dict[str, torch.Tensor]:
    state = torch.load(tmp_path / "ck" / name / f"{tag}_net_{net}.pth", weights_only=True)
    return {key: value for key, value in state.items() if "running" not in key and "num_batches" not in key}


def test_joint_cli_two_iterations_then_test_shows_every_stage(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 2, "test": 2}, size=40)
    train(tmp_path, root, "joint", "--n_epochs", "1", "--n_epochs_decay", "0")
    folder = tmp_path / "ck" / "joint"
    assert {f"latest_net_{name}.pth" for name in (*STAGE_NETWORKS, "D")} <= {p.name for p in folder.iterdir()}
    lines = loss_lines(tmp_path, "joint")
    assert len(lines) == 2 and set(lines[0]) == {"G1_L1", "G2_L1", "G2_edge", "G3_L1", "G_GAN", "D_real", "D_fake"}

    run = test_script.main(["--dataroot", str(root), "--name", "joint", "--checkpoints_dir", str(tmp_path / "ck"),
                            "--results_dir", str(tmp_path / "results"), *ARCHITECTURE, "--preprocess", "none"])
    images = {p.name for p in (run.web_dir / "images").iterdir()}
    visuals = ("real_A", "stage1", "mask", "stage2", "fake_B", "real_B")
    assert images == {f"{index:04d}_{visual}.png" for index in range(2) for visual in visuals}
    with Image.open(run.web_dir / "images" / "0000_stage2.png") as stage2:
        assert (stage2.mode, stage2.size) == ("L", (40, 40))  # any size: 40 is no multiple of 16
    with open(run.web_dir / "metrics.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_progressive_cli_runs_each_phase_and_freezes_earlier_stages(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 1, "test": 1}, size=32)
    train(tmp_path, root, "prog", "--cascade_train", "progressive", "--stage_epochs", "1,1,1", "--n_epochs", "4",
          "--n_epochs_decay", "0", "--save_epoch_freq", "1")
    active = [{name for name, value in line.items() if value > 0} for line in loss_lines(tmp_path, "prog")]
    assert active == [{"G1_L1"}, {"G2_L1", "G2_edge"}, {"G3_L1", "G_GAN", "D_real", "D_fake"},
                      {"G1_L1", "G2_L1", "G2_edge", "G3_L1", "G_GAN", "D_real", "D_fake"}]

    def same(net: str, tag_a: str, tag_b: str) -> bool:
        a, b = stage_weights(tmp_path, "prog", tag_a, net), stage_weights(tmp_path, "prog", tag_b, net)
        return all(torch.equal(a[key], b[key]) for key in a)

    assert same("G1", "1", "3") and not same("G1", "3", "4")
    assert not same("G2", "1", "2") and same("G2", "2", "3") and not same("G2", "3", "4")
    assert same("G3", "1", "2") and not same("G3", "2", "3")
    run = test_script.main(["--dataroot", str(root), "--name", "prog", "--checkpoints_dir", str(tmp_path / "ck"),
                            "--results_dir", str(tmp_path / "results"), *ARCHITECTURE, "--crop_size", "32"])
    assert run.images == 1 and (run.web_dir / "images" / "0000_fake_B.png").is_file()


def test_progressive_resume_continues_in_the_right_phase(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 2}, size=32)
    schedule = ["--cascade_train", "progressive", "--stage_epochs", "1,1,0", "--n_epochs_decay", "0",
                "--serial_batches"]
    train(tmp_path, root, "straight", *schedule, "--n_epochs", "3")
    train(tmp_path, root, "resumed", *schedule, "--n_epochs", "2")
    train(tmp_path, root, "resumed", *schedule, "--n_epochs", "3", "--continue_train")
    assert [line["G1_L1"] > 0 for line in loss_lines(tmp_path, "resumed")] == [True, True, False, False, True, True]
    for net in (*STAGE_NETWORKS, "D"):
        expected, resumed = stage_weights(tmp_path, "straight", "latest", net), stage_weights(tmp_path, "resumed",
                                                                                              "latest", net)
        assert all(torch.equal(expected[key], resumed[key]) for key in expected), net


def test_doubleunet_pix2pix_baseline_through_the_cli(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 2, "test": 1}, size=32)
    architecture = ["--model", "pix2pix", "--netG", "doubleunet", "--ngf", "8"]
    train_script.main(["--dataroot", str(root), "--name", "du", "--checkpoints_dir", str(tmp_path / "ck"),
                       *architecture, "--ndf", "4", "--crop_size", "32", "--load_size", "36", "--num_threads", "0",
                       "--n_epochs", "1", "--n_epochs_decay", "0", "--val_freq", "0"])
    opt_args = ["--dataroot", str(root), "--name", "du", "--checkpoints_dir", str(tmp_path / "ck"), *architecture,
                "--crop_size", "32"]
    run = test_script.main([*opt_args, "--results_dir", str(tmp_path / "results")])
    assert (run.web_dir / "images" / "0000_fake_B.png").is_file()


def test_bad_cascade_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="--stage_epochs"):
        tiny_model("--cascade_train", "progressive", "--stage_epochs", "1,1")
    with pytest.raises(UserError, match="--vgg_weights .*missing.pth"):
        tiny_model("--vgg_weights", str(tmp_path / "missing.pth"), "--stage2_width", "1")


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    """A state dict in torchvision's VGG19 layout (random weights: nothing is downloaded)."""
    import torchvision

    torch.manual_seed(0)
    features = torchvision.models.vgg19().features.eval()
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()}, path)
    return path, features


def test_doubleunet_pix2pix_vgg_weights_make_its_encoder_imagenet_vgg19(vgg19_file):
    path, reference = vgg19_file
    opt = TrainOptions().parse(["--model", "pix2pix", "--netG", "doubleunet", "--ngf", "64", "--direction", "BtoA",
                                "--vgg_weights", str(path), "--checkpoints_dir", "unused"], save=False)
    encoder = create_model(opt).netG.encoder1.eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    normalised = ((x + 1) / 2 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():  # the visible input through the encoder is VGG19's features
        assert torch.allclose(encoder(x)[2], reference[:18](normalised), atol=1e-4)


def test_cascade3_plain_vgg19_stage2_encoder_holds_the_imagenet_filters(vgg19_file):
    path, reference = vgg19_file
    model = tiny_model("--stage2_encoder", "vgg19", "--stage2_width", "1", "--vgg_weights", str(path))
    encoder = model.netG2.encoder1
    assert not any(isinstance(module, torch.nn.modules.batchnorm._NormBase) for module in encoder.modules())
    assert all(group.shortcut is None for group in encoder.groups)
    expected = [layer.weight for layer in reference if isinstance(layer, torch.nn.Conv2d)]
    for conv, weight in zip(encoder.convolutions()[1:], expected[1:]):
        assert torch.equal(conv.weight, weight)
    residual = tiny_model("--stage2_width", "1").netG2.encoder1  # the default keeps shortcuts and normalisation
    assert all(group.shortcut is not None for group in residual.groups)


def test_vgg_weights_on_a_generator_without_vgg19_is_one_line(tmp_path, vgg19_file):
    root = write_aligned_dataset(tmp_path / "data", {"train": 1})
    result = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), "--dataroot", str(root), "--model",
                             "pix2pix", "--netG", "unet_128", "--vgg_weights", str(vgg19_file[0]), "--checkpoints_dir",
                             str(tmp_path / "ck")], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "--vgg_weights" in output and "--netG unet_128" in output


def test_lambda_gan_scales_the_final_adversarial_loss():
    losses = {}
    for weight in ("1", "0.25"):
        model = tiny_model("--lambda_GAN", weight)
        model.set_input(tiny_batch())
        model.optimize_parameters()
        losses[weight] = float(model.loss_G_GAN)
    assert losses["0.25"] == pytest.approx(0.25 * losses["1"], rel=1e-5)
