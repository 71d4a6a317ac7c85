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


def test_scripts_named_in_the_readme_and_docs_exist():
    for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for script in set(re.findall(r"scripts/[\w.]+\.(?:py|sh)", page.read_text())):
            assert (REPO_ROOT / script).is_file(), f"{page.name}: {script}"


def test_options_of_the_documented_reproduction_commands_exist():
    """Every --flag of a reproduce_*.py command in the README and docs is one the script accepts."""
    import subprocess
    import sys

    flags_of: dict[str, set[str]] = {}
    for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        text = page.read_text().replace("\\\n", " ")
        for script, arguments in re.findall(r"(scripts/reproduce_\w+\.py)([^\n]*)", text):
            flags_of.setdefault(script, set()).update(re.findall(r"(?<![\w-])(--\w+)", arguments))
    assert flags_of
    for script, flags in flags_of.items():
        help_text = subprocess.run([sys.executable, str(REPO_ROOT / script), "--help"], capture_output=True, text=True,
                                   check=True).stdout
        missing = sorted(flag for flag in flags if flag not in help_text)
        assert not missing, f"{script} has no {missing}"


def test_every_test_named_under_what_happens_when_things_go_wrong_exists():
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("## What happens when things go wrong"):text.index("## Speed, mixed precision")]
    named = set(re.findall(r"\b(test_\w+)(?=[`:\[])", section)) - set(re.findall(r"(test_\w+)\.py", section))
    defined = set(re.findall(r"^def (test_\w+)\(", "\n".join(path.read_text() for path in (REPO_ROOT / "tests").glob(
        "test_*.py")), re.M))
    assert len(named) > 20 and not named - defined, sorted(named - defined)
