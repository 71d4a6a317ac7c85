"""Regression tests for the defects a hostile probe of train.py/test.py found (issue 18).

Where data-loader workers read files, ``python train.py``/``test.py`` run as subprocesses with the
DEFAULT number of workers, in a process group of their own, so that a hang or a worker left
behind fails the test. Cases without workers go through the same entry point (``run_cli(main)``)
in this process, which saves starting Python and importing torch each time. The damaged files
come from ``hostile_files.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_script, write_aligned_dataset
from data import create_dataset
from data.aligned_dataset import AlignedDataset
from hostile_files import HOSTILE_IMAGES, write_hostile_image
from models.networks import define_G
from options.base_options import BaseOptions
from options.train_options import TrainOptions
from util.errors import BadImageError, UserError
from util.evaluation import MetricTable
from util.image_io import read_image, write_image

TINY = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--preprocess", "crop", "--crop_size", "32"]
TRAIN_WITH_VAL = [*TINY, "--display_id", "0", "--n_epochs", "1", "--n_epochs_decay", "0"]
TRAIN = [*TRAIN_WITH_VAL, "--val_freq", "0"]


def default_workers() -> int:
    workers = BaseOptions().initialize(argparse.ArgumentParser()).get_default("num_threads")
    assert workers > 0  # these tests are about reads inside worker processes
    return workers


def one_error_line(result: subprocess.CompletedProcess, *patterns: str) -> str:
    """The command failed with status 2 and one ``error:`` line matching every pattern, no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "Original" not in output, output
    errors = [line for line in output.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    for pattern in patterns:
        assert re.search(pattern, errors[0]), (pattern, errors[0])
    return errors[0]


def entry_point(script: str, argv: list[str]) -> None:
    """``python <script>.py argv`` through its entry point (run_cli) in this process: for cases
    that need no worker processes, without the cost of starting Python and importing torch."""
    import test as test_py
    import train as train_py
    from util.errors import run_cli

    run_cli(train_py.main if script == "train" else test_py.main, argv)


def entry_point_error(script: str, argv: list[str], caplog: pytest.LogCaptureFixture,
                      capsys: pytest.CaptureFixture[str]) -> str:
    """``entry_point`` of a failing command: its one ``error:`` line (exit status 2, no traceback)."""
    with pytest.raises(SystemExit) as raised:
        entry_point(script, argv)
    output = capsys.readouterr()
    # Before train.py sets up its logging the line goes to pytest's log capture, after it to stdout.
    errors = [f"error: {record.getMessage()}" for record in caplog.records if record.levelname == "ERROR"] + [
        line for line in output.out.splitlines() if line.startswith("error: ")]
    assert raised.value.code == 2 and len(errors) == 1, errors
    assert "Traceback" not in output.out + output.err
    return errors[0]


def train(tmp_path: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    return run_script("train.py", "--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "run",
                      *TRAIN, *args, cwd=tmp_path, check=False, timeout=180, alone=True)


def write_generator(folder: Path, tag: str = "latest") -> Path:
    """A tiny pix2pix generator checkpoint (visible -> infrared) as test.py's TINY options expect."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    path = folder / f"{tag}_net_G.pth"
    torch.save(define_G(3, 1, 4, "resnet_6blocks", "batch", use_dropout=True).state_dict(), path)
    return path


def run_test_py(tmp_path: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    return run_script("test.py", "--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "run",
                      "--results_dir", str(tmp_path / "results"), *TINY, *args, cwd=tmp_path, check=False,
                      timeout=180, alone=True)


# ------------------------------------------------- 1. decode errors inside workers
def test_decode_error_in_a_worker_is_one_line_and_no_process_is_left(tmp_path):
    """Defect 1: train.py with the default workers, a truncated PNG: one line, status 2, no hang."""
    default_workers()
    root = write_aligned_dataset(tmp_path / "data", {"train": 3}, size=32)
    write_hostile_image(root / "train", "truncated.png")
    one_error_line(train(tmp_path, root), r"truncated\.png", r"Replace or remove the file")


def test_decode_error_in_a_test_py_worker_is_one_line(tmp_path):
    """Defect 1, test.py: a PNG whose header claims more rows than its data holds."""
    default_workers()
    root = write_aligned_dataset(tmp_path / "data", {"test": 2}, size=32)
    write_hostile_image(root / "test", "short_data.png")
    write_generator(tmp_path / "ck" / "run")
    one_error_line(run_test_py(tmp_path, root), r"short_data\.png: its pixel data ends after")


def test_skip_leaves_out_every_hostile_image_with_default_workers(tmp_path):
    """Defects 1 and 3: --bad_image skip names and leaves out each hostile image, training completes."""
    default_workers()
    root = write_aligned_dataset(tmp_path / "data", {"train": 2}, size=32)
    for name in HOSTILE_IMAGES:
        write_hostile_image(root / "train", name)
    result = train(tmp_path, root, "--bad_image", "skip")
    assert result.returncode == 0, result.stdout + result.stderr
    log = (tmp_path / "ck" / "run" / "train.log").read_text()
    for name, (_, reason) in HOSTILE_IMAGES.items():
        assert re.search(rf"leaving out \S*{re.escape(name)} \(.*{reason}", log), name
    assert "training images: 2" in log


@pytest.mark.parametrize("name", sorted(HOSTILE_IMAGES))
def test_every_hostile_image_is_one_error_naming_it(tmp_path, name):
    """The corpus through the aligned loader in-process (new loaders: add a case here)."""
    root = write_aligned_dataset(tmp_path / "data", {"train": 1}, size=32)
    write_hostile_image(root / "train", name)
    opt = TrainOptions().parse(["--dataroot", str(root), *TINY, "--num_threads", "0"], save=False)
    with pytest.raises(BadImageError, match=HOSTILE_IMAGES[name][1]):
        dataset = create_dataset(opt, "train")
        for index in range(len(dataset)):
            dataset[(1, index)]


# ------------------------------------------------------- 2. no silent layout fallback
def folders_dataset(tmp_path: Path, names: dict[str, list[str]]) -> Path:
    """``train/<folder>/<file>`` images of 32x32 for each folder name and file name."""
    root = tmp_path / "data"
    for folder, files in names.items():
        for file_name in files:
            channels = (32, 32) if folder.lower() == "a" else (32, 32, 3)
            write_image(root / "train" / folder / file_name, np.full(channels, 128, np.uint8))
    return root


def aligned(root: Path) -> AlignedDataset:
    return create_dataset(TrainOptions().parse(["--dataroot", str(root), *TINY, "--num_threads", "0"], save=False),
                          "train")


def test_a_folder_without_its_partner_is_an_error_naming_it(tmp_path, caplog, capsys):
    """Defect 2 through train.py: train/A/ without train/B/ is not read as side-by-side images."""
    root = folders_dataset(tmp_path, {"A": ["0.png", "1.png"]})
    error = entry_point_error("train", ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), *TRAIN],
                              caplog, capsys)
    assert re.search(r"train/B does not exist, but its partner folder", error)
    (root / "train" / "A").rename(root / "train" / "B")
    with pytest.raises(UserError, match=r"train/A does not exist, but its partner folder"):
        aligned(root)
    root_level = tmp_path / "upper"
    write_image(root_level / "A" / "train" / "0.png", np.zeros((32, 32), np.uint8))
    (root_level / "B").mkdir()
    with pytest.raises(UserError, match=r"upper/B/train does not exist"):
        aligned(root_level)


def test_lower_case_folders_are_the_folders_layout(tmp_path):
    root = folders_dataset(tmp_path, {"a": ["0.png", "1.png"], "b": ["0.png", "1.png"]})
    dataset = aligned(root)
    assert not dataset.is_side_by_side
    assert [(a.parent.name, b.parent.name) for a, b in dataset.pairs] == [("a", "b"), ("a", "b")]
    assert dataset[(1, 0)]["A"].shape == (1, 32, 32)


def test_two_images_with_one_name_are_an_error(tmp_path):
    root = folders_dataset(tmp_path, {"A": ["dup.png", "dup.jpg"], "B": ["dup.png"]})
    with pytest.raises(UserError, match=r"A/dup\.jpg and .*A/dup\.png have the same name once extensions are "
                                        r"removed.*rename or remove one"):
        aligned(root)


# ----------------------------------------------------------- 3. non-finite values
def test_metric_means_leave_out_and_name_images_that_could_not_be_scored(tmp_path):
    """Defect 3: one NaN image no longer makes every mean NaN; the table counts and names it."""
    table = MetricTable()
    table.add(["good1", "bad", "good2"], {"psnr": torch.tensor([20.0, float("nan"), 30.0]),
                                          "ssim": torch.tensor([0.5, 0.7, 0.7])})
    assert table.unscored() == ["bad"]
    assert table.means() == pytest.approx({"psnr": 25.0, "ssim": 0.6})
    report = table.write_report(tmp_path, "run")
    assert "25.000 ± 5.000" in report
    assert "1 of 3 images could not be scored (a metric is NaN) and are left out of the means: bad" in report
    assert json.loads((tmp_path / "metrics.json").read_text())["psnr"]["mean"] == 25.0


# ----------------------------------------- 5. option values: one line before any work
@pytest.mark.parametrize(("script", "args", "message"), [
    ("train", ["--lr", "nan"], r"--lr must be a positive finite number, got nan"),
    ("train", ["--lr", "-1"], r"--lr must be a positive finite number, got -1"),
    ("train", ["--beta1", "2"], r"--beta1 must be in \[0, 1\), got 2"),
    ("train", ["--init_gain", "nan"], r"--init_gain must be a positive finite number, got nan"),
    ("train", ["--ngf", "0"], r"--ngf must be a whole number of at least 1, got 0"),
    ("train", ["--ngf", "-4"], r"--ngf must be a whole number of at least 1, got -4"),
    ("train", ["--num_threads", "-1"], r"--num_threads must be 0 \(load in this process\) or more, got -1"),
    ("train", ["--lr_policy", "step", "--lr_decay_iters", "0"], r"--lr_decay_iters must be a whole number of at "
                                                                 r"least 1, got 0"),
    ("train", ["--max_dataset_size", "-1"], r"--max_dataset_size must be a whole number of at least 1, got -1"),
    ("train", ["--max_dataset_size", "0"], r"--max_dataset_size must be a whole number of at least 1, got 0"),
    ("train", ["--suffix", "{nosuch}"], r"--suffix '\{nosuch\}' is not a valid template \(KeyError"),
    ("train", ["--suffix", "{"], r"--suffix '\{' is not a valid template \(ValueError"),
    ("train", ["--name", "n" * 300], r"--name is 300 bytes long; at most 200 are allowed"),
    ("train", ["--checkpoints_dir", "FILE"], r"--checkpoints_dir .*a_file is a file, not a folder"),
    ("test", ["--aspect_ratio", "0"], r"--aspect_ratio must be a positive finite number, got 0"),
    ("test", ["--aspect_ratio", "-1"], r"--aspect_ratio must be a positive finite number, got -1"),
    ("test", ["--aspect_ratio", "nan"], r"--aspect_ratio must be a positive finite number, got nan"),
    ("test", ["--num_test", "-1"], r"--num_test must be a whole number of at least 1, got -1"),
    ("test", ["--results_dir", "FILE"], r"--results_dir .*a_file is a file, not a folder"),
])
def test_bad_option_values_are_one_line_before_any_work(tmp_path, caplog, capsys, script, args, message):
    """Defect 5, through each script's entry point (run_cli, as ``python train.py``/``test.py`` runs it);
    nothing is created under the output folders."""
    (tmp_path / "a_file").write_text("not a folder")
    root = write_aligned_dataset(tmp_path / "data", {"train": 1, "test": 1}, size=32)
    outputs = ["--checkpoints_dir", str(tmp_path / "ck")]
    if script == "test":
        outputs += ["--results_dir", str(tmp_path / "results")]
    argv = ["--dataroot", str(root), *outputs, *TINY, *(str(tmp_path / "a_file") if arg == "FILE" else arg
                                                         for arg in args)]
    assert re.search(message, entry_point_error(script, argv, caplog, capsys))
    assert not (tmp_path / "ck").exists() and not (tmp_path / "results").exists()


# ------------------------------------------------ 4. a late error never costs an epoch
def test_bad_validation_image_keeps_the_epoch_and_resume_finishes_it(tmp_path):
    """Defect 4: a truncated val/ image (read by the default workers) after epoch 1: the error names it,
    checkpoint 'latest' holds the epoch's training, and once the file is fixed --continue_train
    only validates, steps the schedule and saves."""
    default_workers()
    root = write_aligned_dataset(tmp_path / "data", {"train": 2, "val": 1}, size=32)
    write_hostile_image(root / "val", "truncated.png")
    args = TRAIN_WITH_VAL
    result = run_script("train.py", "--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name",
                        "run", *args, cwd=tmp_path, check=False, timeout=180, alone=True)
    one_error_line(result, r"val/truncated\.png", r"validation after epoch 1; its training is saved in checkpoint "
                                                  r"'latest'")
    state = torch.load(tmp_path / "ck" / "run" / "latest_state.pth", weights_only=True)
    assert state["progress"] == {"epoch": 1, "epoch_complete": False, "batches_done": 2, "total_iters": 2}

    (root / "val" / "truncated.png").unlink()
    entry_point("train", ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "run", *args,
                          "--continue_train", "--num_threads", "0"])
    log = (tmp_path / "ck" / "run" / "train.log").read_text()
    assert "resuming at epoch 1 (2 batches of it done, 2 images seen)" in log
    assert "validation (1 images)" in log
    state = torch.load(tmp_path / "ck" / "run" / "latest_state.pth", weights_only=True)
    assert state["progress"]["epoch_complete"] is True


# ------------------------------------------------------------- 6. checkpoint integrity
def saved_checkpoint(tmp_path: Path, root: Path) -> Path:
    """Checkpoint 'latest' of a tiny pix2pix run (made in-process: no training needed)."""
    from models import create_model

    opt = TrainOptions().parse(["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "run",
                                *TRAIN], save=False)
    model = create_model(opt)
    model.setup()
    model.save_checkpoint("latest", {"epoch": 1, "epoch_complete": True, "batches_done": 1, "total_iters": 1})
    return model.save_dir


@pytest.mark.parametrize(("script", "file_name", "damage", "message"), [
    ("train", "latest_state.pth", "random_bytes_in_the_middle", r"latest_state\.pth is damaged: its record .* fails "
                                                                r"its CRC check|cannot read checkpoint .*latest_state"),
    ("train", "latest_state.pth", "bare_tensor", r"latest_state\.pth is not a training state written by train\.py "
                                                 r"\(it holds Tensor\)"),
    ("test", "latest_net_G.pth", "random_bytes_in_the_middle", r"latest_net_G\.pth is damaged|cannot read checkpoint "
                                                               r".*latest_net_G\.pth"),
    ("test", "latest_state.pth", "bare_tensor", r"latest_state\.pth is not a training state"),
    ("test", "latest_net_G.pth", "nan_weights", r"latest_net_G\.pth holds NaN or infinite weights"),
    ("test", "latest_net_G.pth", "changed_weights", r"is inconsistent: latest_net_G\.pth does not match the digest "
                                                    r"recorded in latest_state\.pth"),
])
def test_damaged_checkpoints_are_one_error_naming_the_file(tmp_path, caplog, capsys, script, file_name, damage,
                                                           message):
    """Defect 6: resume (train.py --continue_train) and test.py refuse damaged files clearly."""
    import hostile_files

    root = write_aligned_dataset(tmp_path / "data", {"train": 1, "test": 1}, size=32)
    folder = saved_checkpoint(tmp_path, root)
    getattr(hostile_files, damage)(folder / file_name)
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "run"]
    argv = [*common, *TRAIN, "--continue_train"] if script == "train" else [
        *common, *TINY, "--results_dir", str(tmp_path / "results")]
    assert re.search(message, entry_point_error(script, argv, caplog, capsys))


@pytest.mark.parametrize(("file_name", "damage", "message"), [
    ("latest_net_G_ema.pth", "nan_weights", r"latest_net_G_ema\.pth holds NaN or infinite weights"),
    ("latest_net_G_ema.pth", "changed_weights", r"inconsistent: latest_net_G_ema\.pth does not match the digest"),
])
def test_damaged_sr_checkpoints_are_refused_by_test_py(tmp_path, caplog, capsys, file_name, damage, message):
    """Defect 6 for the SR models, whose test.py loads one generator file of any layout."""
    import hostile_files
    from models import create_model

    for index in range(2):
        write_image(tmp_path / "data" / "test" / f"{index}.png", np.full((32, 32), 40 * index, np.uint8))
    sr = ["--model", "irsrnet", "--nf", "4", "--nb", "1", "--gc", "4", "--dataroot", str(tmp_path / "data"),
          "--checkpoints_dir", str(tmp_path / "ck"), "--name", "sr"]
    model = create_model(TrainOptions().parse([*sr, "--crop_size", "32"], save=False))
    model.setup()
    model.save_checkpoint("latest", {"epoch": 1, "epoch_complete": True, "batches_done": 1, "total_iters": 1})
    getattr(hostile_files, damage)(model.save_dir / file_name)
    assert re.search(message, entry_point_error("test", [*sr, "--results_dir", str(tmp_path / "results")], caplog,
                                                capsys))


# -------------------------- 7 and 9. test.py: only this run's results, checkpoints only read
def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*"))}


def test_test_py_results_hold_only_this_run_and_checkpoints_are_only_read(tmp_path):
    """Defects 7 and 9: files of an earlier run (more images, old metrics) are gone after a run with
    --num_test 1, and test.py changes nothing under --checkpoints_dir (its options go with the results)."""
    root = write_aligned_dataset(tmp_path / "data", {"test": 2}, size=32)
    write_generator(tmp_path / "ck" / "run")
    web_dir = tmp_path / "results" / "run" / "test_latest"
    for stale in ("images/0001_fake_B.png", "images/other_dataset_fake_B.png", "metrics.json", "metrics.csv"):
        (web_dir / stale).parent.mkdir(parents=True, exist_ok=True)
        (web_dir / stale).write_text("from an earlier run")
    checkpoints = tree(tmp_path / "ck")
    entry_point("test", ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "run",
                         "--results_dir", str(tmp_path / "results"), *TINY, "--num_test", "1", "--num_threads", "0"])
    assert sorted(path.name for path in (web_dir / "images").iterdir()) == ["0000_fake_B.png", "0000_real_A.png",
                                                                            "0000_real_B.png"]
    assert len((web_dir / "metrics.csv").read_text().splitlines()) == 2  # header + the one image
    assert "num_test: 1" in (web_dir / "test_opt.txt").read_text()
    assert tree(tmp_path / "ck") == checkpoints


def test_test_py_without_a_checkpoint_creates_nothing_in_checkpoints_dir(tmp_path, caplog, capsys):
    root = write_aligned_dataset(tmp_path / "data", {"test": 1}, size=32)
    (tmp_path / "ck").mkdir()
    error = entry_point_error("test", ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name",
                                       "run", "--results_dir", str(tmp_path / "results"), *TINY], caplog, capsys)
    assert re.search(r"latest_net_G\.pth does not exist", error)
    assert list((tmp_path / "ck").iterdir()) == []


# -------------------------------------------- 10. SR test.py on a plain folder of images
def test_sr_test_py_upscales_a_plain_folder_of_images(tmp_path):
    """Defect 10: the images of a plain folder are LR input, and the output is --scale times larger."""
    from models.networks import define_sr_G

    for name in ("a", "b"):
        write_image(tmp_path / "frames" / f"{name}.png", np.random.default_rng(0).integers(0, 256, (8, 6), np.uint8))
    (tmp_path / "ck" / "sr").mkdir(parents=True)
    torch.save(define_sr_G(1, 1, 4, 1, 4, 4, "crdb").state_dict(), tmp_path / "ck" / "sr" / "latest_net_G.pth")
    entry_point("test", ["--dataroot", str(tmp_path / "frames"), "--model", "irsrnet", "--nf", "4", "--nb", "1",
                         "--gc", "4", "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir",
                         str(tmp_path / "results"), "--name", "sr", "--num_threads", "0"])
    images = tmp_path / "results" / "sr" / "test_latest" / "images"
    assert sorted(path.name for path in images.iterdir()) == ["a_LR.png", "a_SR.png", "b_LR.png", "b_SR.png"]
    assert read_image(images / "a_LR.png").shape[:2] == (8, 6)
    assert read_image(images / "a_SR.png").shape[:2] == (32, 24)


# ------------------------------------------------------ 8. one run per experiment folder
def test_a_second_run_with_the_same_name_is_one_clear_error(tmp_path, caplog, capsys):
    """Defect 8: while a run (here this process) holds the experiment folder, a second train.py with
    that --name stops at once, before touching it; the lock is released with the run."""
    from util.checkpoint import experiment_lock

    root = write_aligned_dataset(tmp_path / "data", {"train": 1}, size=32)
    folder = tmp_path / "ck" / "run"
    with experiment_lock(folder):
        before = tree(folder)
        error = entry_point_error("train", ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"),
                                            "--name", "run", *TRAIN], caplog, capsys)
        assert re.search(rf"experiment folder {re.escape(str(folder))} is in use by another training run "
                         rf"\(process {os.getpid()}\)", error)
        assert tree(folder) == before
    with experiment_lock(folder):  # released: it can be taken again
        pass


# ------------------------------------------- 11. resume by recorded progress; disk full
def test_resume_follows_recorded_progress_and_drops_stale_interrupted_sets(tmp_path, caplog, capsys):
    """Defect 11: an older 'interrupted' set touched to look newest is not resumed from, and the next
    'latest' save removes it."""
    root = write_aligned_dataset(tmp_path / "data", {"train": 1}, size=32)
    folder = saved_checkpoint(tmp_path, root)  # 'latest': epoch 1 complete, 1 image seen
    for path in folder.glob("latest_*"):
        path.rename(folder / path.name.replace("latest", "interrupted"))
    saved_checkpoint(tmp_path, root)
    state = torch.load(folder / "interrupted_state.pth", weights_only=True)
    state["progress"] = {"epoch": 1, "epoch_complete": False, "batches_done": 0, "total_iters": 0}
    torch.save(state, folder / "interrupted_state.pth")
    for path in folder.glob("interrupted_*"):
        os.utime(path, ns=(4_000_000_000_000_000_000,) * 2)  # the newest files by far
    entry_point("train", ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "run",
                          *TRAIN, "--n_epochs", "2", "--continue_train", "--num_threads", "0"])
    log = (folder / "train.log").read_text()
    assert "resuming from checkpoint 'latest'" in log and "resuming at epoch 2" in log
    assert not list(folder.glob("interrupted_*"))


def test_disk_full_during_a_save_is_one_line_and_the_previous_set_is_intact(tmp_path, monkeypatch, caplog, capsys):
    import errno

    import util.checkpoint

    root = write_aligned_dataset(tmp_path / "data", {"train": 1}, size=32)
    folder = saved_checkpoint(tmp_path, root)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}

    def full_disk(_descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(util.checkpoint.os, "fsync", full_disk)
    error = entry_point_error("train", ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name",
                                        "run", *TRAIN, "--n_epochs", "2", "--continue_train", "--num_threads", "0"],
                              caplog, capsys)
    assert re.search(r"cannot save checkpoint latest_state\.pth in .*run \(.*No space left on device\); the "
                     r"checkpoint set saved before is intact", error)
    after = {path.name: path.read_bytes() for path in folder.iterdir() if path.name in before}
    assert after == before and not list(folder.glob("*.partial"))
