"""Safe loading and safe paths: every torch.load is weights-only, a malicious pickle is refused
without running its code (network file and training-state file), and option values cannot send
files outside --checkpoints_dir / --results_dir."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT, run_script, write_aligned_dataset
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError

TINY = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop_size", "32", "--num_threads", "0"]
TRAIN = [*TINY, "--load_size", "36", "--display_id", "0", "--val_freq", "0", "--n_epochs_decay", "0"]


class Payload:
    """Unpickling this would run code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def torch_load_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "load" and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"]


def test_every_torch_load_in_the_repository_is_weights_only():
    sources = [path for path in REPO_ROOT.rglob("*.py") if not any(part.startswith(".") for part in
                                                                   path.relative_to(REPO_ROOT).parts)]
    calls = {path: torch_load_calls(path) for path in sources}
    assert sum(len(found) for found in calls.values()) >= 2  # util/checkpoint.py and tests at least
    for path, found in calls.items():
        for call in found:
            flags = {keyword.arg: keyword.value for keyword in call.keywords}
            assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True, (
                f"{path.relative_to(REPO_ROOT)}:{call.lineno}: torch.load without weights_only=True")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A finished one-epoch run: (work folder, dataset root)."""
    tmp = tmp_path_factory.mktemp("trained")
    root = write_aligned_dataset(tmp / "data", {"train": 2, "test": 1}, size=32)
    run_script("train.py", "--dataroot", str(root), "--name", "run", "--checkpoints_dir", str(tmp / "ck"), *TRAIN,
               "--n_epochs", "1", cwd=tmp)
    return tmp, root


def copy_run(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for path in source.glob("*.pth"):
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_malicious_network_file_is_refused_by_test_py(tmp_path, trained):
    work, root = trained
    folder = copy_run(work / "ck" / "run", tmp_path / "ck" / "evil")
    marker = tmp_path / "code_ran"
    torch.save({"model.1.weight": torch.zeros(1), "payload": Payload(marker)}, folder / "latest_net_G.pth")
    result = run_script("test.py", "--dataroot", str(root), "--name", "evil", "--checkpoints_dir", str(tmp_path / "ck"),
                        "--results_dir", str(tmp_path / "results"), *TINY, cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert re.search(r"error: refusing to load \S+latest_net_G\.pth: it is not a plain state dict \(it contains the "
                     r"Python object \S+, and loading it could run code\)", output), output
    assert not marker.exists()


def test_malicious_training_state_is_refused_on_resume(tmp_path, trained):
    work, root = trained
    folder = copy_run(work / "ck" / "run", tmp_path / "ck" / "evil")
    marker = tmp_path / "code_ran"
    torch.save({"format": 1, "progress": Payload(marker)}, folder / "latest_state.pth")
    result = run_script("train.py", "--dataroot", str(root), "--name", "evil", "--checkpoints_dir",
                        str(tmp_path / "ck"), *TRAIN, "--n_epochs", "2", "--continue_train",
                        cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert "error: refusing to load" in output and "latest_state.pth: it is not a plain state dict" in output
    assert not marker.exists()


# ------------------------------------------------------------------ paths
@pytest.mark.parametrize("options", [TrainOptions, TestOptions])
@pytest.mark.parametrize(("option", "value"), [
    ("--name", "../escape"), ("--name", "a/b"), ("--name", ".."), ("--name", "/abs"), ("--name", "tab\tname"),
    ("--epoch", "../../latest"), ("--phase", "../test"), ("--suffix", "x/../../y"),
])
def test_option_values_that_are_file_names_must_be_plain(tmp_path, options, option, value):
    name = "--name" if option == "--suffix" else option
    with pytest.raises(UserError, match=rf"{name} .* must be a plain name \(no '/'"):
        options().parse(["--checkpoints_dir", str(tmp_path / "ck"), option, value], save=False)


def test_plain_names_pass(tmp_path):
    opt = TestOptions().parse(["--checkpoints_dir", str(tmp_path), "--name", "kaist..v2 (run 3)", "--epoch", "12",
                               "--phase", "test_night"], save=False)
    assert (opt.name, opt.epoch, opt.phase) == ("kaist..v2 (run 3)", "12", "test_night")


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def test_nothing_is_written_outside_checkpoints_and_results(tmp_path, trained):
    work, root = trained
    checkpoints, results, cwd = tmp_path / "ck", tmp_path / "results", tmp_path / "cwd"
    cwd.mkdir()
    before = files_under(work) | files_under(tmp_path)
    common = ["--dataroot", str(root), "--name", "run", "--checkpoints_dir", str(checkpoints), *TINY]
    run_script("train.py", *common, *TRAIN[len(TINY):], "--n_epochs", "1", cwd=cwd)
    run_script("test.py", *common, "--results_dir", str(results), cwd=cwd)
    rejected = run_script("test.py", *common, "--results_dir", str(results), "--name", "../../outside", cwd=cwd,
                          check=False)
    assert rejected.returncode == 2
    assert "--name '../../outside' must be a plain name" in rejected.stderr + rejected.stdout
    written = (files_under(work) | files_under(tmp_path)) - before
    assert written and all(path.is_relative_to(checkpoints) or path.is_relative_to(results) for path in written), \
        sorted(str(path) for path in written if not (path.is_relative_to(checkpoints) or path.is_relative_to(results)))
