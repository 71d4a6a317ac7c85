"""scripts/reproduce_v2ir_table.py: its statistics checked against plain recomputations, and one
micro-budget run (two seeds, two test sources) whose table, CSVs and grid are recomputed from
the images and metrics files that train.py, test.py and scripts/evaluate.py left behind."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from scripts import reproduce_v2ir_table as table_script
from tests.conftest import write_aligned_dataset
from util.errors import UserError
from util.image_io import read_image

MICRO = ["--crop_size", "32", "--width", "0.125", "--max_dataset_size", "2", "--n_epochs", "1",
         "--n_epochs_decay", "0", "--threads", "1",
         "--common_args", "--num_threads 0 --preprocess none --batch_size 2",
         "--train_args", "--print_freq 1000 --no_html --display_id 0"]
SEEDS = (0, 1)


def per_image(values: dict[str, float], metric: str = "psnr") -> dict[str, dict[str, float]]:
    return {image: {metric: value} for image, value in values.items()}


# ------------------------------------------------------------------ statistics, without training
def test_bootstrap_interval_holds_the_mean_and_collapses_for_equal_differences():
    values = np.random.default_rng(3).normal(0.5, 2.0, 40)
    low, high = table_script.bootstrap_interval(values)
    assert low < values.mean() < high
    # About the normal interval's width, 2 x 1.96 standard errors of the mean.
    standard_error = values.std() / np.sqrt(len(values))
    assert 3.4 * standard_error < high - low < 4.4 * standard_error
    assert table_script.bootstrap_interval(values) == (low, high)  # a fixed generator: repeatable
    assert table_script.bootstrap_interval(np.full(7, 0.25)) == pytest.approx((0.25, 0.25))


def test_win_rate_counts_seed_image_pairs_with_a_higher_psnr():
    reference = {0: per_image({"a": 10.0, "b": 20.0, "c": 30.0}), 1: per_image({"a": 10.0, "b": 20.0, "c": 30.0})}
    method = {0: per_image({"a": 11.0, "b": 19.0, "c": 30.0}), 1: per_image({"a": 12.0, "b": 21.0, "c": 29.0})}
    # Seed 0: a wins, b loses, c ties (no win); seed 1: a and b win, c loses.
    assert table_script.win_rate(method, reference, ["a", "b", "c"]) == pytest.approx(3 / 6)
    assert table_script.win_rate(method, reference, ["a"]) == 1.0


def test_rows_are_mean_and_std_over_seeds_of_per_seed_means_and_deltas_are_paired():
    rng = np.random.default_rng(0)
    images = [f"{source}_{index}" for source in ("x", "y") for index in range(3)]
    runs = {label: {seed: {image: {metric: float(rng.uniform(5, 30)) for metric in table_script.TABLE_METRICS}
                           for image in images} for seed in (0, 1, 2)} for label in ("pix2pix", "cascade3")}
    table = table_script.build_table(runs, table_script.image_sources(None, "prefix", images))
    assert list(table.rows["cascade3"]) == ["all", "x", "y"]
    for source, group in (("all", images), ("y", images[3:])):
        for metric in table_script.TABLE_METRICS:
            seed_means = {label: [np.mean([runs[label][seed][image][metric] for image in group]) for seed in (0, 1, 2)]
                          for label in runs}
            mean, std = table.rows["cascade3"][source][metric]
            assert mean == pytest.approx(np.mean(seed_means["cascade3"]))
            assert std == pytest.approx(np.std(seed_means["cascade3"]))
            delta, low, high = table.versus["cascade3"][source].deltas[metric]
            assert delta == pytest.approx(np.mean(seed_means["cascade3"]) - np.mean(seed_means["pix2pix"]))
            assert low <= delta <= high
    assert "pix2pix" not in table.versus


def test_sources_by_sub_folder_of_either_layout_and_by_name_prefix(tmp_path):
    folders = write_aligned_dataset(tmp_path / "folders", {"test": 2}, layout="folders")
    side_by_side = write_aligned_dataset(tmp_path / "ab", {"test": 2})
    for root, below in ((folders, ("A", "B")), (side_by_side, ("",))):
        for side in below:
            (root / "test" / side / "cam").mkdir()
            shutil.move(root / "test" / side / "0001.png", root / "test" / side / "cam" / "0001.png")
        assert table_script.image_sources(str(root), "folder", ["0000", "0001"]) == {"0001": "cam"}
        assert table_script.image_sources(str(root), "none", ["0000", "0001"]) == {}
    assert table_script.image_sources(None, "prefix", ["tno_1", "msrs_a_2", "plain"]) == {"tno_1": "tno",
                                                                                          "msrs_a_2": "msrs"}
    # The same name in two sources would share one result file: refused, naming the option.
    (folders / "test" / "A" / "other").mkdir()
    shutil.copyfile(folders / "test" / "A" / "cam" / "0001.png", folders / "test" / "A" / "other" / "0001.png")
    with pytest.raises(UserError, match="--source_of folder: test images named 0001"):
        table_script.image_sources(str(folders), "folder", ["0001"])


def test_spread_picks_evenly_spaced_images():
    assert table_script.spread([str(index) for index in range(10)], 4) == ["0", "3", "6", "9"]
    assert table_script.spread(["a", "b"], 4) == ["a", "b"]


@pytest.mark.parametrize("argv, option", [(["--models", "pix2pix,nope"], "--models"), (["--seeds", "0,x"], "--seeds")])
def test_bad_options_are_user_errors_naming_the_option(tmp_path, argv, option):
    with pytest.raises(UserError, match=option):
        table_script.main([*argv, "--checkpoints_dir", str(tmp_path)])
    assert not (tmp_path / "v2ir_table_s0_pix2pix").exists()  # refused before any training


# ------------------------------------------------------------------ one micro-budget run
@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    """Two seeds of every method on a test split with sources cam1 (0000, 0001) and cam2 (0002, 0003)."""
    tmp = tmp_path_factory.mktemp("v2ir")
    root = write_aligned_dataset(tmp / "data", {"train": 2, "test": 4}, layout="folders")
    for side in ("A", "B"):
        for index, path in enumerate(sorted((root / "test" / side).glob("*.png"))):
            (path.parent / f"cam{1 + index // 2}").mkdir(exist_ok=True)
            shutil.move(path, path.parent / f"cam{1 + index // 2}" / path.name)
    table = table_script.main(micro_argv(tmp))
    with open(tmp / "results" / "v2ir_table.csv", newline="") as handle:
        rows = {(row["algorithm"], row["source"]): row for row in csv.DictReader(handle)}
    return tmp / "results", table, rows


def micro_argv(tmp: Path) -> list[str]:
    return ["--dataroot", str(tmp / "data"), "--checkpoints_dir", str(tmp / "ckpt"), "--results_dir",
            str(tmp / "results"), "--seeds", ",".join(map(str, SEEDS)), *MICRO]


def results_folder(results: Path, seed: int, key: str) -> Path:
    return results / f"v2ir_table_s{seed}_{key}" / "test_latest"


def read_csv_by_image(folder: Path) -> dict[str, dict[str, float]]:
    with open(folder / "metrics.csv", newline="") as handle:
        return {row["image"]: {name: float(value) for name, value in row.items() if name != "image"}
                for row in csv.DictReader(handle)}


def test_rows_per_method_stage_and_source(micro_run):
    results, table, rows = micro_run
    labels = ["pix2pix", "DoubleUnet_pix2pix", "cascade3 stage 1", "cascade3 stage 2", "cascade3"]
    assert list(table.rows) == labels
    assert set(rows) == {(label, source) for label in labels for source in ("all", "cam1", "cam2")}
    assert rows[("cascade3", "all")]["seeds"] == "0/1" and rows[("cascade3", "all")]["epochs"] == "1"
    assert rows[("cascade3 stage 1", "all")]["train_seconds"] == ""
    for seed in SEEDS:  # every method trained and tested once per seed, under its own name
        for key in ("pix2pix", "doubleunet_pix2pix", "cascade3"):
            assert (results_folder(results, seed, key) / "metrics.csv").is_file()


def test_over_seeds_mean_is_the_mean_of_per_seed_means_of_saved_images(micro_run):
    results, _table, rows = micro_run
    per_seed = []
    for seed in SEEDS:
        images = results_folder(results, seed, "cascade3") / "images"
        psnrs = [peak_signal_noise_ratio(read_image(path.with_name(path.name.replace("fake_B", "real_B"))).astype(
            np.float64), read_image(path).astype(np.float64), data_range=255) for path in sorted(
            images.glob("000[23]_fake_B.png"))]
        assert len(psnrs) == 2  # cam2's images
        per_seed.append(np.mean(psnrs))
    assert float(rows[("cascade3", "cam2")]["psnr"]) == pytest.approx(np.mean(per_seed), abs=1e-4)
    assert float(rows[("cascade3", "cam2")]["psnr_std"]) == pytest.approx(np.std(per_seed), abs=1e-4)


def test_stage_rows_score_the_stage_visuals_against_the_thermal_image(micro_run):
    results, _table, rows = micro_run
    for stage, visual in (("cascade3 stage 1", "stage1"), ("cascade3 stage 2", "stage2")):
        per_seed = []
        for seed in SEEDS:
            images = results_folder(results, seed, "cascade3") / "images"
            per_seed.append(np.mean([peak_signal_noise_ratio(
                read_image(images / f"{image}_real_B.png").astype(np.float64),
                read_image(images / f"{image}_{visual}.png").astype(np.float64), data_range=255)
                for image in ("0000", "0001", "0002", "0003")]))
        assert float(rows[(stage, "all")]["psnr"]) == pytest.approx(np.mean(per_seed), abs=1e-4)


def test_versus_pix2pix_columns_match_the_per_image_csvs(micro_run):
    results, _table, rows = micro_run
    for key, label in (("doubleunet_pix2pix", "DoubleUnet_pix2pix"), ("cascade3", "cascade3")):
        for source, images in (("all", ["0000", "0001", "0002", "0003"]), ("cam1", ["0000", "0001"])):
            wins, differences = 0, []
            for seed in SEEDS:
                method = read_csv_by_image(results_folder(results, seed, key))
                reference = read_csv_by_image(results_folder(results, seed, "pix2pix"))
                wins += sum(method[image]["psnr"] > reference[image]["psnr"] for image in images)
                differences.append([method[image]["ssim"] - reference[image]["ssim"] for image in images])
            row = rows[(label, source)]
            assert float(row["win_rate"]) == pytest.approx(wins / (len(SEEDS) * len(images)))
            assert float(row["d_ssim"]) == pytest.approx(np.mean(differences), abs=1e-5)
            assert float(row["d_ssim_low"]) <= float(row["d_ssim"]) <= float(row["d_ssim_high"])
    assert rows[("pix2pix", "all")]["d_psnr"] == "" and rows[("pix2pix", "all")]["win_rate"] == ""


def test_per_image_csv_and_printed_table(micro_run):
    results, table, rows = micro_run
    with open(results / "v2ir_table_per_image.csv", newline="") as handle:
        per_image = list(csv.DictReader(handle))
    assert len(per_image) == 5 * len(SEEDS) * 4  # rows x seeds x test images
    assert {row["source"] for row in per_image if row["image"] in ("0002", "0003")} == {"cam2"}
    printed = table_script.markdown_table(table)
    assert "| algorithm | source | PSNR ↑ | SSIM ↑ | RMSE ↓ | ΔPSNR vs pix2pix [95 % CI]" in printed
    win = round(100 * float(rows[("cascade3", "cam1")]["win_rate"]))
    assert any(line.startswith("| cascade3 | cam1 |") and line.endswith(f"| {win} % |")
               for line in printed.splitlines())


def test_grid_has_a_titled_column_per_visual_and_a_row_per_image(micro_run):
    results, _table, _rows = micro_run
    grid = Image.open(results / "v2ir_table_grid.png")
    step = table_script.GRID_TILE + table_script.GRID_GAP
    # 4 test images; visible, pix2pix, DoubleUnet, stage 1, stage 2, cascade3, thermal.
    assert grid.size == (7 * step - table_script.GRID_GAP, table_script.GRID_TITLE + 4 * step - table_script.GRID_GAP)
    pixels = np.asarray(grid.convert("L"))
    assert (pixels[: table_script.GRID_TITLE, 6 * step: 6 * step + 60] < 128).any()  # a title over the last column
    # The last column is seed 0's thermal image of the first test image, fit into its box.
    thermal = read_image(results_folder(results, 0, "pix2pix") / "images" / "0000_real_B.png")[..., 0]
    tile = pixels[table_script.GRID_TITLE: table_script.GRID_TITLE + table_script.GRID_TILE,
                  6 * step: 6 * step + table_script.GRID_TILE]
    assert abs(float(tile.mean()) - float(thermal.mean())) < 3


def test_reuse_rebuilds_the_same_table_without_training_or_testing(micro_run, monkeypatch):
    results, table, _rows = micro_run

    def no_subprocess(script, *_args):
        raise AssertionError(f"--reuse ran {script} again")

    monkeypatch.setattr(table_script, "run", no_subprocess)
    argv = micro_argv(results.parent)
    reused = table_script.main([*argv, "--reuse", "--csv", str(results / "reused.csv")])
    assert reused.rows == table.rows
    # A seed without a record is trained: the refusal above proves --reuse does not skip it silently.
    with pytest.raises(AssertionError, match="train.py"):
        table_script.main([*argv[:-len(MICRO) - 2], "--seeds", "0,7", *MICRO, "--reuse"])
