"""Data-parallel training with torchrun: 2 CPU processes (gloo), tiny networks, 2 steps each.

Both processes must end with the same weights. train.py gathers every process's parameter
digests at the end, fails if they differ, and rank 0 logs them; the tests compare those
digests with the checkpoint files rank 0 wrote and with independent runs.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT, write_aligned_dataset
from test_irsrgan import TINY_G, write_sr_dataset
from util.checkpoint import load_state_dict_file, state_dict_digest

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")

# --norm none: no batch-norm statistics (those are per process by design), and every bias has
# a real gradient, so a 2-process run can be compared with one process at twice the batch.
TINY_PIX2PIX = ["--model", "pix2pix", "--netG", "unet_128", "--ngf", "8", "--ndf", "8", "--norm", "none",
                "--no_dropout", "--crop_size", "32", "--load_size", "36", "--n_epochs", "1", "--n_epochs_decay", "0",
                "--num_threads", "0", "--display_id", "0", "--no_html", "--val_freq", "0"]
TINY_IRSRNET = ["--model", "irsrnet", *TINY_G, "--crop_size", "32", "--batch_size", "1", "--num_threads", "0",
                "--display_id", "0", "--no_html", "--deterministic"]


def train(*args: str, processes: int, cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node N train.py ...`` (or plain python for N = 1)."""
    launcher = (["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, *launcher, str(REPO_ROOT / "train.py"), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result


def logged_digests(run_dir: Path) -> dict[str, str]:
    """The per-network parameter digests that every process agreed on (rank 0's train.log)."""
    found = re.findall(r"all 2 processes hold identical weights; parameter digests: (.*)",
                       (run_dir / "train.log").read_text())
    assert found, "train.log lacks the replica check"
    return dict(item.split("=") for item in found[-1].split())


def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 4}, size=32)
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), *TINY_PIX2PIX]
    ddp = train(*common, "--name", "ddp", processes=2, cwd=tmp_path)
    run_dir = tmp_path / "ck" / "ddp"

    # The weights rank 0 saved are those every process ended with (no buffers with --norm none,
    # so a file's digest is its parameters' digest).
    digests = logged_digests(run_dir)
    assert set(digests) == {"G", "D"}
    for name, digest in digests.items():
        assert state_dict_digest(load_state_dict_file(run_dir / f"latest_net_{name}.pth")) == digest
    assert "(device cpu, 2 processes)" in (run_dir / "train.log").read_text()
    assert "epoch 1/1" in ddp.stdout + ddp.stderr

    # Averaging the gradients of 2 x 1 image equals one process stepping on the same 2 images:
    # each process takes every second image of the epoch's order, and the order is shared.
    train(*common, "--name", "single", "--batch_size", "2", processes=1, cwd=tmp_path)
    for name in ("G", "D"):
        expected = load_state_dict_file(tmp_path / "ck" / "single" / f"latest_net_{name}.pth")
        actual = load_state_dict_file(run_dir / f"latest_net_{name}.pth")
        assert expected.keys() == actual.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=f"{name}.{key}")
    # Both runs saw 4 images: images count over all processes.
    for name in ("ddp", "single"):
        state = torch.load(tmp_path / "ck" / name / "latest_state.pth", weights_only=True)
        assert state["progress"]["total_iters"] == 4


def test_resumed_distributed_run_equals_uninterrupted_one(tmp_path):
    root = write_sr_dataset(tmp_path / "data", {"train": 4, "val": 1})
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), *TINY_IRSRNET]
    train(*common, "--name", "straight", "--n_epochs", "2", processes=2, cwd=tmp_path)
    train(*common, "--name", "resumed", "--n_epochs", "1", processes=2, cwd=tmp_path)
    train(*common, "--name", "resumed", "--n_epochs", "2", "--continue_train", processes=2, cwd=tmp_path)

    straight, resumed = logged_digests(tmp_path / "ck" / "straight"), logged_digests(tmp_path / "ck" / "resumed")
    assert set(straight) == {"G", "G_ema"}
    assert resumed == straight  # every process loaded the checkpoint and went on identically
    log = (tmp_path / "ck" / "resumed" / "train.log").read_text()
    assert "resuming at epoch 2" in log
    # Validation ran on rank 0 only, once per epoch, while the other process waited.
    assert len((tmp_path / "ck" / "resumed" / "val_log.csv").read_text().splitlines()) == 1 + 2
