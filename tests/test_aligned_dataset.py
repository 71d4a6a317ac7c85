"""The aligned dataset: both layouts, bit depths, channels, shared augmentation, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_aligned_dataset
from data import create_dataset
from options.train_options import TrainOptions
from util.errors import UserError
from util.image_io import write_image


def make_opt(tmp_path: Path, root: Path, *args: str):
    return TrainOptions().parse(["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"),
                                 "--crop_size", "32", "--load_size", "36", *args], save=False)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    return (rgb * weights).sum(0, keepdim=True)


@pytest.mark.parametrize("layout", ["ab", "folders"])
def test_layouts_give_the_same_pairs(tmp_path, layout):
    root = write_aligned_dataset(tmp_path / layout, {"train": 3}, layout=layout)
    reference = write_aligned_dataset(tmp_path / "ref", {"train": 3}, layout="ab")
    sample = create_dataset(make_opt(tmp_path, root, "--preprocess", "none"), "train")[0]
    expected = create_dataset(make_opt(tmp_path, reference, "--preprocess", "none"), "train")[0]
    assert sample["A"].shape == (1, 32, 32) and sample["B"].shape == (3, 32, 32)
    # luma of a grey pixel replicated to RGB equals the grey value up to float rounding
    assert torch.allclose(sample["A"], expected["A"], atol=1e-6) and torch.equal(sample["B"], expected["B"])
    assert -1.0 <= sample["B"].min() and sample["B"].max() <= 1.0


def test_folders_layout_under_domain_folders(tmp_path):
    root = tmp_path / "upstream_layout"
    write_image(root / "A" / "train" / "x.png", np.full((8, 8), 10, np.uint8))
    write_image(root / "B" / "train" / "x.jpg", np.full((8, 8, 3), 200, np.uint8))
    sample = create_dataset(make_opt(tmp_path, root, "--preprocess", "none"), "train")[0]
    assert sample["A"].shape == (1, 8, 8) and sample["B"].shape == (3, 8, 8)
    assert sample["A_paths"].endswith("x.png") and sample["B_paths"].endswith("x.jpg")


def test_crop_and_flip_are_shared_by_a_and_b(tmp_path):
    """A is the luma of B pixel for pixel, so any misaligned crop or flip breaks equality."""
    rng = np.random.default_rng(3)
    visible = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    infrared = (visible.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint16)
    write_image(tmp_path / "pairs" / "train" / "A" / "0.tif", infrared)
    write_image(tmp_path / "pairs" / "train" / "B" / "0.png", visible)
    opt = make_opt(tmp_path, tmp_path / "pairs", "--preprocess", "crop", "--crop_size", "24",
                   "--bit16_norm", "fixed", "--bit16_range", "0", "255")
    dataset = create_dataset(opt, "train")
    source = torch.from_numpy(visible).permute(2, 0, 1).float() / 255
    seen = set()
    for epoch in range(16):
        sample = dataset[(epoch, 0)]
        a, b = (sample["A"] + 1) / 2, (sample["B"] + 1) / 2
        assert torch.allclose(a, luma(b), atol=0.6 / 255)
        for top in range(40 - 24 + 1):
            for left in range(48 - 24 + 1):
                window = source[:, top:top + 24, left:left + 24]
                for flipped in (False, True):
                    if torch.allclose(b, window.flip(-1) if flipped else window, atol=1e-6):
                        seen.add((top, left, flipped))
    assert len(seen) >= 12, "each epoch should draw its own crop"
    assert {flipped for _, _, flipped in seen} == {False, True}, "both flipped and unflipped samples expected"


def test_augmentation_is_a_function_of_seed_epoch_and_index(tmp_path, aligned_root):
    dataset = create_dataset(make_opt(tmp_path, aligned_root), "train")
    assert torch.equal(dataset[(5, 1)]["B"], dataset[(5, 1)]["B"])
    assert any(not torch.equal(dataset[(5, 1)]["B"], dataset[(epoch, 1)]["B"]) for epoch in range(6, 12))


def test_validation_split_is_not_augmented(tmp_path, aligned_root):
    dataset = create_dataset(make_opt(tmp_path, aligned_root), "val")
    assert torch.equal(dataset[(1, 0)]["B"], dataset[(2, 0)]["B"])


@pytest.mark.parametrize("norm", ["minmax", "fixed"])
def test_16bit_infrared_normalisation(tmp_path, norm):
    raw = np.array([[1000, 2000], [3000, 5000]], dtype=np.uint16)
    write_image(tmp_path / "d" / "train" / "A" / "0.png", raw)
    write_image(tmp_path / "d" / "train" / "B" / "0.png", np.zeros((2, 2, 3), np.uint8))
    opt = make_opt(tmp_path, tmp_path / "d", "--preprocess", "none", "--no_flip", "--bit16_norm", norm,
                   "--bit16_range", "0", "10000")
    a = (create_dataset(opt, "train")[0]["A"][0] + 1) / 2
    expected = (raw - 1000) / 4000 if norm == "minmax" else raw / 10000
    assert torch.allclose(a, torch.tensor(expected, dtype=torch.float32), atol=1e-6)


def test_16bit_colour_is_read_at_full_depth(tmp_path):
    visible = np.zeros((4, 4, 3), np.uint16)
    visible[..., 0] = 256  # 256/65535: lost entirely by an 8-bit reader
    visible[0, 0] = 65535
    write_image(tmp_path / "d" / "train" / "A" / "0.png", np.zeros((4, 4), np.uint8))
    write_image(tmp_path / "d" / "train" / "B" / "0.png", visible)
    opt = make_opt(tmp_path, tmp_path / "d", "--preprocess", "none", "--no_flip", "--bit16_norm", "fixed")
    b = (create_dataset(opt, "train")[0]["B"] + 1) / 2
    assert torch.isclose(b[0, 1, 1], torch.tensor(256 / 65535), atol=1e-6)
    assert torch.equal(b[:, 0, 0], torch.ones(3))


@pytest.mark.parametrize(("input_nc", "output_nc"), [(1, 1), (3, 3), (3, 1), (1, 3)])
def test_channel_counts(tmp_path, aligned_root, input_nc, output_nc):
    opt = make_opt(tmp_path, aligned_root, "--input_nc", str(input_nc), "--output_nc", str(output_nc))
    sample = create_dataset(opt, "train")[(1, 0)]
    assert sample["B"].shape[0] == input_nc and sample["A"].shape[0] == output_nc  # BtoA: B is the input


def test_num_samples_and_max_dataset_size(tmp_path, aligned_root):
    assert len(create_dataset(make_opt(tmp_path, aligned_root), "train")) == 4
    assert len(create_dataset(make_opt(tmp_path, aligned_root, "--max_dataset_size", "2"), "train")) == 2


def test_empty_split_fails_clearly(tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match=r"no images found in .*empty/train"):
        create_dataset(make_opt(tmp_path, tmp_path / "empty"), "train")


def test_unpaired_names_fail_clearly(tmp_path):
    root = write_aligned_dataset(tmp_path / "d", {"train": 2}, layout="folders")
    (root / "train" / "B" / "0001.png").rename(root / "train" / "B" / "other.png")
    with pytest.raises(UserError, match=r"no partner with the same name.*0001\.png"):
        create_dataset(make_opt(tmp_path, root), "train")


def test_size_mismatch_fails_clearly(tmp_path):
    write_image(tmp_path / "d" / "train" / "A" / "0.png", np.zeros((8, 8), np.uint8))
    write_image(tmp_path / "d" / "train" / "B" / "0.png", np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(UserError, match=r"differ in size.*0\.png is 8x8.*0\.png is 10x8"):
        create_dataset(make_opt(tmp_path, tmp_path / "d", "--preprocess", "none"), "train")[0]


def test_odd_width_side_by_side_fails_clearly(tmp_path):
    write_image(tmp_path / "d" / "train" / "odd.png", np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(UserError, match=r"odd\.png has odd width 9"):
        create_dataset(make_opt(tmp_path, tmp_path / "d", "--preprocess", "none"), "train")[0]


def test_corrupt_image_fails_clearly(tmp_path, aligned_root):
    path = aligned_root / "train" / "0000.png"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match=r"cannot read image .*0000\.png.*Replace or remove"):
        create_dataset(make_opt(tmp_path, aligned_root), "train")[0]
