"""A run's saved configuration: test.py, the scripts and --continue_train rebuild its networks from --name alone;
a contradicting flag is one clear error; runs without one load with flags as before."""
from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import models
import test as test_script
import train as train_script
from conftest import REPO_ROOT, run_script, write_aligned_dataset
from options.test_options import TestOptions
from options.train_options import TrainOptions
from scripts import export as export_script
from test_irsrgan import write_sr_dataset
from test_net_interp import net_interp
from util.errors import UserError

# Not irsrnet's defaults (nf 64, nb 23, gc 32, x4): rebuilding with the defaults would not fit the weights.
SR_ARCHITECTURE = ["--nf", "8", "--nb", "2", "--gc", "4", "--scale", "2"]
QUIET = ["--num_threads", "0", "--display_id", "0", "--no_html", "--print_freq", "1", "--val_freq", "0"]


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory) -> Path:
    """An irsrnet run trained by ``python train.py`` as a user runs it; returns its working folder."""
    folder = tmp_path_factory.mktemp("sr_run")
    write_sr_dataset(folder / "data", {"train": 1, "test": 1})
    run_script("train.py", "--model", "irsrnet", "--dataroot", "data", "--name", "x", *SR_ARCHITECTURE,
               "--crop_size", "32", "--n_epochs", "1", *QUIET, cwd=folder)
    return folder


def test_test_py_rebuilds_the_run_from_its_name_alone(sr_run):
    config = json.loads((sr_run / "checkpoints" / "x" / "train_opt.json").read_text())
    expected = {"model": "irsrnet", "ngf": 8, "nb": 2, "gc": 4, "scale": 2, "input_nc": 1, "output_nc": 1}
    assert expected.items() <= config["architecture"].items()
    assert config["options"]["crop_size"] == 32 and config["options"]["n_epochs"] == 1  # every option
    state = torch.load(sr_run / "checkpoints" / "x" / "latest_state.pth", weights_only=True)
    assert state["architecture"] == config["architecture"]

    # No --model, no architecture flag; flags that do not touch the networks (--tile) override freely.
    run_script("test.py", "--name", "x", "--dataroot", "data", "--tile", "8", cwd=sr_run)
    assert (sr_run / "results" / "x" / "test_latest" / "images" / "000_SR.png").is_file()


def test_a_flag_contradicting_the_saved_architecture_is_one_line(sr_run):
    result = run_script("test.py", "--name", "x", "--dataroot", "data", "--nb", "3", "--nf", "8", cwd=sr_run,
                        check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2 and "Traceback" not in output and len(output.splitlines()) == 1
    assert output.startswith("error: --nb 3 but run 'x' was trained with nb 2")
    assert "latest_state.pth" in output and "Drop --nb " in output  # where it was read, what to do; --nf agrees


def test_a_run_without_saved_configuration_loads_with_flags(sr_run, tmp_path):
    """Upstream checkpoints and runs older than the saved configuration: the flags define the networks."""
    old = tmp_path / "checkpoints" / "old"
    shutil.copytree(sr_run / "checkpoints" / "x", old)
    (old / "train_opt.json").unlink()
    state = torch.load(old / "latest_state.pth", weights_only=True)
    del state["architecture"]
    torch.save(state, old / "latest_state.pth")
    common = ["--name", "old", "--dataroot", str(sr_run / "data"), "--checkpoints_dir", str(tmp_path / "checkpoints"),
              "--results_dir", str(tmp_path / "results")]
    with pytest.raises(UserError, match="does not fit the generator as configured"):
        test_script.main(["--model", "irsrnet", *common])  # irsrnet's default architecture
    assert test_script.main(["--model", "irsrnet", *SR_ARCHITECTURE, *common]).images == 1


@pytest.mark.parametrize("naming", [["--model", "irsrnet"], ["--name", "data", "--suffix", "irsrnet"]])
def test_a_name_made_from_the_options_finds_its_run_too(sr_run, tmp_path, naming):
    """Without --name the run is <dataroot name>_<model>; with --suffix, <name>_<suffix>."""
    shutil.copytree(sr_run / "checkpoints" / "x", tmp_path / "data_irsrnet")
    opt = TestOptions().parse(["--dataroot", str(sr_run / "data"), "--checkpoints_dir", str(tmp_path), *naming],
                              save=False)
    assert (opt.name, opt.model, opt.ngf, opt.nb, opt.scale) == ("data_irsrnet", "irsrnet", 8, 2, 2)


def test_net_interp_blends_take_the_runs_architecture(sr_run, tmp_path):
    folder = sr_run / "checkpoints" / "x"
    rows = net_interp.main(["--psnr_weights", str(folder / "latest_net_G.pth"), "--gan_weights",
                            str(folder / "latest_net_G_ema.pth"), "--lambdas", "0.5", "--out", str(tmp_path),
                            "--dataroot", str(sr_run / "data")])
    assert [weight for weight, _ in rows] == [0.5] and "psnr" in rows[0][1]
    blend = json.loads((tmp_path / "interp_0.50" / "train_opt.json").read_text())
    assert blend["architecture"]["nb"] == 2 and blend["options"]["lambda"] == 0.5


@pytest.mark.parametrize(("model", "architecture"), [
    ("pix2pix", ["--netG", "resnet_6blocks", "--ngf", "4", "--norm", "instance"]),
    ("cascade3", ["--netG1", "resnet_6blocks", "--ngf", "4", "--stage2_width", "0.125", "--denoise_features", "4",
                  "--denoise_depth", "2", "--stage2_input", "coarse+visible"]),
])
def test_translation_models_round_trip(tmp_path, model, architecture):
    root = write_aligned_dataset(tmp_path / "data", {"train": 1, "test": 1}, size=32)
    common = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "checkpoints"), "--name", "run"]
    tiny = ["--ndf", "4", "--crop_size", "32", "--load_size", "32", "--n_epochs_decay", "0", *QUIET]
    train_script.main(["--model", model, *architecture, *common, *tiny, "--n_epochs", "1"])
    # Tested, and for pix2pix resumed and exported, without --model or any architecture flag.
    assert test_script.main([*common, "--results_dir", str(tmp_path / "results")]).images == 1
    if model == "pix2pix":
        train_script.main([*common, *tiny, "--n_epochs", "2", "--continue_train"])
        checks = export_script.main([*common, "--formats", "torchscript", "--export_dir", str(tmp_path / "export")])
        assert max(checks[0].differences.values()) < 1e-4
    with pytest.raises(UserError, match=r"--ngf 8 but run 'run' was trained with ngf 4"):
        train_script.main([*common, *tiny, "--n_epochs", "3", "--continue_train", "--ngf", "8"])


@pytest.mark.parametrize("model", models.available_models())
def test_help_defaults_agree_with_the_saved_configuration(tmp_path, model):
    """Every default ``train.py --model M --help`` shows is the value a run saves; an option whose default is
    decided later (shown as None) says so in its help, so no default hides in another layer."""
    options = TrainOptions()
    given = {"model", "checkpoints_dir", "name"}
    opt = options.parse(["--model", model, "--checkpoints_dir", str(tmp_path), "--name", "run"])
    saved = json.loads((tmp_path / "run" / "train_opt.json").read_text())
    assert saved["architecture"] == {"model": model, **{name: getattr(opt, name) for name in
                                                         models.find_model_class(model).architecture_options}}
    for action in options.parser._actions:
        if (action.dest in given or action.dest not in saved["options"] or action.default == argparse.SUPPRESS
                or action.dest == "device"):  # an alias (--nf: its --ngf is checked); auto -> cpu
            continue
        value = saved["options"][action.dest]
        if action.default is None:
            assert value is None or re.search("default|omitted", action.help), f"--{action.dest}: {value} unseen"
        else:
            shown = json.loads(json.dumps(action.default))  # as JSON holds it: tuples become lists
            assert value == shown or str(value) == str(action.default), action.dest


def test_benchmark_measures_the_networks_of_a_named_run(sr_run, monkeypatch):
    from scripts import benchmark

    monkeypatch.chdir(REPO_ROOT)  # benchmark.main moves into the repository; restored afterwards
    rows = benchmark.main(["--name", "x", "--checkpoints_dir", str(sr_run / "checkpoints"), "--cases", "test",
                           "--steps", "1", "--warmup", "0", "--device", "cpu"])
    assert [(row["model"], row["case"]) for row in rows] == [("irsrnet", "test")]
    assert rows[0]["gflop"] < 1  # nf 8, nb 2 at x2; irsrnet's defaults (nf 64, nb 23, x4) take tens of GFLOP
