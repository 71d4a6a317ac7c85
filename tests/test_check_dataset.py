"""Dataset checks: headers, misregistration estimate, layout discovery, problems found, CLI, start-up check."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import run_script, write_aligned_dataset
from data import create_dataset
from data.image_headers import read_header
from data.offline.dataset_check import check_dataset, compression_blocking, estimate_shift, format_report
from data.offline.synthetic_v2ir import render_scene
from options.train_options import TrainOptions
from util.errors import UserError
from util.image_io import read_image, write_image


def scene(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A registered infrared (H x W x 1) / visible (H x W x 3) pair of a rendered street scene."""
    sample = render_scene(np.random.default_rng(seed), size)
    return sample.infrared[..., None], sample.visible


def shifted_pair(seed: int, size: int, dx: int, dy: int, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops of one scene where B's content sits (dx, dy) pixels from where it is in A."""
    infrared, visible = scene(seed, size)
    top = left = (size - crop) // 2
    return (infrared[top:top + crop, left:left + crop],
            visible[top - dy:top - dy + crop, left - dx:left - dx + crop])


def test_headers_report_what_the_decoder_returns(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "grey8.png": rng.integers(0, 256, (6, 9), dtype=np.uint8),
        "grey16.png": rng.integers(0, 65536, (6, 9), dtype=np.uint16),
        "colour16.png": rng.integers(0, 65536, (6, 9, 3), dtype=np.uint16),
        "colour8.jpg": rng.integers(0, 256, (6, 9, 3), dtype=np.uint8),
        "grey16.tif": rng.integers(0, 65536, (6, 9), dtype=np.uint16),
    }
    for name, array in files.items():
        write_image(tmp_path / name, array)
    tifffile.imwrite(tmp_path / "float.tif", rng.random((6, 9), dtype=np.float32))
    Image.fromarray(rng.integers(0, 4, (6, 9), dtype=np.uint8), mode="P").save(tmp_path / "palette.png")
    for path in sorted(tmp_path.iterdir()):
        header, image = read_header(path), read_image(path)
        bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 32}[image.dtype]
        assert (header.height, header.width, header.channels, header.bits) == (*image.shape, bits), path.name

    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "html.jpg").write_text("<html>rate limited</html>")
    with pytest.raises(UserError, match="empty"):
        read_header(tmp_path / "empty.png")
    with pytest.raises(UserError, match="cannot read image .*html.jpg"):
        read_header(tmp_path / "html.jpg")


@pytest.mark.parametrize("dx, dy", [(0, 0), (5, -3), (-2, 7)])
def test_estimate_shift_recovers_a_known_infrared_visible_offset(dx, dy):
    infrared, visible = shifted_pair(seed=1, size=160, dx=dx, dy=dy, crop=128)
    estimate = estimate_shift(infrared, visible)
    assert abs(estimate.dx - dx) < 0.75 and abs(estimate.dy - dy) < 0.75
    assert estimate.response > 0.2
    # the same pair at twice the size, correlated at the original size: the shift doubles
    enlarge = dict(dsize=(256, 256), interpolation=cv2.INTER_NEAREST)
    twice = estimate_shift(cv2.resize(infrared, **enlarge)[..., None], cv2.resize(visible, **enlarge), max_side=128)
    assert abs(twice.dx - 2 * estimate.dx) < 0.1 and abs(twice.dy - 2 * estimate.dy) < 0.1


def test_estimate_shift_of_unrelated_images_has_a_low_response():
    infrared, _ = scene(2, 128)
    _, other_visible = scene(3, 128)
    registered = estimate_shift(*scene(2, 128))
    assert estimate_shift(infrared, other_visible).response < registered.response / 2


def write_scene_pairs(root: Path, split: str, count: int, layout: str = "folders", seed: int = 30) -> None:
    """Registered rendered pairs (80x80) in the folders or side-by-side layout."""
    for index in range(count):
        infrared, visible = shifted_pair(seed=seed + index, size=96, dx=0, dy=0, crop=80)
        if layout == "ab":
            write_image(root / split / f"{index}.png", np.concatenate([np.repeat(infrared, 3, axis=2), visible], 1))
        else:
            write_image(root / split / "A" / f"{index}.png", infrared[..., 0])
            write_image(root / split / "B" / f"{index}.png", visible)


def write_problem_dataset(root: Path) -> None:
    """train: 4 good pairs, one shifted by 6 px, one empty file, one truncated file, one
    size mismatch, one unpaired name; test: 2 good pairs."""
    write_scene_pairs(root, "train", 4, seed=10)
    infrared, visible = shifted_pair(seed=20, size=96, dx=6, dy=0, crop=80)
    write_image(root / "train" / "A" / "shifted.png", infrared[..., 0])
    write_image(root / "train" / "B" / "shifted.png", visible)
    write_image(root / "train" / "A" / "empty.png", infrared[..., 0])
    (root / "train" / "B" / "empty.png").write_bytes(b"")
    write_image(root / "train" / "A" / "truncated.png", infrared[..., 0])
    write_image(root / "train" / "B" / "truncated.png", visible)
    data = (root / "train" / "B" / "truncated.png").read_bytes()
    (root / "train" / "B" / "truncated.png").write_bytes(data[: len(data) // 2])
    write_image(root / "train" / "A" / "small.png", infrared[:40, :, 0])
    write_image(root / "train" / "B" / "small.png", visible)
    write_image(root / "train" / "A" / "lonely.png", infrared[..., 0])
    write_scene_pairs(root, "test", 2)


def test_check_finds_every_kind_of_problem(tmp_path):
    write_problem_dataset(tmp_path / "data")
    train, test = check_dataset(tmp_path / "data", registration_pairs=-1)
    assert [train.contents.name, test.contents.name] == ["train", "test"]
    assert train.contents.layout == "folders" and len(train.items) == 8 and len(test.items) == 2
    assert {item.key for item in train.unreadable} == {"empty", "truncated"}
    assert [path.name for path in train.contents.unpaired] == ["lonely.png"]
    assert [item.key for item in train.size_problems] == ["small"]
    assert [item.key for item in train.misregistered] == ["shifted"]
    shifted = train.misregistered[0].registration
    assert abs(shifted.dx - 6) < 0.75 and abs(shifted.dy) < 0.75
    assert all(item.registration.shift < 1.0 for item in train.registered if item.key != "shifted")
    assert test.problem_count == 0 and train.problem_count == 5

    text = format_report([train, test])
    assert "| train | folders (A/B) | 8 | 80x80 (7), 80x40 (1) / 80x80 | 1 / 3 | 8 | 2 | 1 | 1 | 5 | 0 |" in text
    assert "misregistered: shifted: shift (+6." in text and "5 problem(s) found" in text

    # headers only: the truncated file (its header is intact) goes unnoticed, the empty one does not
    quick_train, _ = check_dataset(tmp_path / "data", decode=False, registration_pairs=0)
    assert {item.key for item in quick_train.unreadable} == {"empty"} and not quick_train.registered


def test_check_sr_pairs_with_scale_folders_and_suffixed_names(tmp_path):
    root = tmp_path / "sr"
    for name in ("a", "b"):
        write_image(root / "test" / "HR" / f"{name}.png", np.zeros((32, 40), np.uint16))
    write_image(root / "test" / "LR" / "x4" / "ax4.png", np.zeros((8, 10), np.uint16))
    write_image(root / "test" / "LR" / "x4" / "b.png", np.zeros((8, 11), np.uint16))
    write_image(root / "train" / "c.png", np.zeros((32, 40), np.uint8))
    train, test = check_dataset(root, registration_pairs=0)
    assert (train.contents.name, train.contents.layout, len(train.items)) == ("train", "images", 1)
    assert (test.contents.name, test.contents.layout, test.contents.scale) == ("test (LR/x4)", "sr", 4)
    assert not test.contents.unpaired and [item.key for item in test.size_problems] == ["b"]
    assert "11x8" in test.size_problems[0].size_problem and "is 10x8" in test.size_problems[0].size_problem


def test_check_dataset_script_reads_side_by_side_layout_from_the_manifest(tmp_path):
    root = tmp_path / "ab"
    write_scene_pairs(root, "train", 3, layout="ab")
    write_scene_pairs(root, "val", 1, layout="ab")
    (root / "val" / "broken.png").write_bytes(b"")
    (root / "manifest.json").write_text(json.dumps({"layout": "ab"}))
    result = run_script("scripts/check_dataset.py", str(root), "--csv", str(tmp_path / "items.csv"), "--strict",
                        cwd=tmp_path, check=False)
    assert "| train | ab | 3 | 160x80 | 3 | 8 | 0 | 0 | 0 | 3 | 0 |" in result.stdout
    assert "val: unreadable:" in result.stdout and "1 problem(s) found" in result.stdout
    assert result.returncode == 1  # --strict
    rows = list(csv.DictReader(open(tmp_path / "items.csv")))
    assert [(row["split"], row["status"]) for row in rows] == [("train", "ok")] * 3 + [("val", "ok"),
                                                                                          ("val", "unreadable")]
    assert all(abs(float(row["shift"])) < 1.0 for row in rows if row["status"] == "ok")


def test_aligned_dataset_fails_at_start_up_on_an_empty_file(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 3}, size=32, layout="folders")
    (root / "train" / "B" / "0001.png").write_bytes(b"")
    opt = TrainOptions().parse(["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck")], save=False)
    with pytest.raises(UserError, match=r"^\S*B/0001\.png is empty .*check_dataset\.py") as caught:
        create_dataset(opt, "train")
    assert "more of the" not in str(caught.value)
    (root / "train" / "A" / "0002.png").write_text("not an image")
    with pytest.raises(UserError, match=r"^cannot read image \S*A/0002\.png.*; 1 more of the 6 files of split "
                                        r"train .*B/0001\.png is empty"):
        create_dataset(opt, "train")


def smooth_frame(seed: int, size: int = 96) -> np.ndarray:
    """A thermal-like frame: smooth content plus one grey level of sensor noise."""
    rng = np.random.default_rng(seed)
    content = cv2.GaussianBlur(rng.normal(size=(size, size)), (0, 0), 6)
    return np.clip(100 + 30 * content / content.std() + rng.normal(0, 1, content.shape), 0, 255).astype(np.uint8)


def through_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` as it decodes after a JPEG round trip (the pixels a later PNG would keep)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.array(Image.open(buffer))


def test_compression_blocking_separates_raw_frames_from_jpeg_ones():
    for seed in range(3):
        frame = smooth_frame(seed)
        assert 0.9 < compression_blocking(frame[..., None]) < 1.1
        assert compression_blocking(through_jpeg(frame, 40)[..., None]) > 1.5
        # the grid is anchored at the top-left corner, as JPEG's is: a crop off the grid hides it
        assert compression_blocking(through_jpeg(frame, 40)[4:, 4:, None]) < 1.2
    blocks = np.kron(np.arange(16, dtype=np.uint8).reshape(4, 4) * 10, np.ones((8, 8), np.uint8))
    assert compression_blocking(blocks[..., None]) == math.inf  # steps only on the block lines
    assert compression_blocking(np.full((32, 32, 1), 7, np.uint8)) is None  # flat: undefined
    assert compression_blocking(np.zeros((12, 40, 1), np.uint8)) is None  # smaller than two blocks


def test_check_notes_jpeg_blocked_references_without_failing(tmp_path):
    root = tmp_path / "sr"
    for name, quality in (("raw", None), ("jpeg", 40)):
        hr = smooth_frame(len(name))
        hr = hr if quality is None else through_jpeg(hr, quality)
        write_image(root / "test" / "HR" / f"{name}.png", hr)
        write_image(root / "test" / "LR" / "x4" / f"{name}.png", cv2.resize(hr, (24, 24), interpolation=cv2.INTER_AREA))
    result = run_script("scripts/check_dataset.py", str(root), "--strict", "--csv", str(tmp_path / "items.csv"),
                        cwd=tmp_path, check=False)
    assert result.returncode == 0 and "no problems found" in result.stdout  # a note, not a problem
    noted = [line for line in result.stdout.splitlines() if "8x8 compression blocking" in line]
    assert len(noted) == 1 and noted[0].endswith(str(root / "test" / "HR" / "jpeg.png"))
    assert "1 image(s) carry JPEG block artefacts" in result.stdout
    rows = {row["key"]: row["blocking"].split() for row in csv.DictReader(open(tmp_path / "items.csv"))}
    assert float(rows["jpeg"][0]) > 1.5 and float(rows["raw"][0]) < 1.1 and len(rows["raw"]) == 2
    quiet = run_script("scripts/check_dataset.py", str(root), "--max_blocking", "5", cwd=tmp_path)
    assert "compression blocking" not in quiet.stdout
