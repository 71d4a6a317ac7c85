"""The SR dataset: layouts, LR/HR alignment of training patches, deterministic evaluation,
degradation mixing, options, errors, and the built-in synthetic SR data."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from data import create_dataset
from data.loader import create_train_loader
from data.offline.synthetic_sr import METADATA_FILENAME, ensure_synthetic_sr_dataset
from data.sr_dataset import SrDataset
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError
from util.image_io import read_image, write_image

CROP, SCALE = 16, 4


def textured(rng: np.random.Generator, height: int, width: int, channels: int = 1, dtype=np.uint8,
             low: float = 0.0) -> np.ndarray:
    """A smooth image with fine texture (so every window is unique), ``H x W`` or ``H x W x 3``."""
    peak = 255 if dtype == np.uint8 else 65535
    coarse = rng.random((height // 4 + 2, width // 4 + 2, channels)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, channels)
    image = image + 0.2 * rng.random(image.shape)
    image = low + (1 - low) * (image - image.min()) / (image.max() - image.min())
    image = np.round(image * peak).astype(dtype)
    return image[..., 0] if channels == 1 else image


def make_opt(tmp_path: Path, root: Path, *args: str, train: bool = True):
    # irsrnet: the model that reads this dataset, and decides its channels (1 in, 1 out)
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--model", "irsrnet",
              "--crop_size", str(CROP), "--scale", str(SCALE)]
    if train:
        return TrainOptions().parse([*common, *args], save=False)
    return TestOptions().parse([*common, "--results_dir", str(tmp_path / "results"), *args], save=False)


def unit(tensor: torch.Tensor) -> np.ndarray:
    """Model-range ``C x H x W`` tensor -> ``H x W x C`` array in [0, 1]."""
    return ((tensor + 1) / 2).permute(1, 2, 0).numpy()


def block_mean(image: np.ndarray, scale: int = SCALE) -> np.ndarray:
    height, width, channels = image.shape
    return image.reshape(height // scale, scale, width // scale, scale, channels).mean(axis=(1, 3))


def is_block_mean(lr: np.ndarray, hr: np.ndarray, eight_bit: bool = True) -> bool:
    """Whether ``lr`` is the area downsampling of ``hr``, rounded to 8 bits or kept exact."""
    reference = block_mean(hr.astype(np.float64))
    if not eight_bit:
        return np.allclose(lr, reference, atol=1e-6)
    on_grid = np.allclose(lr * 255, np.round(lr * 255), atol=1e-3)
    return on_grid and np.allclose(lr, reference, atol=0.5 / 255 + 1e-6)  # ties may round either way


def all_transforms(window: np.ndarray) -> list[np.ndarray]:
    rotations = [np.rot90(window, k) for k in range(4)]
    return rotations + [np.flipud(rotation) for rotation in rotations]


# --------------------------------------------------------------------------- training patches


def test_training_lr_is_the_downsampled_hr_patch_on_the_scale_grid(tmp_path):
    source = textured(np.random.default_rng(0), 40, 44)
    write_image(tmp_path / "d" / "train" / "a.png", source)
    opt = make_opt(tmp_path, tmp_path / "d", "--degradation_prob", "0", "--sr_downsample", "area")
    dataset = create_dataset(opt, "train")
    source_unit = source.astype(np.float32) / 255
    seen = set()
    for epoch in range(12):
        sample = dataset[(epoch, 0)]
        hr, lr = unit(sample["HR"]), unit(sample["LR"])
        assert hr.shape == (CROP, CROP, 1) and lr.shape == (CROP // SCALE, CROP // SCALE, 1)
        assert is_block_mean(lr, hr)
        matches = [(top, left, index)
                   for top in range(0, 40 - CROP + 1, SCALE) for left in range(0, 44 - CROP + 1, SCALE)
                   for index, window in enumerate(all_transforms(source_unit[top:top + CROP, left:left + CROP]))
                   if np.allclose(hr[..., 0], window, atol=1e-6)]
        assert len(matches) == 1, "the HR patch must be a flipped/rotated window at a scale-aligned position"
        seen.add(matches[0])
    assert len(seen) >= 8 and len({index for _, _, index in seen}) >= 4


@pytest.mark.parametrize("lr_folder, lr_name", [("LR/x4", "img.png"), ("LR_x4", "imgx4.png"), ("LR", "img_lr.png")])
def test_paired_folders_give_aligned_patches(tmp_path, lr_folder, lr_name):
    rng = np.random.default_rng(1)
    root = tmp_path / "pairs"
    hr = textured(rng, 42, 37)  # two extra rows and one extra column beyond 4x the LR size
    lr = np.round(block_mean(hr[:40, :36, None].astype(np.float64))[..., 0]).astype(np.uint8)
    for split in ("train", "val"):
        write_image(root / split / "HR" / "seq1" / "img.png", hr)
        write_image(root / split / lr_folder / "seq1" / lr_name, lr)
    opt = make_opt(tmp_path, root, "--degradation_prob", "1")  # real pairs are never degraded
    dataset = create_dataset(opt, "train")
    for epoch in range(6):
        sample = dataset[(epoch, 0)]
        hr_patch, lr_patch = unit(sample["HR"]), unit(sample["LR"])
        np.testing.assert_allclose(lr_patch, block_mean(hr_patch), atol=0.5 / 255 + 1e-6)
    assert sample["HR_paths"].endswith("img.png") and sample["LR_paths"].endswith(lr_name)
    assert lr_folder.split("/")[0] in sample["LR_paths"]
    val = create_dataset(opt, "val")[0]
    assert val["HR"].shape == (1, 40, 36) and val["LR"].shape == (1, 10, 9)
    np.testing.assert_allclose(unit(val["LR"])[..., 0], lr / 255, atol=1e-6)


def test_paired_16bit_uses_the_hr_range_for_both_images(tmp_path):
    rng = np.random.default_rng(2)
    hr = textured(rng, 32, 32, dtype=np.uint16, low=0.2)
    lr = np.round(block_mean(hr[..., None].astype(np.float64))[..., 0]).astype(np.uint16)
    write_image(tmp_path / "p" / "val" / "HR" / "a.png", hr)
    write_image(tmp_path / "p" / "val" / "LR" / "a.png", lr)
    sample = create_dataset(make_opt(tmp_path, tmp_path / "p"), "val")[0]
    low, high = float(hr.min()), float(hr.max())
    np.testing.assert_allclose(unit(sample["HR"])[..., 0], (hr - low) / (high - low), atol=1e-6)
    np.testing.assert_allclose(unit(sample["LR"])[..., 0], (lr - low) / (high - low), atol=1e-6)


def test_nested_folders_bit_depths_and_channels(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "cvc"
    write_image(root / "train" / "set00" / "V000" / "lwir" / "I00000.png", textured(rng, 24, 28))
    write_image(root / "train" / "640_flir_hr" / "b.tif", textured(rng, 20, 24, dtype=np.uint16))
    write_image(root / "train" / "c.png", textured(rng, 16, 20, channels=3))
    write_image(root / "train" / "d.png", textured(rng, 16, 16, channels=3, dtype=np.uint16))
    dataset = create_dataset(make_opt(tmp_path, root, "--degradation_prob", "0", "--sr_downsample", "area"), "train")
    assert len(dataset) == 4
    for index in range(4):
        sample = dataset[(0, index)]
        assert sample["HR"].shape == (1, CROP, CROP) and sample["LR"].shape == (1, CROP // SCALE, CROP // SCALE)
        assert -1.0 <= sample["LR"].min() and sample["HR"].max() <= 1.0
        hr, lr = unit(sample["HR"]), unit(sample["LR"])
        # LR from 8-bit HR is rounded to 8 bits; from 16-bit HR it keeps full precision
        assert is_block_mean(lr, hr, eight_bit=not sample["HR_paths"].endswith(("b.tif", "d.png")))
    colour = create_dataset(make_opt(tmp_path, root, "--input_nc", "3", "--output_nc", "3"), "train")
    sample = next(colour[(0, index)] for index in range(4) if str(colour.items[index][0]).endswith("c.png"))
    assert sample["HR"].shape == (3, CROP, CROP) and sample["LR"].shape == (3, CROP // SCALE, CROP // SCALE)
    assert not torch.equal(sample["HR"][0], sample["HR"][1]), "colour must be kept, not replicated grey"


def test_augmentation_is_a_function_of_seed_epoch_and_index(tmp_path):
    write_image(tmp_path / "d" / "train" / "a.png", textured(np.random.default_rng(4), 48, 48))
    dataset = create_dataset(make_opt(tmp_path, tmp_path / "d"), "train")
    assert torch.equal(dataset[(3, 0)]["LR"], dataset[(3, 0)]["LR"])
    assert torch.equal(dataset[(3, 0)]["HR"], create_dataset(make_opt(tmp_path, tmp_path / "d"), "train")[(3, 0)]["HR"])
    assert any(not torch.equal(dataset[(3, 0)]["HR"], dataset[(epoch, 0)]["HR"]) for epoch in range(4, 10))
    other_seed = create_dataset(make_opt(tmp_path, tmp_path / "d", "--seed", "1"), "train")
    assert any(not torch.equal(dataset[(epoch, 0)]["HR"], other_seed[(epoch, 0)]["HR"]) for epoch in range(6))


@pytest.mark.parametrize("preset", ["irsrgan", "realesrgan"])
def test_degradation_probability_mixes_degraded_and_clean_lr(tmp_path, preset):
    write_image(tmp_path / "d" / "train" / "a.png", textured(np.random.default_rng(5), 32, 32))

    def degraded_count(probability: str) -> int:
        dataset = create_dataset(make_opt(tmp_path, tmp_path / "d", "--degradation", preset, "--sr_downsample", "area",
                                          "--degradation_prob", probability), "train")
        samples = [dataset[(epoch, 0)] for epoch in range(40)]
        return sum(not is_block_mean(unit(s["LR"]), unit(s["HR"])) for s in samples)

    assert degraded_count("0") == 0
    assert degraded_count("1") == 40
    assert 10 <= degraded_count("0.5") <= 30


def test_batches_of_patches(tmp_path):
    rng = np.random.default_rng(6)
    for index in range(3):
        write_image(tmp_path / "d" / "train" / f"{index}.png", textured(rng, 20 + 4 * index, 24))
    opt = make_opt(tmp_path, tmp_path / "d", "--batch_size", "2", "--num_threads", "0")
    loader, sampler = create_train_loader(create_dataset(opt, "train"), opt)
    sampler.set_epoch(1)
    batch = next(iter(loader))
    assert batch["LR"].shape == (2, 1, 4, 4) and batch["HR"].shape == (2, 1, CROP, CROP)
    assert len(batch["LR_paths"]) == 2


# --------------------------------------------------------------------------- evaluation


def test_evaluation_is_clean_deterministic_and_scale_cropped(tmp_path):
    source = textured(np.random.default_rng(7), 37, 43)
    write_image(tmp_path / "d" / "val" / "a.png", source)
    opt = make_opt(tmp_path, tmp_path / "d", "--sr_downsample", "area", "--degradation_prob", "1")
    dataset = create_dataset(opt, "val")
    sample = dataset[0]
    assert sample["HR"].shape == (1, 36, 40) and sample["LR"].shape == (1, 9, 10)
    np.testing.assert_allclose(unit(sample["HR"])[..., 0], source[:36, :40] / 255, atol=1e-6)
    assert is_block_mean(unit(sample["LR"]), source[:36, :40, None] / 255)
    assert torch.equal(dataset[0]["LR"], sample["LR"])


def test_fixed_evaluation_degradation_is_the_same_for_every_run(tmp_path):
    write_image(tmp_path / "d" / "val" / "a.png", textured(np.random.default_rng(8), 32, 32))
    clean = create_dataset(make_opt(tmp_path, tmp_path / "d"), "val")[0]
    degraded = [create_dataset(make_opt(tmp_path, tmp_path / "d", "--eval_degradation", "fixed", "--seed", seed),
                               "val")[0] for seed in ("0", "0", "5")]
    assert not torch.equal(degraded[0]["LR"], clean["LR"])
    assert torch.equal(degraded[0]["LR"], degraded[1]["LR"]) and torch.equal(degraded[0]["LR"], degraded[2]["LR"])
    assert torch.equal(degraded[0]["HR"], clean["HR"])


def test_fixed_evaluation_degradation_on_stored_lr_fails_and_sr_input_hr_applies_it(tmp_path):
    """Stored LR images would be used as they are, so --eval_degradation fixed on paired folders is an error
    naming the fix; with --sr_input hr the LR is made from HR and degraded."""
    rng = np.random.default_rng(14)
    hr = textured(rng, 32, 32)
    write_image(tmp_path / "p" / "test" / "HR" / "a.png", hr)
    write_image(tmp_path / "p" / "test" / "LR" / "a.png", np.round(block_mean(hr[..., None] * 1.0)[..., 0]).astype(
        np.uint8))
    with pytest.raises(UserError, match="--eval_degradation fixed .* fixed LR images; add --sr_input hr"):
        create_dataset(make_opt(tmp_path, tmp_path / "p", "--eval_degradation", "fixed", train=False), "test")
    stored = create_dataset(make_opt(tmp_path, tmp_path / "p", train=False), "test")[0]
    degraded = create_dataset(make_opt(tmp_path, tmp_path / "p", "--eval_degradation", "fixed", "--sr_input", "hr",
                                       train=False), "test")[0]
    assert degraded["LR"].shape == stored["LR"].shape and not torch.equal(degraded["LR"], stored["LR"])
    assert torch.equal(degraded["HR"], stored["HR"])


def test_test_time_plain_folder_as_lr_frames_or_as_hr(tmp_path):
    """A plain folder is LR frames to super-resolve (--sr_input auto or lr), or HR with --sr_input hr."""
    rng = np.random.default_rng(9)
    write_image(tmp_path / "frames" / "f1.png", textured(rng, 20, 24))
    write_image(tmp_path / "frames" / "f2.png", textured(rng, 20, 24, channels=3))
    for sr_input in ("auto", "lr"):
        frames = create_dataset(make_opt(tmp_path, tmp_path / "frames", "--sr_input", sr_input, train=False), "test")
        sample = frames[1]
        assert len(frames) == 2 and "HR" not in sample and sample["LR"].shape == (1, 20, 24)
        assert sample["HR_paths"] == sample["LR_paths"] and sample["LR_paths"].endswith("f2.png")
    as_hr = create_dataset(make_opt(tmp_path, tmp_path / "frames", "--sr_input", "hr", train=False), "test")[0]
    assert as_hr["HR"].shape == (1, 20, 24) and as_hr["LR"].shape == (1, 5, 6)


def test_auto_detects_a_lone_lr_folder_at_test_time(tmp_path):
    write_image(tmp_path / "d" / "test" / "LR" / "x.png", textured(np.random.default_rng(10), 12, 12))
    sample = create_dataset(make_opt(tmp_path, tmp_path / "d", train=False), "test")[0]
    assert "HR" not in sample and sample["LR"].shape == (1, 12, 12)


# --------------------------------------------------------------------------- errors and options


def test_paired_size_mismatch_names_the_file(tmp_path):
    rng = np.random.default_rng(11)
    write_image(tmp_path / "p" / "train" / "HR" / "a.png", textured(rng, 40, 40))
    write_image(tmp_path / "p" / "train" / "LR" / "a.png", textured(rng, 8, 10))
    with pytest.raises(UserError, match=r"LR image .*a\.png is 10x8 .* must be 10x10"):
        create_dataset(make_opt(tmp_path, tmp_path / "p"), "train")[0]


def test_unpaired_names_fail(tmp_path):
    rng = np.random.default_rng(12)
    write_image(tmp_path / "p" / "train" / "HR" / "a.png", textured(rng, 40, 40))
    write_image(tmp_path / "p" / "train" / "LR" / "b.png", textured(rng, 10, 10))
    with pytest.raises(UserError, match="no partner"):
        create_dataset(make_opt(tmp_path, tmp_path / "p"), "train")


@pytest.mark.parametrize("args, message", [
    (["--crop_size", "18"], "--crop_size 18 .* multiple of --scale 4"),
    (["--degradation_prob", "1.5"], "--degradation_prob"),
    (["--degradation", "realesrgan", "--realesrgan_jpeg_range", "90", "30"],
     "--realesrgan_jpeg_range needs LOW <= HIGH"),
    (["--sr_input", "lr"], "LR images only"),
    (["--sr_input", "paired"], "needs .*HR and .*LR"),
])
def test_bad_options_fail_clearly(tmp_path, args, message):
    write_image(tmp_path / "d" / "train" / "a.png", textured(np.random.default_rng(13), 40, 40))
    with pytest.raises(UserError, match=message):
        create_dataset(make_opt(tmp_path, tmp_path / "d", *args), "train")


def test_image_smaller_than_the_crop_names_the_file(tmp_path):
    write_image(tmp_path / "d" / "train" / "small.png", textured(np.random.default_rng(14), 12, 40))
    with pytest.raises(UserError, match=r"small\.png is 40x12, smaller than --crop_size 16"):
        create_dataset(make_opt(tmp_path, tmp_path / "d"), "train")[0]


def test_preset_parameters_come_from_their_options(tmp_path):
    write_image(tmp_path / "d" / "train" / "a.png", textured(np.random.default_rng(15), 20, 20))
    options = ["--degradation", "realesrgan", "--realesrgan_noise_range2", "2", "5",
               "--realesrgan_final_sinc_prob", "0"]
    dataset = create_dataset(make_opt(tmp_path, tmp_path / "d", *options), "train")
    assert dataset.preset_params.second.noise_range == (2.0, 5.0)
    assert dataset.preset_params.first.noise_range == (1.0, 30.0) and dataset.preset_params.final_sinc_prob == 0.0
    irsrgan = create_dataset(make_opt(tmp_path, tmp_path / "d", "--irsrgan_resize_modes", "area",
                                      "--irsrgan_jpeg_quality", "80", "90"), "train")
    assert irsrgan.preset_params.resize_modes == ("area",) and irsrgan.preset_params.jpeg_quality == (80, 90)


# --------------------------------------------------------------------------- default data


def test_sr_default_dataroot_comes_from_the_dataset_class(tmp_path):
    opt = TrainOptions().parse(["--model", "irsrnet", "--checkpoints_dir", str(tmp_path)], save=False)
    assert opt.dataset_mode == "sr" and opt.dataroot_is_default and Path(opt.dataroot) == Path("datasets/synthetic_sr")
    assert opt.name == "synthetic_sr_irsrnet" and opt.input_nc == 1 and opt.output_nc == 1


def test_create_dataset_calls_the_class_default_data_hook(tmp_path, monkeypatch):
    calls = []

    def fake_builder(cls, root):
        calls.append(root)
        write_image(Path(root) / "train" / "a.png", textured(np.random.default_rng(16), 20, 20))

    monkeypatch.setattr(SrDataset, "ensure_default_data", classmethod(fake_builder))
    opt = make_opt(tmp_path, tmp_path)
    opt.dataroot, opt.dataroot_is_default = str(tmp_path / "default_sr"), True
    dataset = create_dataset(opt, "train")
    assert calls == [str(tmp_path / "default_sr")] and len(dataset) == 1


def test_synthetic_sr_dataset_is_built_from_infrared_halves_once(tmp_path):
    source_options = {"seed": 1, "num_train": 2, "num_val": 1, "num_test": 1, "size": 32}
    root = ensure_synthetic_sr_dataset(tmp_path / "synthetic_sr", **source_options)
    files = sorted(root.rglob("*.png"))
    assert [path.relative_to(root).as_posix() for path in files] == [
        "test/00000.png", "train/00000.png", "train/00001.png", "val/00000.png"]
    for path in files:
        side_by_side = read_image(tmp_path / "synthetic_v2ir" / path.relative_to(root))
        image = read_image(path)
        assert image.shape == (32, 32, 1) and image.dtype == np.uint8
        assert np.array_equal(image[..., 0], side_by_side[:, :32, 0])
    assert json.loads((root / METADATA_FILENAME).read_text())["source"]["seed"] == 1

    stamps = {path: path.stat().st_mtime_ns for path in files}
    ensure_synthetic_sr_dataset(tmp_path / "synthetic_sr", **source_options)
    assert {path: path.stat().st_mtime_ns for path in files} == stamps, "a complete dataset is not rewritten"

    # an interrupted earlier build: no metadata in root, and a leftover temporary folder of a dead process
    (root / METADATA_FILENAME).unlink()
    (root / "train" / "00001.png").unlink()
    abandoned = tmp_path / ".synthetic_sr.build-999999999"
    abandoned.mkdir()
    ensure_synthetic_sr_dataset(tmp_path / "synthetic_sr", **source_options)
    assert (root / "train" / "00001.png").is_file() and (root / METADATA_FILENAME).is_file()
    assert not abandoned.exists()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".synthetic_sr")]


def test_synthetic_sr_builder_refuses_to_replace_foreign_folders(tmp_path):
    (tmp_path / "synthetic_sr").mkdir()
    (tmp_path / "synthetic_sr" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt"):
        ensure_synthetic_sr_dataset(tmp_path / "synthetic_sr", num_train=1, num_val=0, num_test=0, size=32)
    assert (tmp_path / "synthetic_sr" / "notes.txt").read_text() == "mine"
    assert os.listdir(tmp_path / "synthetic_sr") == ["notes.txt"]


def test_decoded_image_cache_keeps_the_latest_images_within_its_budget(tmp_path, monkeypatch):
    from data import image_cache

    rng = np.random.default_rng(0)
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"{index}.png")
        write_image(paths[-1], textured(rng, 32, 32))  # 1024 bytes decoded
    decodes = []
    monkeypatch.setattr(image_cache, "read_image", lambda path: decodes.append(path.name) or read_image(path))
    cache = image_cache.DecodedImageCache(max_bytes=2048)  # room for two of them
    first = cache.read(paths[0])
    np.testing.assert_array_equal(first, read_image(paths[0]))
    assert cache.read(paths[0]) is first and decodes == ["0.png"]  # the second read decodes nothing
    with pytest.raises(ValueError):
        first[0, 0] = 0  # shared by later samples: read-only
    cache.read(paths[1])
    cache.read(paths[0])  # 0 is now the most recently used
    cache.read(paths[2])  # over budget: 1, the least recently used, goes
    assert (len(cache), cache.cached_bytes) == (2, 2048)
    cache.read(paths[0])
    cache.read(paths[1])
    assert decodes == ["0.png", "1.png", "2.png", "1.png"]
    tiny = image_cache.DecodedImageCache(max_bytes=100)  # an image over the whole budget is read, not kept
    np.testing.assert_array_equal(tiny.read(paths[2]), read_image(paths[2]))
    assert len(tiny) == 0


@pytest.mark.parametrize("layout", ["hr", "paired"])
def test_training_samples_are_the_same_with_and_without_the_image_cache(tmp_path, layout):
    rng = np.random.default_rng(1)
    root = tmp_path / "data"
    for index in range(3):
        hr = textured(rng, 48, 64)
        if layout == "hr":
            write_image(root / "train" / f"{index}.png", hr)
        else:
            write_image(root / "train" / "HR" / f"{index}.png", hr)
            write_image(root / "train" / "LR" / f"{index}.png", hr[::SCALE, ::SCALE])
    cached = create_dataset(make_opt(tmp_path, root, "--degradation_prob", "0.5"), "train")
    uncached = create_dataset(make_opt(tmp_path, root, "--degradation_prob", "0.5", "--image_cache_mb", "0"), "train")
    assert uncached.cache is None
    for key in [(epoch, index) for epoch in (1, 2) for index in range(3)]:
        a, b = cached[key], uncached[key]
        assert torch.equal(a["LR"], b["LR"]) and torch.equal(a["HR"], b["HR"])
    assert len(cached.cache) == (3 if layout == "hr" else 6)  # every file decoded once, HR and LR
    evaluation = create_dataset(make_opt(tmp_path, root, "--phase", "train", train=False), "train")
    assert evaluation.cache is None  # evaluation reads each image once: nothing to keep
