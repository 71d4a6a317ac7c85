"""NaN/Inf in training: the step is blocked before the optimizer applies it, the loss is named,
--nan_policy stops, restores or skips, and no checkpoint with NaN/Inf weights is ever written."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import train
from conftest import write_aligned_dataset
from models import create_model
from options.train_options import TrainOptions
from util.errors import run_cli
from util.image_io import write_image
from util.numerics import NumericalFault, StepGuard

PIX2PIX = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop_size", "32", "--load_size", "36"]
IRSRNET = ["--model", "irsrnet", "--dataset_mode", "sr", "--nf", "4", "--nb", "1", "--gc", "4", "--crop_size", "16",
           "--scale", "4", "--batch_size", "1", "--ema_decay", "0.5"]
QUIET = ["--num_threads", "0", "--display_id", "0", "--no_html", "--val_freq", "0", "--print_freq", "1"]


def faulty_l1(monkeypatch, on_calls: set[int], value: float = math.nan) -> list[int]:
    """Make nn.L1Loss return ``value`` on the given calls (1-based)."""
    calls = []

    def forward(self, prediction, target):
        calls.append(len(calls) + 1)
        loss = F.l1_loss(prediction, target, reduction=self.reduction)
        if calls[-1] not in on_calls:
            return loss
        return loss * value if math.isnan(value) else loss + value  # + Inf: the gradients stay finite

    monkeypatch.setattr(torch.nn.L1Loss, "forward", forward)
    return calls


@pytest.fixture
def pix2pix(tmp_path, aligned_root):
    def build(*args: str):
        opt = TrainOptions().parse(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path / "ck"),
                                    "--name", "nan", *PIX2PIX, *args], save=False)
        model = create_model(opt)
        model.setup()
        return model
    return build


def batch(seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(1, 1, 32, 32, generator=generator) * 2 - 1,
            "B": torch.rand(1, 3, 32, 32, generator=generator) * 2 - 1, "A_paths": ["a"], "B_paths": ["b"]}


def weights(net: torch.nn.Module, buffers: bool = False) -> dict[str, torch.Tensor]:
    """Parameters (the forward pass of a dropped step still moves batch-norm statistics), or the whole state."""
    tensors = net.state_dict() if buffers else dict(net.named_parameters())
    return {key: value.detach().clone() for key, value in tensors.items()}


def same(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


# ------------------------------------------------------------------ the guard
def test_stop_names_the_loss_and_leaves_the_generator_untouched(pix2pix, monkeypatch):
    model = pix2pix()
    guard = StepGuard(model, "stop", max_faults=10)
    faulty_l1(monkeypatch, {2})
    model.set_input(batch(0))
    assert guard.optimize("epoch 1, batch 1")
    before_g, before_d = weights(model.netG), weights(model.netD)
    model.set_input(batch(1))
    with pytest.raises(NumericalFault, match=r"training stopped: non-finite loss G_L1 = nan at epoch 1, batch 2\. "
                                             r"The step was not applied .*--continue_train.*--nan_policy restore"):
        guard.optimize("epoch 1, batch 2")
    assert same(before_g, weights(model.netG))  # G's step was blocked
    assert not same(before_d, weights(model.netD))  # D stepped first, with finite losses
    assert all(p.grad is None for p in model.netG.parameters())


def test_skip_drops_the_batch_and_training_goes_on(pix2pix, monkeypatch, caplog):
    model = pix2pix()
    guard = StepGuard(model, "skip", max_faults=10)
    faulty_l1(monkeypatch, {1})
    model.set_input(batch(0))
    before = weights(model.netG)
    with caplog.at_level("WARNING"):
        assert not guard.optimize("epoch 1, batch 1")
    assert "non-finite loss G_L1 = nan at epoch 1, batch 1: skipped the batch (--nan_policy skip" in caplog.text
    assert same(before, weights(model.netG))
    assert guard.optimize("epoch 1, batch 2") and not same(before, weights(model.netG))


def test_skip_resets_batch_norm_statistics_poisoned_by_a_nan_input(pix2pix, caplog):
    model = pix2pix("--nan_policy", "skip")
    guard = StepGuard(model, "skip", max_faults=10)
    poisoned = batch(0)
    poisoned["B"][0, 0, 5, 5] = math.nan  # one bad pixel of the input
    model.set_input(poisoned)
    with caplog.at_level("WARNING"):
        assert not guard.optimize("epoch 1, batch 1")
    assert "non-finite loss D_real = nan, D_fake = nan" in caplog.text
    assert "reset G.model.2.running_mean, G.model.2.running_var" in caplog.text
    for net in (model.netG, model.netD):
        assert all(torch.isfinite(value).all() for value in net.state_dict().values())


def test_restore_returns_to_the_last_good_state(pix2pix, monkeypatch):
    model = pix2pix()
    guard = StepGuard(model, "restore", max_faults=10)
    for step in range(2):
        model.set_input(batch(step))
        assert guard.optimize(f"step {step}")
    guard.remember()  # as after a checkpoint save
    good_g, good_d = weights(model.netG, buffers=True), weights(model.netD, buffers=True)
    good_adam = model.optimizer_D.state_dict()["state"][0]["exp_avg"].clone()
    model.set_input(batch(2))
    assert guard.optimize("step 2")  # moves on from the good state
    faulty_l1(monkeypatch, {1})
    model.set_input(batch(3))
    assert not guard.optimize("step 3")
    assert same(good_g, weights(model.netG, buffers=True)) and same(good_d, weights(model.netD, buffers=True))
    assert torch.equal(model.optimizer_D.state_dict()["state"][0]["exp_avg"], good_adam)
    model.set_input(batch(4))
    assert guard.optimize("step 4")  # a restored model trains on


def test_nonfinite_gradient_with_finite_losses_is_caught(pix2pix):
    model = pix2pix()
    guard = StepGuard(model, "stop", max_faults=10)
    next(model.netG.parameters()).register_hook(lambda grad: grad * math.inf)
    model.set_input(batch(0))
    with pytest.raises(NumericalFault, match=r"non-finite gradients \(finite losses\) for network\(s\) G at here"):
        guard.optimize("here")


def test_too_many_faults_stop_training(pix2pix, monkeypatch):
    model = pix2pix()
    guard = StepGuard(model, "skip", max_faults=2)
    faulty_l1(monkeypatch, {1, 2, 3})
    model.set_input(batch(0))
    assert not guard.optimize("a") and not guard.optimize("b")
    with pytest.raises(NumericalFault, match=r"non-finite step 3 of this run, more than --nan_max_faults 2"):
        guard.optimize("c")


# ------------------------------------------------------------------ checkpoints
def test_nan_weights_are_never_saved(pix2pix, tmp_path):
    model = pix2pix()
    model.save_checkpoint("latest", {"epoch": 1, "epoch_complete": True, "batches_done": 1, "total_iters": 1})
    folder = tmp_path / "ck" / "nan"
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with torch.no_grad():
        next(model.netD.parameters())[0].fill_(math.inf)
    with pytest.raises(NumericalFault, match=r"refusing to save checkpoint 'latest': network D has NaN/Inf values in "
                                             r"model\.0\.weight\. The checkpoint files already on disk are unchanged"):
        model.save_checkpoint("latest", {"epoch": 2, "epoch_complete": True, "batches_done": 1, "total_iters": 2})
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


# ------------------------------------------------------------------ train.py
def sr_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for index in range(4):
        write_image(tmp_path / "sr" / "train" / f"{index}.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    return tmp_path / "sr"


def finite_checkpoints(folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.glob("*_net_*.pth")):
        assert all(torch.isfinite(value).all() for value in torch.load(path, weights_only=True).values()), path
        names.append(path.name)
    return names


@pytest.mark.parametrize("model", ["pix2pix", "irsrnet"])
def test_train_py_stops_with_one_message_and_finite_checkpoints(tmp_path, monkeypatch, capsys, model):
    root = write_aligned_dataset(tmp_path / "data", {"train": 4}, size=32) if model == "pix2pix" else sr_root(tmp_path)
    faulty_l1(monkeypatch, {3}, math.nan if model == "pix2pix" else math.inf)
    args = ["--dataroot", str(root), "--name", "run", "--checkpoints_dir", str(tmp_path / "ck"),
            *(PIX2PIX if model == "pix2pix" else IRSRNET), *QUIET, "--n_epochs", "1", "--n_epochs_decay", "0",
            "--save_latest_freq", "1"]
    with pytest.raises(SystemExit) as exited:
        run_cli(train.main, args)
    assert exited.value.code == 2
    value = "nan" if model == "pix2pix" else "inf"
    [error] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: training stopped: non-finite loss G_L1 = {value} at epoch 1, batch 3. The step "
                            f"was not applied")
    folder = tmp_path / "ck" / "run"
    finite_checkpoints(folder)
    assert torch.load(folder / "latest_state.pth", weights_only=True)["progress"]["total_iters"] == 2


@pytest.mark.parametrize(("model", "policy"), [("pix2pix", "skip"), ("irsrnet", "restore")])
def test_train_py_goes_on_with_restore_or_skip(tmp_path, monkeypatch, model, policy):
    root = write_aligned_dataset(tmp_path / "data", {"train": 4}, size=32) if model == "pix2pix" else sr_root(tmp_path)
    faulty_l1(monkeypatch, {2, 6})
    args = ["--dataroot", str(root), "--name", "run", "--checkpoints_dir", str(tmp_path / "ck"),
            *(PIX2PIX if model == "pix2pix" else IRSRNET), *QUIET, "--n_epochs", "2", "--n_epochs_decay", "0",
            "--nan_policy", policy]
    train.main(args)
    folder = tmp_path / "ck" / "run"
    assert "2_net_G.pth" in finite_checkpoints(folder)
    action = "skipped the batch" if policy == "skip" else "restored the networks and optimizers of the last good state"
    warnings = [line for line in (folder / "train.log").read_text().splitlines() if "non-finite" in line]
    assert len(warnings) == 2 and all(action in line for line in warnings)
    assert "G_L1 = nan at epoch 1, batch 2" in warnings[0] and "G_L1 = nan at epoch 2, batch 2" in warnings[1]
    log = (folder / "loss_log.txt").read_text()
    assert "nan" not in log and len([line for line in log.splitlines() if line.startswith("(epoch")]) == 6
    progress = torch.load(folder / "latest_state.pth", weights_only=True)["progress"]
    assert progress["total_iters"] == 8  # the dropped batches still count: a resumed run skips the same ones
