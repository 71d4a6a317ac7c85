"""The README's and docs/'s promises: two set-up commands at the top, CI runs the test one, the scripts, flags,
tests, links and packages they name exist."""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from conftest import REPO_ROOT


def pages() -> list[Path]:
    """README.md and every page of docs/: what a user reads."""
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def defined_tests() -> set[str]:
    return set(re.findall(r"^def (test_\w+)\(", "\n".join(path.read_text() for path in (REPO_ROOT / "tests").glob(
        "test_*.py")), re.M))


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
    for page in pages():
        for script in set(re.findall(r"scripts/[\w.]+\.(?:py|sh)", page.read_text())):
            assert (REPO_ROOT / script).is_file(), f"{page.name}: {script}"


def test_options_of_the_documented_reproduction_commands_exist():
    """Every --flag of a reproduce_*.py command in the README and docs is one the script accepts; flags
    quoted inside its pass-through options (``--cascade3_args "--stage2_input coarse"``) are train.py's."""
    import subprocess
    import sys

    flags_of: dict[str, set[str]] = {}
    passed_through: set[str] = set()
    for page in pages():
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
    """docs/reliability.md (the README's former section "What happens when things go wrong") names the test
    behind each guarantee."""
    section = (REPO_ROOT / "docs" / "reliability.md").read_text()
    assert section.startswith("# What happens when things go wrong")
    named = set(re.findall(r"\b(test_\w+)(?=[`:\[])", section)) - set(re.findall(r"(test_\w+)\.py", section))
    defined = defined_tests()
    assert len(named) > 20 and not named - defined, sorted(named - defined)


def test_every_test_and_test_file_named_in_the_readme_and_docs_exists():
    defined = defined_tests()
    for page in pages():
        text = page.read_text()
        files = set(re.findall(r"(test_\w+)\.py", text))
        missing_files = sorted(name for name in files if not (REPO_ROOT / "tests" / f"{name}.py").is_file())
        assert not missing_files, f"{page.name}: {missing_files}"
        named = set(re.findall(r"(?<![\w-])(test_\w+)(?=[`:\[])", text)) - files  # not --test_list, a flag
        assert not named - defined, f"{page.name}: {sorted(named - defined)}"


def test_relative_links_of_the_readme_and_docs_resolve():
    """Every relative Markdown link of README.md and docs/*.md names an existing file (anchors are not checked)."""
    for page in pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            path = target.split("#", 1)[0]
            if not path or re.match(r"[a-z]+:", path):
                continue  # an anchor on the same page, or a web address
            assert (page.parent / path).exists(), f"{page.name}: link to {target}"


def test_readme_links_every_docs_page():
    readme = (REPO_ROOT / "README.md").read_text()
    unlinked = [page.name for page in sorted((REPO_ROOT / "docs").glob("*.md")) if f"](docs/{page.name}" not in readme]
    assert not unlinked, unlinked


def test_development_page_maps_every_package():
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "*__init__.py"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    packages = {str(PurePosixPath(path).parent) for path in tracked} - {"."}
    assert packages, "no package found"
    text = (REPO_ROOT / "docs" / "development.md").read_text()
    missing = sorted(package for package in packages if f"`{package}/`" not in text)
    assert not missing, f"docs/development.md has no entry for {missing}"


def documented_commands(entry_point: str) -> list[tuple[str, str]]:
    """(page, argument string) of every ``train.py``/``test.py`` command in a code block or inline code span."""
    commands = []
    for page in pages():
        text = page.read_text().replace("\\\n", " ")
        blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
        spans = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.S))
        for line in [*(line for block in blocks for line in block.splitlines()), *spans]:
            line = line.split(" #", 1)[0]
            match = re.search(rf"(?<!\S){entry_point}\.py((?:\s+\S+)*)", line)
            if match and re.fullmatch(r"\s*(\S*python3?\s+|.*torchrun.*)?", line[:match.start()]):
                commands.append((page.name, match.group(1)))
    return commands


def test_flags_of_the_documented_train_and_test_commands_exist():
    """Every --flag of a ``python train.py``/``test.py`` command in README.md and docs/ is one that entry point
    accepts for that command's --model (parsed in-process: no subprocess per model)."""
    from options.config_file import read_config
    from options.test_options import TestOptions
    from options.train_options import TrainOptions

    known: dict[tuple[str, str], set[str]] = {}
    checked = 0
    for entry_point, options_class in (("train", TrainOptions), ("test", TestOptions)):
        for page, arguments in documented_commands(entry_point):
            words = arguments.split()
            model = words[words.index("--model") + 1] if "--model" in words[:-1] else "pix2pix"
            config = REPO_ROOT / words[words.index("--config") + 1] if "--config" in words[:-1] else None
            if "--model" not in words and config is not None and config.is_file():  # the file's model
                model = read_config(str(config)).values.get("model", model)
            if (entry_point, model) not in known:
                options = options_class()
                options.gather_options(["--model", model])
                known[entry_point, model] = set(options.parser._option_string_actions)
            unknown = sorted(word for word in words if word.startswith("--") and word not in known[entry_point, model])
            assert not unknown, f"{page}: {entry_point}.py --model {model} has no {unknown}"
            checked += 1
    assert checked > 20
