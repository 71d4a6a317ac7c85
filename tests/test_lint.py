"""ruff over the repository, configured in pyproject.toml (pycodestyle, pyflakes, import order; lines of 120)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def ruff_command() -> list[str]:
    """The ruff that requirements.txt installs next to this Python, else one on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("ruff")
    assert found, "ruff is not installed: pip install -r requirements.txt"
    return [found]


def test_ruff_finds_nothing():
    # --no-cache: nothing written into the tree; datasets/, checkpoints/, results/ and .venv are excluded in
    # pyproject.toml, so their contents (converted data, a user's own files) never count.
    result = subprocess.run([*ruff_command(), "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"ruff check . found problems:\n{result.stdout}\n{result.stderr}"


def test_ruff_lints_neither_data_nor_environment():
    """The files ruff checks: never under datasets/, checkpoints/, results/ (a user's data and runs) or .venv."""
    listed = subprocess.run([*ruff_command(), "check", "--no-cache", "--show-files", "."], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    linted = [Path(line.strip()).resolve() for line in listed.stdout.splitlines() if line.strip().endswith(".py")]
    assert linted, listed.stdout
    for folder in (".venv", "datasets", "checkpoints", "results"):
        inside = [path for path in linted if path.is_relative_to(REPO_ROOT / folder)]
        assert not inside, f"ruff lints {folder}/: {inside[:3]}"
