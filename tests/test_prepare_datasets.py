"""Dataset converters: fake raw KAIST, LLVIP, paired-folder and SR trees in, checked layouts out."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, run_script
from data import create_dataset
from data.offline.preparation import Sample, carve_splits
from options.test_options import TestOptions
from util.errors import UserError
from util.image_io import read_image, write_image

LUMA = np.array([0.299, 0.587, 0.114])


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prepare_kaist = load_script("prepare_kaist")
prepare_llvip = load_script("prepare_llvip")
pair_folders = load_script("pair_folders")
prepare_sr = load_script("prepare_sr")


def smooth_image(rng: np.random.Generator, width: int, height: int, channels: int, peak: int = 255) -> np.ndarray:
    """Blocky random image (survives JPEG nearly unchanged), ``H x W x C``."""
    coarse = rng.random((height // 4 + 1, width // 4 + 1, channels))
    image = np.kron(coarse, np.ones((4, 4, 1)))[:height, :width]
    return np.round(image * peak).astype(np.uint8 if peak == 255 else np.uint16)


def write_kaist(root: Path, videos: dict[str, list[str]], frames: int = 8, size: tuple[int, int] = (40, 32)) -> Path:
    """``root/images/setXX/VYYY/{lwir,visible}/IZZZZZ.jpg``; lwir is grey stored as 3 channels, as KAIST's."""
    rng = np.random.default_rng(0)
    for set_name, video_names in videos.items():
        for video in video_names:
            for frame in range(frames):
                folder = root / "images" / set_name / video
                write_image(folder / "visible" / f"I{frame:05d}.jpg", smooth_image(rng, *size, 3))
                write_image(folder / "lwir" / f"I{frame:05d}.jpg", np.repeat(smooth_image(rng, *size, 1), 3, axis=2))
    return root


STANDARD_VIDEOS = {"set00": ["V000"], "set03": ["V000"], "set06": ["V000"], "set09": ["V000"]}


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def outputs_by_split(out: Path) -> dict[str, list[str]]:
    entries = manifest(out)["entries"]
    return {split: sorted(e["key"] for e in entries if e["split"] == split) for split in {e["split"] for e in entries}}


def test_kaist_standard_split_every_nth_frame_and_day_night(tmp_path):
    raw = write_kaist(tmp_path / "kaist", STANDARD_VIDEOS)
    out = tmp_path / "out"
    prepare_kaist.main(["--src", str(raw), "--out", str(out), "--every", "4"])
    splits = outputs_by_split(out)
    # every 4th frame starting at frame 3, as KAIST's train-all-04 list (I00003, I00007, ...)
    assert splits == {"train": ["set00_V000_I00003", "set00_V000_I00007", "set03_V000_I00003", "set03_V000_I00007"],
                      "test": ["set06_V000_I00003", "set06_V000_I00007", "set09_V000_I00003", "set09_V000_I00007"]}
    entries = {entry["key"]: entry for entry in manifest(out)["entries"]}
    assert entries["set00_V000_I00003"]["time"] == "day" and entries["set09_V000_I00007"]["time"] == "night"
    entry = entries["set03_V000_I00007"]
    assert entry["outputs"] == {"A": "train/A/set03_V000_I00007.png", "B": "train/B/set03_V000_I00007.png"}
    assert entry["sizes"]["A"] == [40, 32] and entry["sources"]["A"].endswith("set03/V000/lwir/I00007.jpg")
    assert manifest(out)["options"]["every"] == 4 and manifest(out)["layout"] == "folders"

    infrared = read_image(out / "train" / "A" / "set03_V000_I00007.png")
    visible = read_image(out / "train" / "B" / "set03_V000_I00007.png")
    source_ir = read_image(raw / "images" / "set03" / "V000" / "lwir" / "I00007.jpg").astype(float)
    assert infrared.shape == (32, 40, 1) and infrared.dtype == np.uint8
    assert np.abs(infrared[..., 0] - source_ir @ LUMA).max() <= 1.0
    assert np.array_equal(visible, read_image(raw / "images" / "set03" / "V000" / "visible" / "I00007.jpg"))
    # the aligned dataset reads the result
    opt = TestOptions().parse(["--dataroot", str(out), "--checkpoints_dir", str(tmp_path / "ck"),
                               "--preprocess", "none"], save=False)
    sample = create_dataset(opt, "test")[0]
    assert sample["A"].shape == (1, 32, 40) and sample["B"].shape == (3, 32, 40)


def test_kaist_night_filter_explicit_val_videos_and_image_list(tmp_path):
    raw = write_kaist(tmp_path / "kaist", {"set00": ["V000"], "set03": ["V000", "V001"], "set09": ["V000"]}, frames=4)
    listing = tmp_path / "test-night-list.txt"
    listing.write_text("set09/V000/I00001\nset09/V000/I00002\n")
    out = tmp_path / "out"
    prepare_kaist.main(["--src", str(raw), "--out", str(out), "--time", "night", "--val_videos", "set03/V001",
                        "--test_list", str(listing)])
    splits = outputs_by_split(out)
    assert splits["train"] == [f"set03_V000_I{i:05d}" for i in range(4)]
    assert splits["val"] == [f"set03_V001_I{i:05d}" for i in range(4)]
    assert splits["test"] == ["set09_V000_I00001", "set09_V000_I00002"]
    with pytest.raises(UserError, match="set00/V009"):
        prepare_kaist.main(["--src", str(raw), "--out", str(out), "--val_videos", "set00/V009"])


def test_carved_val_split_takes_whole_groups_per_stratum_deterministically():
    def make() -> list[Sample]:
        return [Sample(f"{time}{video}_{frame}", {}, "train", group=f"{time}{video}", stratum=time)
                for time in ("day", "night") for video in range(10) for frame in range(3)]

    first, second, other_seed = make(), make(), make()
    carve_splits(first, {"val": 0.2, "test": 0.1}, seed=5)
    carve_splits(second, {"val": 0.2, "test": 0.1}, seed=5)
    carve_splits(other_seed, {"val": 0.2, "test": 0.1}, seed=6)
    assert [s.split for s in first] == [s.split for s in second]
    assert [s.split for s in first] != [s.split for s in other_seed]
    for split, groups_per_stratum in (("val", 2), ("test", 1)):
        for time in ("day", "night"):
            chosen = [s for s in first if s.split == split and s.stratum == time]
            assert len({s.group for s in chosen}) == groups_per_stratum and len(chosen) == 3 * groups_per_stratum
    with pytest.raises(UserError, match="sum"):
        carve_splits(make(), {"val": 0.6, "test": 0.5}, seed=0)


def test_kaist_side_by_side_with_centre_crop_and_resize(tmp_path):
    raw = tmp_path / "kaist"
    # a bright 20x16 centre inside a dark frame: the crop must keep exactly the centre
    frame = np.full((32, 40, 3), 20, np.uint8)
    frame[8:24, 10:30] = 200
    for modality in ("lwir", "visible"):
        write_image(raw / "set06" / "V000" / modality / "I00000.png", frame)
    out = tmp_path / "out"
    prepare_kaist.main(["--src", str(raw), "--out", str(out), "--layout", "ab", "--center_crop", "20x16",
                        "--resize", "10x8"])
    side_by_side = read_image(out / "test" / "set06_V000_I00000.png")
    assert side_by_side.shape == (8, 20, 3) and np.all(side_by_side == 200)
    assert manifest(out)["layout"] == "ab" and manifest(out)["entries"][0]["sizes"]["AB"] == [20, 8]
    with pytest.raises(UserError, match="larger than"):
        prepare_kaist.main(["--src", str(raw), "--out", str(out), "--center_crop", "64"])


def test_converters_skip_finished_outputs_and_redo_wrong_ones(tmp_path):
    raw = write_kaist(tmp_path / "kaist", {"set00": ["V000"]}, frames=3)
    out = tmp_path / "out"
    arguments = ["--src", str(raw), "--out", str(out)]
    prepare_kaist.main(arguments)
    assert {e["status"] for e in manifest(out)["entries"]} == {"written"}
    target = out / "train" / "A" / "set00_V000_I00001.png"
    before = target.stat().st_mtime_ns
    write_image(out / "train" / "B" / "set00_V000_I00002.png", np.zeros((5, 5, 3), np.uint8))  # wrong size

    prepare_kaist.main(arguments)
    statuses = {e["key"]: e["status"] for e in manifest(out)["entries"]}
    assert statuses == {"set00_V000_I00000": "skipped", "set00_V000_I00001": "skipped",
                        "set00_V000_I00002": "written"}
    assert target.stat().st_mtime_ns == before
    assert read_image(out / "train" / "B" / "set00_V000_I00002.png").shape == (32, 40, 3)

    prepare_kaist.main(arguments + ["--overwrite"])
    assert {e["status"] for e in manifest(out)["entries"]} == {"written"}


def test_parallel_workers_write_the_same_files(tmp_path):
    raw = write_kaist(tmp_path / "kaist", {"set00": ["V000"], "set06": ["V000"]}, frames=3)
    for workers in ("1", "2"):
        prepare_kaist.main(["--src", str(raw), "--out", str(tmp_path / workers), "--workers", workers])
    files = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*.png"))
    assert len(files) == 12
    assert all((tmp_path / "1" / f).read_bytes() == (tmp_path / "2" / f).read_bytes() for f in files)


def test_unpaired_and_corrupt_sources_are_reported(tmp_path):
    raw = write_kaist(tmp_path / "kaist", {"set00": ["V000"]}, frames=4)
    (raw / "images" / "set00" / "V000" / "visible" / "I00003.jpg").unlink()
    with pytest.raises(UserError, match="no partner.*--skip_unpaired"):
        prepare_kaist.main(["--src", str(raw), "--out", str(tmp_path / "out")])

    (raw / "images" / "set00" / "V000" / "lwir" / "I00001.jpg").write_bytes(b"")  # empty download
    out = tmp_path / "out"
    with pytest.raises(UserError, match="1 of 3 items could not be converted"):
        prepare_kaist.main(["--src", str(raw), "--out", str(out), "--skip_unpaired"])
    # the rest was written and the failure is recorded
    failed = manifest(out)["failed"]
    assert [f["key"] for f in failed] == ["set00_V000_I00001"] and "empty" in failed[0]["error"]
    assert sorted(p.name for p in (out / "train" / "A").iterdir()) == ["set00_V000_I00000.png", "set00_V000_I00002.png"]

    result = run_script("scripts/prepare_kaist.py", "--src", str(raw), "--out", str(out), "--skip_unpaired",
                        cwd=tmp_path, check=False)
    assert result.returncode == 2 and "could not be converted" in result.stderr


def test_llvip_keeps_its_split_and_carves_val_in_frame_blocks(tmp_path):
    rng = np.random.default_rng(1)
    raw = tmp_path / "LLVIP"
    names = {"train": [f"{n:06d}" for n in range(10000, 10012)], "test": ["190001", "190002"]}
    for split, stems in names.items():
        for stem in stems:
            write_image(raw / "infrared" / split / f"{stem}.jpg", np.repeat(smooth_image(rng, 32, 24, 1), 3, axis=2))
            write_image(raw / "visible" / split / f"{stem}.jpg", smooth_image(rng, 32, 24, 3))
    out = tmp_path / "out"
    prepare_llvip.main(["--src", str(raw), "--out", str(out), "--val_fraction", "0.4", "--val_block", "4"])
    splits = outputs_by_split(out)
    assert splits["test"] == ["190001", "190002"]
    val_blocks = {int(key) // 4 for key in splits["val"]}
    assert len(splits["val"]) == 4 * len(val_blocks) and len(val_blocks) == 1  # round(0.4 * 3 blocks) = 1 block
    assert not val_blocks & {int(key) // 4 for key in splits["train"]}
    assert read_image(out / "test" / "A" / "190001.png").shape == (24, 32, 1)


def write_pair_folders(root: Path, names: list[str], infrared_suffix: str = ".tif") -> None:
    rng = np.random.default_rng(2)
    for name in names:
        write_image(root / "a" / f"{name}{infrared_suffix}", smooth_image(rng, 24, 16, 1, peak=60000)[..., 0])
        write_image(root / "b" / f"{name}.png", smooth_image(rng, 24, 16, 3))


def test_pair_folders_keeps_16_bit_and_splits_by_folder(tmp_path):
    names = [f"seq{seq}/{frame:03d}" for seq in range(5) for frame in range(2)]
    write_pair_folders(tmp_path, names)
    out = tmp_path / "out"
    pair_folders.main(["--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), "--out", str(out),
                       "--val_fraction", "0.2", "--test_fraction", "0.2", "--split_unit", "folder"])
    splits = outputs_by_split(out)
    assert sorted(len(keys) for keys in splits.values()) == [2, 2, 6]
    for keys in splits.values():  # both frames of a sequence land in the same split
        assert len(keys) == 2 * len({key.split("/")[0] for key in keys})
    key = splits["val"][0]
    infrared = read_image(out / "val" / "A" / f"{key}.png")
    assert infrared.dtype == np.uint16 and np.array_equal(infrared, read_image(tmp_path / "a" / f"{key}.tif"))

    with pytest.raises(UserError, match="--layout folders"):
        pair_folders.main(["--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), "--out", str(tmp_path / "ab"),
                           "--layout", "ab"])


def test_pair_folders_keeps_existing_splits_and_refuses_size_mismatch(tmp_path):
    rng = np.random.default_rng(3)
    for split in ("train", "test"):
        write_image(tmp_path / "a" / split / "x.png", smooth_image(rng, 16, 16, 1)[..., 0])
        write_image(tmp_path / "b" / split / "x.png", smooth_image(rng, 16, 16, 3))
    out = tmp_path / "out"
    pair_folders.main(["--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), "--out", str(out),
                       "--val_fraction", "0"])
    assert outputs_by_split(out) == {"train": ["x"], "test": ["x"]}

    write_image(tmp_path / "b" / "test" / "x.png", smooth_image(rng, 20, 16, 3))
    with pytest.raises(UserError, match="1 of 2 items"):
        pair_folders.main(["--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), "--out", str(out)])
    assert "same size" in manifest(out)["failed"][0]["error"]
    pair_folders.main(["--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), "--out", str(tmp_path / "resized"),
                       "--resize", "8"])
    assert read_image(tmp_path / "resized" / "test" / "B" / "x.png").shape == (8, 8, 3)


def test_pair_folders_follows_symlinked_source_folders_once(tmp_path):
    """dev/A/<source> -> the camera's own folder: the images behind the links are paired, and a link back up
    the tree (a cycle) neither loops nor counts an image twice."""
    write_pair_folders(tmp_path / "cam", ["x", "y"], infrared_suffix=".png")
    for side in ("a", "b"):
        (tmp_path / "dev" / side).mkdir(parents=True)
        (tmp_path / "dev" / side / "cam").symlink_to(tmp_path / "cam" / side, target_is_directory=True)
        (tmp_path / "cam" / side / "loop").symlink_to(tmp_path / "dev" / side, target_is_directory=True)
    out = tmp_path / "out"
    pair_folders.main(["--a", str(tmp_path / "dev" / "a"), "--b", str(tmp_path / "dev" / "b"), "--out", str(out),
                       "--val_fraction", "0", "--test_fraction", "0"])
    assert outputs_by_split(out) == {"train": ["cam/x", "cam/y"]}


def write_tisr(root: Path, bit16: bool = False) -> None:
    """The thermal SR challenge layout: <split>/<camera folder>/<n>.<ext>."""
    rng = np.random.default_rng(4)
    peak, suffix = (60000, ".png") if bit16 else (255, ".jpg")
    for split, count in (("train", 6), ("test", 2)):
        for index in range(count):
            hr = smooth_image(rng, 42, 30, 1, peak)
            write_image(root / split / "640_flir_hr" / f"{index:03d}{suffix}",
                        hr[..., 0] if bit16 else np.repeat(hr, 3, axis=2))
            write_image(root / split / "160_domo_lr" / f"{index:03d}{suffix}", smooth_image(rng, 12, 8, 3))


def sr_sample(tmp_path: Path, root: Path, phase: str, *args: str) -> dict:
    opt = TestOptions().parse(["--dataroot", str(root), "--model", "irsrnet", "--phase", phase,
                               "--checkpoints_dir", str(tmp_path / "ck"), *args], save=False)
    return create_dataset(opt, phase)[0]


def test_prepare_sr_tisr_layout_with_fixed_lr_sets_matching_the_sr_dataset(tmp_path):
    write_tisr(tmp_path / "tisr")
    out = tmp_path / "out"
    prepare_sr.main(["--src", str(tmp_path / "tisr"), "--include", "*640_flir_hr/*", "--out", str(out),
                     "--val_fraction", "0.2", "--lr_scales", "2", "4"])
    splits = outputs_by_split(out)
    assert splits["test"] == ["640_flir_hr/000", "640_flir_hr/001"]
    assert len(splits["val"]) == 1 and len(splits["train"]) == 5  # the other camera is left out
    train_key = splits["train"][0]
    train_image = read_image(out / "train" / f"{train_key}.png")
    assert train_image.shape == (30, 42, 1)  # 3 identical channels -> 1, no crop without LR sets
    hr = read_image(out / "test" / "HR" / "640_flir_hr" / "000.png")
    assert hr.shape == (28, 40, 1)  # cropped to a multiple of lcm(2, 4)
    for scale in (2, 4):
        assert read_image(out / "test" / "LR" / f"x{scale}" / "640_flir_hr" / "000.png").shape == (28 // scale,
                                                                                                   40 // scale, 1)
    # the fixed LR set equals the SR dataset's on-the-fly clean LR (up to 8-bit rounding)
    fixed = sr_sample(tmp_path, out, "test", "--sr_input", "paired", "--scale", "4")
    on_the_fly = sr_sample(tmp_path, out, "test", "--sr_input", "hr", "--scale", "4")
    assert fixed["LR"].shape == (1, 7, 10) and torch.equal(fixed["HR"], on_the_fly["HR"])
    assert (fixed["LR"] - on_the_fly["LR"]).abs().max() <= 2.0 / 255 + 1e-6
    assert sr_sample(tmp_path, out, "train")["HR"].shape[0] == 1


def test_prepare_sr_keeps_16_bit(tmp_path):
    write_tisr(tmp_path / "tisr", bit16=True)
    out = tmp_path / "out"
    prepare_sr.main(["--src", str(tmp_path / "tisr"), "--include", "*640_flir_hr/*", "--out", str(out),
                     "--lr_scales", "4", "--lr_splits", "test"])
    hr = read_image(out / "test" / "HR" / "640_flir_hr" / "001.png")
    source = read_image(tmp_path / "tisr" / "test" / "640_flir_hr" / "001.png")
    assert hr.dtype == np.uint16 and np.array_equal(hr, source[:28, :40])
    low = read_image(out / "test" / "LR" / "x4" / "640_flir_hr" / "001.png")
    assert low.dtype == np.uint16 and low.shape == (7, 10, 1)
    # reference: Pillow's antialiased bicubic (a = -0.5, the MATLAB imresize kernel) on the float image
    reference = Image.fromarray(source[:28, :40, 0].astype(np.float32), mode="F").resize((10, 7), Image.BICUBIC)
    assert np.abs(low[..., 0].astype(float) - np.clip(np.asarray(reference), 0, 65535)).max() <= 1.0
