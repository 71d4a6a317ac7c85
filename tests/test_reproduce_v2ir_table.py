"""scripts/reproduce_v2ir_table.py with a micro budget: every method trained and tested, the table's
numbers recomputed from the saved images with scikit-image."""
from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from tests.conftest import REPO_ROOT
from util.errors import UserError
from util.image_io import read_image

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import reproduce_v2ir_table  # noqa: E402

MICRO = ["--crop_size", "32", "--width", "0.125", "--max_dataset_size", "2", "--n_epochs", "1",
         "--n_epochs_decay", "0", "--threads", "1",
         "--common_args", "--num_threads 0 --preprocess none --batch_size 2",
         "--train_args", "--print_freq 1000 --no_html --display_id 0"]


def test_every_method_is_trained_and_its_row_matches_the_saved_images(tmp_path, aligned_root, capsys):
    rows = reproduce_v2ir_table.main(["--dataroot", str(aligned_root), "--checkpoints_dir", str(tmp_path / "ckpt"),
                                      "--results_dir", str(tmp_path / "results"), *MICRO])
    assert list(rows) == ["pix2pix", "DoubleUnet_pix2pix", "cascade3"]
    printed = capsys.readouterr().out
    assert "| algorithm | PSNR | SSIM | RMSE |" in printed
    for label in rows:
        assert f"| {label} |" in printed

    with open(tmp_path / "results" / "v2ir_table.csv") as handle:
        table = {row["algorithm"]: row for row in csv.DictReader(handle)}
    assert set(table) == set(rows) and all(int(row["epochs"]) == 1 for row in table.values())

    # The cascade's PSNR, recomputed independently from the images test.py saved.
    images = tmp_path / "results" / "v2ir_table_cascade3" / "test_latest" / "images"
    outputs = sorted(images.glob("*_fake_B.png"))
    assert len(outputs) == 3  # the fixture's test split
    psnrs = [peak_signal_noise_ratio(read_image(path.with_name(path.name.replace("fake_B", "real_B"))).astype(np.float64),
                                     read_image(path).astype(np.float64), data_range=255) for path in outputs]
    assert float(table["cascade3"]["psnr"]) == pytest.approx(np.mean(psnrs), abs=1e-4)
    # Every stage of the cascade is in its results.
    assert {path.stem.split("_", 1)[1] for path in images.glob("0000_*.png")} == {
        "real_A", "stage1", "mask", "stage2", "fake_B", "real_B"}


def test_unknown_method_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--models"):
        reproduce_v2ir_table.main(["--models", "pix2pix,nope", "--checkpoints_dir", str(tmp_path)])
