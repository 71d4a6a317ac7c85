"""The project as installed by requirements.txt (``-e .``, pyproject.toml): its packages import from any folder,
Python's own ``test`` package is not shadowed, and the scripts do not edit ``sys.path``."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import conftest
from conftest import REPO_ROOT

PACKAGES = ("data", "models", "options", "scripts", "util")


def test_packages_import_from_any_folder_and_test_is_pythons(tmp_path):
    probe = ("import importlib, json; names = " + repr([*PACKAGES, "util.inference", "test"])
             + "; print(json.dumps({name: importlib.import_module(name).__file__ for name in names}))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"not installed? pip install -r requirements.txt\n{result.stderr}"
    files = json.loads(result.stdout)
    for name in [*PACKAGES, "util.inference"]:
        assert files[name].startswith(str(REPO_ROOT)), (name, files[name])
    assert not files["test"].startswith(str(REPO_ROOT)), "the repository's test.py shadows Python's test package"


def test_scripts_do_not_edit_sys_path():
    for script in sorted((REPO_ROOT / "scripts").glob("*.py")):
        text = script.read_text()
        assert not re.search(r"sys\.path\.(insert|append)", text), script.name
        assert not re.search(r"^\s*import test\b", text, re.M), f"{script.name}: use util.inference, not test.py"


def test_suite_workers_follow_the_usable_cores_up_to_the_cap(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    for cores, workers in ((1, 1), (2, 2), (3, 3), (16, conftest.MAX_TEST_WORKERS)):
        monkeypatch.setattr(conftest.os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert conftest.pytest_xdist_auto_num_workers(None) == workers
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "7")  # the user's choice goes to pytest-xdist itself
    assert conftest.pytest_xdist_auto_num_workers(None) is None
