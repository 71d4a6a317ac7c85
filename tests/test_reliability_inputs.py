"""Bad inputs, made here: every case is either handled correctly or ends in one clear error
naming the file and the fix; ``--bad_image skip`` leaves bad files out and says so."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import util.image_io
from conftest import run_script, write_aligned_dataset
from data import create_dataset
from hostile_files import png_header_only
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import BadImageError, UserError
from util.image_io import MAX_IMAGE_PIXELS, write_image

TINY_NETWORKS = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4"]
LUMA = np.array([0.299, 0.587, 0.114])


def side_by_side(rng: np.random.Generator, width: int = 64, height: int = 32) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


# The bad files of an upstream-style (side by side) split; the value is the part of the message
# that says what is wrong with the file.
AB_CORPUS = {
    "corrupt.png": r"cannot read image .*corrupt\.png.*Replace or remove the file",
    "truncated.png": r"cannot read image .*truncated\.png.*Replace or remove the file",
    "zero_bytes.png": r"zero_bytes\.png is empty \(0 bytes\); download it again or delete it",
    "text_file.png": r"cannot read image .*text_file\.png.*Replace or remove the file",
    "odd_width.png": r"odd_width\.png has odd width 63; an AB image must be two equal halves",
    "huge.png": rf"huge\.png is 100000x100000 = 10,000,000,000 pixels, more than the limit of {MAX_IMAGE_PIXELS:,}"
                r".*split it into tiles or remove it",
    "too_small.png": r"too_small\.png is 20x16 after resizing, smaller than --crop_size 32; lower --crop_size",
}


def write_ab_corpus(split: Path, good: int = 3) -> list[str]:
    """``good`` usable side-by-side images plus one file of each AB_CORPUS kind; returns the good names."""
    rng = np.random.default_rng(0)
    names = [f"good{index}.png" for index in range(good)]
    for name in names:
        write_image(split / name, side_by_side(rng))
    write_image(split / "truncated.png", side_by_side(rng))
    (split / "truncated.png").write_bytes((split / "truncated.png").read_bytes()[:200])
    (split / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(300))
    (split / "zero_bytes.png").write_bytes(b"")
    (split / "text_file.png").write_text("this is not an image\n")
    (split / "notes.txt").write_text("not an image name: ignored")
    write_image(split / "odd_width.png", side_by_side(rng, width=63))
    (split / "huge.png").write_bytes(png_header_only(100_000, 100_000))
    write_image(split / "too_small.png", side_by_side(rng, width=40, height=16))
    return names


def train_opt(tmp_path: Path, root: Path, *args: str):
    return TrainOptions().parse(["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"),
                                 "--preprocess", "crop", "--crop_size", "32", "--num_threads", "0", *args], save=False)


def test_options_spell_out_the_policy(tmp_path):
    assert train_opt(tmp_path, tmp_path).bad_image == "error"
    with pytest.raises(SystemExit):
        train_opt(tmp_path, tmp_path, "--bad_image", "ignore")


# --------------------------------------------------------------- one error each
@pytest.mark.parametrize("bad_name", sorted(AB_CORPUS))
def test_each_bad_file_is_one_clear_error(tmp_path, bad_name):
    split = tmp_path / "data" / "train"
    write_ab_corpus(split)
    for other in AB_CORPUS:
        if other != bad_name:
            (split / other).unlink()
    with pytest.raises(BadImageError, match=AB_CORPUS[bad_name]) as raised:
        dataset = create_dataset(train_opt(tmp_path, tmp_path / "data"), "train")
        for index in range(len(dataset)):
            dataset[(1, index)]
    assert raised.value.path.endswith(bad_name)
    assert isinstance(raised.value, UserError)  # run_cli: one message, exit status 2


def test_header_problems_fail_when_the_dataset_is_built(tmp_path):
    """Empty, non-image and oversized files stop the run at start-up, not hours into training."""
    split = tmp_path / "data" / "train"
    write_ab_corpus(split)
    with pytest.raises(UserError, match=r"corrupt\.png.*; 3 more of the 10 files .*cannot be used.*check_dataset"):
        create_dataset(train_opt(tmp_path, tmp_path / "data"), "train")


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_pixel_limit_is_checked_from_the_header_of_every_format(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"image{suffix}"
    write_image(path, np.zeros((12, 10, 3), np.uint8))
    monkeypatch.setattr(util.image_io, "MAX_IMAGE_PIXELS", 119)
    with pytest.raises(BadImageError, match=rf"image{suffix} is 10x12 = 120 pixels, more than the limit of 119"):
        util.image_io.read_image(path)
    monkeypatch.setattr(util.image_io, "MAX_IMAGE_PIXELS", 120)
    assert util.image_io.read_image(path).shape == (12, 10, 3)


def test_pair_problems_in_folders_layout(tmp_path):
    root = write_aligned_dataset(tmp_path / "pairs", {"train": 2}, size=32, layout="folders")
    write_image(root / "train" / "A" / "lonely.png", np.zeros((32, 32), np.uint8))  # A without B
    with pytest.raises(UserError, match=r"1 images in .*A and 0 in .*B have no partner .*lonely\.png.*"
                                        r"--bad_image skip"):
        create_dataset(train_opt(tmp_path, root), "train")
    (root / "train" / "A" / "lonely.png").unlink()
    write_image(root / "train" / "B" / "0001.png", np.zeros((32, 40, 3), np.uint8))  # size mismatch
    dataset = create_dataset(train_opt(tmp_path, root), "train")
    with pytest.raises(BadImageError, match=r"differ in size: .*0001\.png is 32x32, .*0001\.png is 40x32; register or"):
        dataset[1]


def test_empty_split_and_missing_dataroot(tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match=r"no images found in .*empty/train .*check --dataroot and --phase"):
        create_dataset(train_opt(tmp_path, tmp_path / "empty"), "train")
    (tmp_path / "empty" / "train" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match=r"no images found in .*empty/train"):
        create_dataset(train_opt(tmp_path, tmp_path / "empty"), "train")
    with pytest.raises(UserError, match=r"--dataroot .*missing does not exist or is not a folder"):
        train_opt(tmp_path, tmp_path / "missing")


# ----------------------------------------------------- handled correctly: formats
def write_folder_pair(root: Path, name: str, infrared: Image.Image, visible: np.ndarray) -> None:
    (root / "train" / "A").mkdir(parents=True, exist_ok=True)
    infrared.save(root / "train" / "A" / f"{name}.png")
    write_image(root / "train" / "B" / f"{name}.png", visible)


def test_every_channel_layout_and_depth_reads_as_documented(tmp_path):
    """A (infrared, 1 channel) from 1/2/3/4-channel, palette, bilevel and 16-bit files."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    deep = rng.integers(0, 65536, (8, 8), dtype=np.uint16)
    palette_image = Image.fromarray(indices, "P")
    palette_image.putpalette(palette.reshape(-1).tolist())
    root = tmp_path / "formats"
    cases = {  # name: (file, expected A in [0, 1])
        "grey": (Image.fromarray(grey, "L"), grey / 255),
        "grey_alpha": (Image.fromarray(np.stack([grey, alpha], -1), "LA"), grey / 255),
        "rgb": (Image.fromarray(rgb, "RGB"), (rgb / 255) @ LUMA),
        "rgba": (Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), (rgb / 255) @ LUMA),
        "palette": (palette_image, (palette[indices] / 255) @ LUMA),
        "bilevel": (Image.fromarray(grey > 127), (grey > 127).astype(float)),
        "grey16": (Image.fromarray(deep), (deep - deep.min()) / (deep.max() - deep.min())),
    }
    for name, (image, _) in cases.items():
        write_folder_pair(root, name, image, np.dstack([grey] * 3))
    dataset = create_dataset(train_opt(tmp_path, root, "--preprocess", "none", "--no_flip"), "train")
    samples = {Path(dataset[index]["A_paths"]).stem: dataset[index] for index in range(len(dataset))}
    assert sorted(samples) == sorted(cases)
    for name, (_, expected) in cases.items():
        a = (samples[name]["A"][0].double() + 1) / 2
        assert samples[name]["A"].shape == (1, 8, 8), name
        assert torch.allclose(a, torch.from_numpy(expected.astype(np.float64)), atol=2e-6), name
        # B: a grey visible image replicated to 3 channels
        assert torch.allclose((samples[name]["B"].double() + 1) / 2, torch.from_numpy(grey / 255).expand(3, 8, 8),
                              atol=1e-6)


# ------------------------------------------------------------------ skip policy
def test_skip_leaves_out_exactly_the_bad_files_and_keeps_the_order(tmp_path, caplog):
    split = tmp_path / "data" / "train"
    good = write_ab_corpus(split)
    clean = tmp_path / "clean" / "train"
    clean.mkdir(parents=True)
    for name in good:
        (clean / name).write_bytes((split / name).read_bytes())
    with caplog.at_level("WARNING"):
        dataset = create_dataset(train_opt(tmp_path, tmp_path / "data", "--bad_image", "skip"), "train")
    reference = create_dataset(train_opt(tmp_path, tmp_path / "clean"), "train")
    assert [path.name for path, _ in dataset.pairs] == good
    assert sorted(Path(path).name for path, _ in dataset.skipped) == sorted(AB_CORPUS)
    for path, why in dataset.skipped:
        assert f"leaving out {path} ({why})" in caplog.text
    assert "--bad_image skip: 7 files left out of split train" in caplog.text
    # Same samples as a clean copy of the split, key for key: data order and augmentation (and
    # so a resumed run) are those of a dataset without the bad files.
    for key in [(epoch, index) for epoch in (1, 2) for index in range(len(good))]:
        for side in ("A", "B"):
            assert torch.equal(dataset[key][side], reference[key][side]), (key, side)


def test_skip_checks_in_worker_processes_give_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setattr("data.base_dataset._PARALLEL_CHECK_MIN_ITEMS", 1)
    split = tmp_path / "data" / "train"
    good = write_ab_corpus(split)
    dataset = create_dataset(train_opt(tmp_path, tmp_path / "data", "--bad_image", "skip", "--num_threads", "2"),
                             "train")
    assert [path.name for path, _ in dataset.pairs] == good and len(dataset.skipped) == len(AB_CORPUS)


def test_skip_leaves_out_unpaired_and_mismatched_pairs(tmp_path):
    root = write_aligned_dataset(tmp_path / "pairs", {"train": 3}, size=32, layout="folders")
    write_image(root / "train" / "A" / "lonely.png", np.zeros((32, 32), np.uint8))
    write_image(root / "train" / "B" / "other.png", np.zeros((32, 32, 3), np.uint8))
    write_image(root / "train" / "B" / "0002.png", np.zeros((32, 40, 3), np.uint8))
    dataset = create_dataset(train_opt(tmp_path, root, "--bad_image", "skip"), "train")
    assert [path.name for path, _ in dataset.pairs] == ["0000.png", "0001.png"]
    reasons = {Path(path).parent.name + "/" + Path(path).name: why for path, why in dataset.skipped}
    assert sorted(reasons) == ["A/0002.png", "A/lonely.png", "B/other.png"]
    assert "no partner of the same name in" in reasons["A/lonely.png"]
    assert "differ in size" in reasons["A/0002.png"]


def test_skip_with_nothing_left_is_an_error(tmp_path):
    split = tmp_path / "data" / "train"
    write_ab_corpus(split, good=0)
    with pytest.raises(UserError, match=r"no usable images in split train of .*: --bad_image skip left out all of "
                                        r"them \(first: .*corrupt\.png"):
        create_dataset(train_opt(tmp_path, tmp_path / "data", "--bad_image", "skip"), "train")


# ------------------------------------------------------------ super-resolution
def sr_opt(tmp_path: Path, root: Path, *args: str, train: bool = True):
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--model", "irsrnet",
              "--crop_size", "16", "--scale", "4", "--num_threads", "0", *args]
    if train:
        return TrainOptions().parse(common, save=False)
    return TestOptions().parse([*common, "--results_dir", str(tmp_path / "results")], save=False)


def write_sr_corpus(root: Path) -> None:
    """Paired HR/LR split: 2 good pairs, a truncated HR, a wrong-size LR, an HR smaller than the
    crop, an unpaired HR, a zero-byte LR."""
    rng = np.random.default_rng(2)
    for name in ("a", "b", "truncated", "wrong_lr", "small", "unpaired", "empty_lr"):
        size = 8 if name == "small" else 32
        write_image(root / "HR" / f"{name}.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
        if name != "unpaired":
            lr_size = 6 if name == "wrong_lr" else size // 4
            write_image(root / "LR" / f"{name}.png", rng.integers(0, 256, (lr_size, lr_size), dtype=np.uint8))
    (root / "HR" / "truncated.png").write_bytes((root / "HR" / "truncated.png").read_bytes()[:120])
    (root / "LR" / "empty_lr.png").write_bytes(b"")


def test_sr_bad_files_error_and_skip(tmp_path):
    root = tmp_path / "sr"
    write_sr_corpus(root / "train")
    with pytest.raises(UserError, match=r"1 images in .*HR and 0 in .*LR have no partner .*unpaired\.png"):
        create_dataset(sr_opt(tmp_path, root), "train")
    (root / "train" / "HR" / "unpaired.png").rename(tmp_path / "unpaired.png")
    with pytest.raises(UserError, match=r"empty_lr\.png is empty \(0 bytes\)"):
        create_dataset(sr_opt(tmp_path, root), "train")
    (tmp_path / "unpaired.png").rename(root / "train" / "HR" / "unpaired.png")

    dataset = create_dataset(sr_opt(tmp_path, root, "--bad_image", "skip"), "train")
    assert [hr.name for hr, _ in dataset.items] == ["a.png", "b.png"]
    reasons = {Path(path).name: why for path, why in dataset.skipped}
    assert sorted(reasons) == ["empty_lr.png", "small.png", "truncated.png", "unpaired.png", "wrong_lr.png"]
    assert "smaller than --crop_size 16" in reasons["small.png"]
    assert "with --scale 4 the LR image must be 8x8" in reasons["wrong_lr.png"]
    assert "cannot read image" in reasons["truncated.png"]
    sample = dataset[(1, 0)]
    assert sample["HR"].shape == (1, 16, 16) and sample["LR"].shape == (1, 4, 4)


# ------------------------------------------------------------ the command line
def test_train_with_skip_logs_each_file_and_the_count_per_epoch(tmp_path):
    split = tmp_path / "data" / "train"
    write_ab_corpus(split, good=2)
    result = run_script("train.py", "--dataroot", str(tmp_path / "data"), "--name", "skipping", "--checkpoints_dir",
                        str(tmp_path / "ck"), *TINY_NETWORKS, "--preprocess", "crop", "--crop_size", "32",
                        "--num_threads", "1", "--n_epochs", "2", "--n_epochs_decay", "0", "--display_id", "0",
                        "--bad_image", "skip", cwd=tmp_path)
    log = (tmp_path / "ck" / "skipping" / "train.log").read_text()
    for name in AB_CORPUS:
        assert f"leaving out {split / name} (" in log, name
    assert "training images: 2" in log
    for epoch in (1, 2):
        assert f"end of epoch {epoch}: 7 files of the train split were left out by --bad_image skip" in log
    assert "Traceback" not in result.stdout + result.stderr


def test_test_py_skip_and_error_on_sr_data(tmp_path):
    """test.py on LR/HR pairs with bad files: skip evaluates exactly the good pairs, error names the first."""
    root = tmp_path / "sr"
    write_sr_corpus(root / "test")
    (root / "test" / "HR" / "small.png").unlink()  # evaluation has no crop: a small pair is fine, just not here
    (root / "test" / "LR" / "small.png").unlink()
    common = ["--dataroot", str(root), "--model", "irsrnet", "--dataset_mode", "sr", "--nf", "4", "--nb", "1",
              "--gc", "4", "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir", str(tmp_path / "results"),
              "--name", "sr", "--metrics", "psnr,ssim,rmse"]
    (tmp_path / "ck" / "sr").mkdir(parents=True)
    from models.networks import define_sr_G
    torch.save(define_sr_G(1, 1, 4, 1, 4, 4, "crdb").state_dict(), tmp_path / "ck" / "sr" / "latest_net_G.pth")

    result = run_script("test.py", *common, cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert "error: 1 images in" in output and "unpaired.png" in output

    result = run_script("test.py", *common, "--bad_image", "skip", cwd=tmp_path)
    output = result.stdout + result.stderr
    with open(tmp_path / "results" / "sr" / "test_latest" / "metrics.csv") as handle:
        assert sorted(row["image"] for row in csv.DictReader(handle)) == ["a", "b"]
    assert "test run: 4 files of the test split were left out by --bad_image skip" in output


def test_checkpoint_of_another_architecture_is_one_clear_error(tmp_path):
    """A pix2pix generator given to test.py with other sizes, and to the SR model."""
    from models.networks import define_G

    aligned = write_aligned_dataset(tmp_path / "data", {"test": 1}, size=32)
    write_image(tmp_path / "sr" / "test" / "x.png", np.zeros((32, 32), np.uint8))
    folder = tmp_path / "ck" / "other"
    folder.mkdir(parents=True)
    torch.save(define_G(3, 1, 8, "resnet_6blocks", "batch").state_dict(), folder / "latest_net_G.pth")
    common = ["--name", "other", "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir", str(tmp_path / "results")]
    for args, message in [
        (["--dataroot", str(aligned), "--netG", "resnet_6blocks", "--ngf", "4", "--crop_size", "32"],
         r"latest_net_G\.pth does not fit network G as configured .*; use the --netG/--netD/--norm/--ngf"),
        (["--dataroot", str(tmp_path / "sr"), "--model", "irsrnet", "--nf", "4", "--nb", "1"],
         r"latest_net_G\.pth .*(does not fit|holds no generator|is .* generator)"),
    ]:
        result = run_script("test.py", *common, *args, cwd=tmp_path, check=False)
        output = result.stdout + result.stderr
        assert result.returncode == 2 and "Traceback" not in output, output
        [error_line] = [line for line in output.splitlines() if line.startswith("error:")]
        assert re.search(message, error_line), error_line
