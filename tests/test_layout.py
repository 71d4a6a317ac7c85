"""One folder-pairing rule (data/layout.py): the dataset checker reports the layout and the pairs
that the datasets load, and refuses what they refuse, with the same message."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_script
from data import create_dataset
from data.offline.dataset_check import discover_splits
from options.train_options import TrainOptions
from util.errors import UserError
from util.image_io import write_image


def aligned_opt(tmp_path: Path, root: Path):
    return TrainOptions().parse(["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"),
                                 "--crop_size", "8", "--load_size", "8"], save=False)


def sr_opt(tmp_path: Path, root: Path):
    return TrainOptions().parse(["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"),
                                 "--model", "irsrnet", "--crop_size", "8", "--scale", "4"], save=False)


def write_ab(root: Path, names_a: list[str], names_b: list[str], side_a: str = "a", side_b: str = "b") -> None:
    for name in names_a:
        write_image(root / side_a / name, np.full((8, 8), 10, np.uint8))
    for name in names_b:
        write_image(root / side_b / name, np.full((8, 8, 3), 200, np.uint8))


def checker_pairs(root: Path, split: str) -> list[tuple[Path, ...]]:
    (contents,) = [contents for contents in discover_splits(root) if contents.name.split(" ")[0] == split]
    return [paths for _, paths in contents.items]


@pytest.mark.parametrize("nesting", ["split_first", "sides_first"])
def test_lower_case_a_b_folders_are_the_pairs_training_loads(tmp_path, nesting):
    root = tmp_path / "data"
    for split in ("train", "test"):
        names_a = ["0.png", "1.png", "sub/2.png"]
        names_b = ["0.jpg", "1.png", "sub/2.png"]
        if nesting == "split_first":
            write_ab(root / split, names_a, names_b)
        else:
            write_ab(root, [f"{split}/{name}" for name in names_a], [f"{split}/{name}" for name in names_b])
    splits = discover_splits(root)
    assert [(contents.name, contents.layout) for contents in splits] == [("train", "folders"), ("test", "folders")]
    dataset = create_dataset(aligned_opt(tmp_path, root), "train")
    assert not dataset.is_side_by_side
    assert checker_pairs(root, "train") == [tuple(pair) for pair in dataset.pairs]
    assert len(dataset.pairs) == 3 and dataset.pairs[0][1].suffix == ".jpg"


@pytest.mark.parametrize("lr_name", ["lr", "lr/x4", "Lr_X4"])
def test_lower_case_hr_lr_folders_are_the_pairs_training_loads(tmp_path, lr_name):
    root = tmp_path / "sr"
    for name in ("0001", "0002", "seq/0003"):
        write_image(root / "train" / "hr" / f"{name}.png", np.zeros((32, 32), np.uint8))
        write_image(root / "train" / lr_name / f"{name}x4.png", np.zeros((8, 8), np.uint8))
    (contents,) = discover_splits(root)
    assert contents.layout == "sr" and contents.roles == ("HR", "LR") and not contents.unpaired
    dataset = create_dataset(sr_opt(tmp_path, root), "train")
    assert dataset.layout.kind == "paired"
    assert [paths for _, paths in contents.items] == [tuple(item) for item in dataset.items]
    assert len(dataset.items) == 3


def test_unpaired_names_are_the_ones_training_rejects(tmp_path):
    root = tmp_path / "data"
    write_ab(root / "train", ["0.png", "lonely.png"], ["0.png"], "A", "b")
    (contents,) = discover_splits(root)
    assert [path.name for path in contents.unpaired] == ["lonely.png"]
    with pytest.raises(UserError, match="no partner with the same name.*lonely.png"):
        create_dataset(aligned_opt(tmp_path, root), "train")


def both_refuse(tmp_path: Path, root: Path, opt, match: str, script: bool = False) -> None:
    with pytest.raises(UserError, match=match) as loader:
        create_dataset(opt, "train")
    with pytest.raises(UserError, match=match) as checker:
        discover_splits(root)
    assert str(checker.value) == str(loader.value)
    if not script:
        return
    result = run_script("scripts/check_dataset.py", str(root), cwd=tmp_path, check=False)
    assert result.returncode != 0 and str(loader.value) in result.stderr + result.stdout


def test_a_folder_without_its_partner_is_refused_by_both(tmp_path):
    root = tmp_path / "data"
    write_ab(root / "train", ["0.png"], [], "A", "B")
    write_image(root / "train" / "Bee" / "0.png", np.zeros((8, 8, 3), np.uint8))  # a misnamed B folder
    both_refuse(tmp_path, root, aligned_opt(tmp_path, root), r"train/B does not exist, but its partner folder",
                script=True)


def test_two_files_with_one_name_are_refused_by_both(tmp_path):
    root = tmp_path / "data"
    write_ab(root / "train", ["dup.png", "dup.jpg"], ["dup.png"])
    both_refuse(tmp_path, root, aligned_opt(tmp_path, root), r"dup\.\w+ and \S*dup\.\w+ have the same name")


def test_sr_names_equal_once_the_scale_suffix_is_removed_are_refused_by_both(tmp_path):
    root = tmp_path / "sr"
    write_image(root / "train" / "HR" / "0001.png", np.zeros((32, 32), np.uint8))
    write_image(root / "train" / "LR" / "x4" / "0001.png", np.zeros((8, 8), np.uint8))
    write_image(root / "train" / "LR" / "x4" / "0001x4.png", np.zeros((8, 8), np.uint8))
    both_refuse(tmp_path, root, sr_opt(tmp_path, root), "once extensions and scale/LR/HR suffixes are removed")


def test_folders_differing_only_in_case_are_refused_by_both(tmp_path):
    root = tmp_path / "data"
    write_ab(root / "train", ["0.png"], ["0.png"], "A", "B")
    write_image(root / "train" / "a" / "1.png", np.zeros((8, 8), np.uint8))
    if not (root / "train" / "A" / "1.png").exists():  # a case-sensitive file system
        both_refuse(tmp_path, root, aligned_opt(tmp_path, root), "differ only in case")


def test_runtime_data_modules_never_import_the_offline_tools():
    """data/offline/ (converters, checker, synthetic renderers) is for the scripts; runtime modules import
    it only inside the hook that generates the built-in synthetic dataset on first use."""
    allowed = {("__init__.py", "_ensure_synthetic_v2ir"), ("sr_dataset.py", "ensure_default_data")}
    found = []
    for path in sorted((REPO_ROOT / "data").glob("*.py")):
        for function, node in _imports(ast.parse(path.read_text()), None):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
            if any(name == "data.offline" or name.startswith("data.offline.") for name in names):
                found.append((path.name, function))
    assert found and set(found) <= allowed, found


def _imports(tree: ast.AST, function: str | None):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield function, node
        yield from _imports(node, node.name if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else function)
