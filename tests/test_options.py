"""Option parsing: upstream flags, derived defaults, model/dataset hooks, clear errors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError

UPSTREAM_TRAIN_FLAGS = [
    "--name", "exp", "--model", "pix2pix", "--direction", "BtoA", "--netG", "unet_256", "--netD", "basic",
    "--ngf", "64", "--ndf", "64", "--norm", "batch", "--init_type", "normal", "--gan_mode", "vanilla",
    "--lambda_L1", "100", "--n_epochs", "3", "--n_epochs_decay", "2", "--lr", "0.0002", "--beta1", "0.5",
    "--lr_policy", "linear", "--batch_size", "1", "--load_size", "286", "--crop_size", "256",
    "--preprocess", "resize_and_crop", "--no_flip", "--serial_batches", "--num_threads", "0",
    "--epoch", "latest", "--epoch_count", "1", "--save_epoch_freq", "5", "--print_freq", "100",
    "--gpu_ids", "-1", "--dataset_mode", "aligned", "--input_nc", "3", "--output_nc", "1",
]


def parse_train(tmp_path: Path, *args: str):
    return TrainOptions().parse(["--checkpoints_dir", str(tmp_path / "ck"), *args])


def test_upstream_flags_are_accepted(tmp_path, aligned_root):
    opt = parse_train(tmp_path, "--dataroot", str(aligned_root), *UPSTREAM_TRAIN_FLAGS)
    assert (opt.name, opt.netG, opt.lambda_L1, opt.n_epochs, opt.no_flip, opt.device) == (
        "exp", "unet_256", 100.0, 3, True, "cpu")


def test_upstream_test_flags_are_accepted(tmp_path, aligned_root):
    opt = TestOptions().parse(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path), "--results_dir",
                               str(tmp_path / "r"), "--phase", "test", "--num_test", "7", "--eval", "--epoch", "3"])
    assert (opt.num_test, opt.eval, opt.epoch, opt.isTrain) == (7, True, "3", False)


def test_channel_defaults_follow_direction(tmp_path, aligned_root):
    visible_to_ir = parse_train(tmp_path, "--dataroot", str(aligned_root), "--direction", "BtoA")
    ir_to_visible = parse_train(tmp_path, "--dataroot", str(aligned_root), "--direction", "AtoB")
    assert (visible_to_ir.input_nc, visible_to_ir.output_nc) == (3, 1)
    assert (ir_to_visible.input_nc, ir_to_visible.output_nc) == (1, 3)


def test_load_size_default_depends_on_phase(tmp_path, aligned_root):
    assert parse_train(tmp_path, "--dataroot", str(aligned_root), "--crop_size", "128").load_size == 143
    opt = TestOptions().parse(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path),
                               "--crop_size", "128"])
    assert opt.load_size == 128


def test_model_hook_sets_defaults_and_adds_options(tmp_path, aligned_root):
    train = parse_train(tmp_path, "--dataroot", str(aligned_root))
    assert (train.gan_mode, train.norm, train.lambda_L1) == ("vanilla", "batch", 100.0)
    test = TestOptions().parse(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path)])
    assert not hasattr(test, "lambda_L1")  # training-only option


def test_dataset_hook_adds_options(tmp_path, aligned_root):
    assert parse_train(tmp_path, "--dataroot", str(aligned_root), "--aligned_layout", "ab").aligned_layout == "ab"


def test_options_are_saved(tmp_path, aligned_root):
    parse_train(tmp_path, "--dataroot", str(aligned_root), "--name", "saved", "--lr", "0.001")
    text = (tmp_path / "ck" / "saved" / "opt.txt").read_text()
    assert re.search(r"\blr: 0\.001\s+\[default: 0\.0002\]", text)
    assert (tmp_path / "ck" / "saved" / "train_opt.txt").exists()


def test_default_name_and_dataroot(tmp_path):
    opt = parse_train(tmp_path)
    assert opt.dataroot_is_default and opt.dataroot.endswith("synthetic_v2ir")
    assert opt.name == "synthetic_v2ir_pix2pix"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nosuchmodel"], "unknown --model 'nosuchmodel'; available: cascade3, irsrgan, irsrnet, pix2pix"),
        (["--dataset_mode", "nosuchdata"], "unknown --dataset_mode 'nosuchdata'; available: aligned, sr"),
        (["--dataroot", "/no/such/folder"], "--dataroot /no/such/folder does not exist"),
        pytest.param(["--device", "cuda"], "CUDA is not available",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")),
        (["--input_nc", "2"], "--input_nc must be 1"),
        (["--n_epochs", "0", "--n_epochs_decay", "0"], "must be at least 1"),
    ],
)
def test_bad_options_fail_clearly(tmp_path, args, message):
    with pytest.raises(UserError) as error:
        parse_train(tmp_path, *args)
    assert message in str(error.value)


def test_unknown_flag_is_rejected(tmp_path):
    with pytest.raises(SystemExit):
        parse_train(tmp_path, "--no_such_flag")


def test_help_lists_model_and_dataset_options(capsys):
    with pytest.raises(SystemExit) as stop:
        TrainOptions().parse(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "--lambda_L1" in text and "--aligned_layout" in text and "--dataroot" in text
