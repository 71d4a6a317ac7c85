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
    """Every --flag of a reproduce_*.py command in the README and docs is one the script accepts; flags
    quoted inside its pass-through options (``--cascade3_args "--stage2_input coarse"``) are train.py's."""
    import subprocess
    import sys

    flags_of: dict[str, set[str]] = {}
    passed_through: set[str] = set()
    for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        text = page.read_text().replace("\\\n", " ")
        for script, arguments in re.findall(r"(scripts/reproduce_\w+\.py)([^\n]*)", text):
            for quoted in re.findall(r'"([^"]*)"', arguments):
                passed_through.update(re.findall(r"(?<![\w-])(--\w+)", quoted))
            unquoted = re.sub(r'"[^"]*"', "", arguments)
            flags_of.setdefault(script, set()).update(re.findall(r"(?<![\w-])(--\w+)", unquoted))
    assert flags_of and passed_through

    def help_of(*command: str) -> str:
        return subprocess.run([sys.executable, *command, "--help"], capture_output=True, text=True, check=True).stdout

    for script, flags in flags_of.items():
        help_text = help_of(str(REPO_ROOT / script))
        missing = sorted(flag for flag in flags if flag not in help_text)
        assert not missing, f"{script} has no {missing}"
    train_help = "".join(help_of(str(REPO_ROOT / "train.py"), "--model", model) for model in ("pix2pix", "cascade3"))
    missing = sorted(flag for flag in passed_through if flag not in train_help)
    assert not missing, f"train.py has no {missing}"


def test_every_test_named_under_what_happens_when_things_go_wrong_exists():
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("## What happens when things go wrong"):text.index("## Speed, mixed precision")]
    named = set(re.findall(r"\b(test_\w+)(?=[`:\[])", section)) - set(re.findall(r"(test_\w+)\.py", section))
    defined = set(re.findall(r"^def (test_\w+)\(", "\n".join(path.read_text() for path in (REPO_ROOT / "tests").glob(
        "test_*.py")), re.M))
    assert len(named) > 20 and not named - defined, sorted(named - defined)
