"""The README's promises: two set-up commands at the top, CI runs the test one, scripts exist."""
from __future__ import annotations

import re

from conftest import REPO_ROOT


def top_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None and text.index(first_block.group(0)) < text.index("\n## ")
    return [line for line in first_block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    commands = top_commands()
    assert len(commands) == 2
    assert commands[0].endswith("bash scripts/quickstart.sh")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    assert top_commands()[1] in (REPO_ROOT / ".ci" / "run").read_text().splitlines()


def test_scripts_named_in_the_readme_exist():
    text = (REPO_ROOT / "README.md").read_text()
    for script in set(re.findall(r"scripts/[\w.]+\.(?:py|sh)", text)):
        assert (REPO_ROOT / script).is_file(), script
