"""``--config FILE``: options from a YAML/JSON file, overridden by flags; configs/ holds the published setups."""
from __future__ import annotations

import json
import re

import pytest

import models
import train as train_script
from conftest import REPO_ROOT, run_script, write_aligned_dataset
from options.config_file import read_config
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError, run_cli

QUIET = ["--num_threads", "0", "--display_id", "0", "--no_html", "--print_freq", "1", "--val_freq", "0"]
CONFIGS = sorted((REPO_ROOT / "configs").rglob("*.yaml"))


def test_a_config_file_sets_options_and_flags_override_it(tmp_path):
    root = write_aligned_dataset(tmp_path / "data", {"train": 1, "test": 1}, size=32)
    config = tmp_path / "run.yaml"
    config.write_text("# a comment\nmodel: cascade3\nnetG1: resnet_6blocks\nngf: 8\nstage2_width: 0.125\n"
                      "denoise_features: 4\ndenoise_depth: 2\nno_dropout: true\nndf: 4\ncrop_size: 32\n"
                      "load_size: 32\nn_epochs: 5\nn_epochs_decay: 0\nresults_dir: elsewhere\n")  # test.py's: skipped
    checkpoints = tmp_path / "checkpoints"
    train_script.main(["--config", str(config), "--ngf", "4", "--n_epochs", "1", "--dataroot", str(root),
                       "--checkpoints_dir", str(checkpoints), "--name", "x", *QUIET])
    saved = json.loads((checkpoints / "x" / "train_opt.json").read_text())
    # From the file (model included, so its options are known), except what the command line gave.
    assert {"model": "cascade3", "netG1": "resnet_6blocks", "ngf": 4, "no_dropout": True,
            "stage2_width": 0.125}.items() <= saved["architecture"].items()
    assert saved["options"]["n_epochs"] == 1 and saved["options"]["crop_size"] == 32
    assert saved["options"]["config"] == str(config)

    # The run's own train_opt.json starts another run the same way: the reproducibility loop.
    again = TrainOptions().parse(["--config", str(checkpoints / "x" / "train_opt.json"), "--name", "y",
                                  "--checkpoints_dir", str(checkpoints)], save=False)
    assert (again.name, again.model, again.netG1, again.ngf, again.no_dropout, again.n_epochs,
            again.dataroot) == ("y", "cascade3", "resnet_6blocks", 4, True, 1, str(root))

    # test.py reads the same file; a value in it that contradicts the run's saved architecture is refused.
    config.write_text(config.read_text().replace("ngf: 8", "ngf: 4"))
    opt = TestOptions().parse(["--config", str(config), "--name", "x", "--checkpoints_dir", str(checkpoints)],
                              save=False)
    assert (opt.model, opt.ngf, opt.results_dir) == ("cascade3", 4, "elsewhere")
    config.write_text(config.read_text().replace("ngf: 4", "ngf: 16"))
    with pytest.raises(UserError, match=r"ngf \(from .*run.yaml\) 16 but run 'x' was trained with ngf 4"):
        TestOptions().parse(["--config", str(config), "--name", "x", "--checkpoints_dir", str(checkpoints)],
                            save=False)


def test_an_unknown_key_is_one_line_naming_the_file_and_key(tmp_path):
    (tmp_path / "run.yaml").write_text("model: pix2pix\nngff: 8\n")
    result = run_script("train.py", "--config", "run.yaml", cwd=tmp_path, check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2 and "Traceback" not in output and len(output.splitlines()) == 1, output
    assert output.startswith("error: --config run.yaml: unknown option 'ngff' for train.py --model pix2pix; did "
                             "you mean 'ngf'?"), output


@pytest.mark.parametrize(("content", "expected"), [
    (None, "--config run.yaml: no such file"),
    ("model: [pix2pix\n", "--config run.yaml: not valid YAML (line 2: expected ',' or ']'"),
    ("{\"model\": ", "--config run.json: not valid JSON (line 1"),
])
def test_a_missing_or_unreadable_config_file_is_one_line(tmp_path, monkeypatch, caplog, content, expected):
    monkeypatch.chdir(tmp_path)
    name = "run.json" if "JSON" in expected else "run.yaml"
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_script.main, ["--config", name])
    assert exit_info.value.code == 2
    message = caplog.records[-1].getMessage()
    assert message.startswith(f"error: {expected}") and "\n" not in message, message


@pytest.mark.parametrize(("content", "expected"), [
    ("no_dropout: 1\n", "no_dropout: 1 is not true or false"),
    ("ngf: wide\n", "ngf: 'wide' is not a valid int"),
    ("norm: group\n", "norm: 'group' is not one of batch, instance, none, syncbatch"),
    ("bit16_range: [0]\n", "bit16_range: [0] is not a list of 2 values"),
    ("- model\n", "expected a mapping of option names to values"),
])
def test_a_config_value_of_the_wrong_type_names_the_key(tmp_path, content, expected):
    (tmp_path / "run.yaml").write_text(content)
    with pytest.raises(UserError, match=re.escape(expected)):
        TrainOptions().parse(["--config", str(tmp_path / "run.yaml")], save=False)


def test_configs_holds_the_published_and_cpu_setups():
    names = {path.relative_to(REPO_ROOT / "configs").as_posix() for path in CONFIGS}
    assert {"pix2pix_kaist_256.yaml", "doubleunet_pix2pix_kaist_256.yaml", "cascade3_kaist_256.yaml",
            "irsrnet_x4.yaml", "irsrgan_x4.yaml", "cpu/v2ir_pix2pix.yaml", "cpu/v2ir_doubleunet_pix2pix.yaml",
            "cpu/v2ir_cascade3.yaml", "cpu/irsrnet_x4.yaml", "cpu/irsrgan_x4.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.relative_to(REPO_ROOT / "configs").as_posix())
def test_every_config_names_a_model_and_only_known_options(path, tmp_path):
    text = path.read_text()
    assert text.startswith("# ") and "python train.py --config configs/" in text  # what it is, how to run it
    values = read_config(str(path)).values
    assert values["model"] in models.available_models()
    for options in (TrainOptions(), TestOptions()):  # unknown keys or bad values raise
        opt = options.parse(["--config", str(path), "--checkpoints_dir", str(tmp_path), "--name", "run"], save=False)
        assert opt.model == values["model"]
    train = TrainOptions().parse(["--config", str(path), "--checkpoints_dir", str(tmp_path), "--name", "r"],
                                 save=False)
    for key, value in values.items():
        assert getattr(train, "ngf" if key == "nf" else key) == value, key


@pytest.mark.parametrize(("crop_size", "width"), [(128, 0.5), (256, 1.0), (128, 0.25)])
def test_the_v2ir_table_reads_its_rows_from_the_cpu_configs(tmp_path, crop_size, width):
    """scripts/reproduce_v2ir_table.py trains each row from configs/cpu/v2ir_<row>.yaml, and its --crop_size and
    --width still decide the sizes: every option resolves as with the flags it hard-coded before."""
    from scripts.reproduce_v2ir_table import methods

    unet, ngf = ("unet_256" if crop_size >= 256 else "unet_128"), str(max(1, round(64 * width)))
    before = {"pix2pix": ["--model", "pix2pix", "--netG", unet, "--ngf", ngf],
              "doubleunet_pix2pix": ["--model", "pix2pix", "--netG", "doubleunet", "--ngf", ngf],
              "cascade3": ["--model", "cascade3", "--netG1", unet, "--ngf", ngf, "--stage2_width", str(width)]}
    shared = ["--crop_size", str(crop_size), "--name", "run", "--checkpoints_dir", str(tmp_path)]
    for method in methods(crop_size, width):
        assert method.flags[:2] == ("--config", str(REPO_ROOT / "configs" / "cpu" / f"v2ir_{method.key}.yaml"))
        for options, schedule in ((TrainOptions, ["--n_epochs", "3", "--n_epochs_decay", "3"]), (TestOptions, [])):
            now = vars(options().parse([*method.flags, *shared, *schedule], save=False))
            assert now.pop("config") is not None
            then = vars(options().parse([*before[method.key], *shared, *schedule], save=False))
            assert then.pop("config") is None and now == then, method.key


def test_the_v2ir_cpu_configs_hold_the_tables_default_schedule():
    """Run by hand, configs/cpu/v2ir_*.yaml train as long as the table's rows do by default."""
    from scripts.reproduce_v2ir_table import config_file, methods, parse_args

    defaults = parse_args([])
    for method in methods(defaults.crop_size, defaults.width):
        values = read_config(str(config_file(method.key))).values
        assert (values["n_epochs"], values["n_epochs_decay"]) == (defaults.n_epochs, defaults.n_epochs_decay)


def test_the_sr_table_takes_its_default_recipe_from_the_cpu_configs():
    """scripts/reproduce_sr_table.py's defaults are configs/cpu/irsrnet_x4.yaml's and irsrgan_x4.yaml's (the CPU
    recipe as it was hard-coded), and the GAN stage's generator is the PSNR stage's."""
    from scripts import reproduce_sr_table

    opt = reproduce_sr_table.parse_args([])
    assert (opt.scale, opt.netG, opt.nf, opt.nb, opt.gc, opt.sr_residual, opt.ndf, opt.crop_size, opt.batch_size,
            opt.psnr_lr, opt.gan_lr) == (4, "crdb", 32, 3, 16, "bicubic", 32, 96, 8, 1e-3, 1e-4)
    psnr, gan = reproduce_sr_table.cpu_config("irsrnet"), reproduce_sr_table.cpu_config("irsrgan")
    assert psnr["lr_policy"] == "cosine"
    for key in ("scale", "netG", "nf", "nb", "gc", "sr_residual", "crop_size", "batch_size"):
        assert psnr[key] == gan[key], key
