"""A run's saved configuration: what train.py records, and the rule every entry point rebuilds a model by.

train.py writes ``<checkpoints_dir>/<name>/train_opt.json`` (every resolved option, and apart from them the
architecture: the options that change the networks, listed by each model class in ``architecture_options``)
and records the architecture in each checkpoint's ``<tag>_state.pth`` as well, so a checkpoint still knows its
networks after a later run in the same folder rewrote the JSON file.

test.py, scripts/export.py, scripts/net_interp.py and ``train.py --continue_train`` rebuild the networks from it:
the saved architecture becomes the default of those options (``--model`` included), a flag given on the command
line that contradicts it is an error (the weights would not fit, or would compute something else), and every
other option (data, output, batch size, tiling, metrics) overrides freely. A folder without a saved architecture
(upstream pix2pix, runs older than this file) loads with the flags given, as before.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from util.errors import UserError

CONFIG_FILE = "train_opt.json"
CONFIG_FORMAT = 1


def write_config(folder: Path, architecture_values: Mapping[str, Any], options: Mapping[str, Any]) -> Path:
    """Write ``<folder>/train_opt.json``: the architecture, and every option as resolved."""
    path = folder / CONFIG_FILE
    folder.mkdir(parents=True, exist_ok=True)
    # default=str: options are plain values; anything else (none today) is kept as its text, not a crash.
    path.write_text(json.dumps({"format": CONFIG_FORMAT, "architecture": dict(architecture_values),
                                "options": dict(options)}, indent=2, sort_keys=True, default=str) + "\n")
    return path


@dataclass(frozen=True)
class SavedArchitecture:
    """The architecture a checkpoint was trained with, and the file it was read from."""

    values: dict[str, Any]
    source: Path


def read_saved_architecture(folder: Path, tag: str) -> SavedArchitecture | None:
    """The architecture of checkpoint ``tag`` in ``folder``: from its state file, else from the folder's
    ``train_opt.json``; None for a folder without either (upstream checkpoints, older runs)."""
    state_file = folder / f"{tag}_state.pth"
    if state_file.is_file():
        try:  # mmap: only the small record is read, not the optimizer states
            state = torch.load(state_file, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # a damaged file is reported, with its name, when the checkpoint itself is loaded
            state = None
        if isinstance(state, Mapping) and isinstance(state.get("architecture"), Mapping):
            return SavedArchitecture(dict(state["architecture"]), state_file)
    config_file = folder / CONFIG_FILE
    if config_file.is_file():
        try:
            saved = json.loads(config_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UserError(f"cannot read {config_file} ({error}); restore it from the run, or delete it to give "
                            f"the architecture flags by hand") from None
        if isinstance(saved, Mapping) and isinstance(saved.get("architecture"), Mapping):
            return SavedArchitecture(dict(saved["architecture"]), config_file)
    return None


def as_flags(values: Mapping[str, Any]) -> list[str]:
    """Command-line flags giving the options ``values`` (``model`` left out), for a tool that builds a model from a
    command line of its own (scripts/benchmark.py)."""
    flags: list[str] = []
    for key, value in values.items():
        if key == "model" or value is None or value is False:
            continue
        values = value if isinstance(value, list) else [value]
        flags += [f"--{key}"] if value is True else [f"--{key}", *map(str, values)]
    return flags


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> dict[str, str]:
    """``{dest: flag as typed}`` for every option of ``parser`` given on the command line ``argv``, so a value
    given explicitly can be told from a default."""
    unset = object()
    actions = [action for action in parser._actions if action.dest != argparse.SUPPRESS]
    # argparse fills a dest with its default only when the namespace lacks it: preset, it keeps "unset".
    given = vars(parser.parse_known_args(argv, argparse.Namespace(**{action.dest: unset for action in actions}))[0])
    flags = {}
    for action in actions:
        if given.get(action.dest, unset) is not unset:
            typed = [token.split("=", 1)[0] for token in argv if token.split("=", 1)[0] in action.option_strings]
            if typed:
                flags[action.dest] = typed[-1]
    return flags


def option_names(parser: argparse.ArgumentParser) -> set[str]:
    """Every option destination ``parser`` knows."""
    return {action.dest for action in parser._actions}


def contradictions(saved: SavedArchitecture, opt: argparse.Namespace, flags: Mapping[str, str],
                   name: str) -> str | None:
    """One line naming every explicit flag in ``flags`` whose value in ``opt`` differs from the saved
    architecture, with both values and what to do; None when they all agree."""
    clashing = [key for key, value in saved.values.items() if key in flags and getattr(opt, key, value) != value]
    if not clashing:
        return None
    given = "; ".join(f"{flags[key]} {getattr(opt, key)} but run '{name}' was trained with {key} "
                      f"{saved.values[key]}" for key in clashing)
    return (f"{given} (its architecture, read from {saved.source}; weights of another architecture would not "
            f"fit). Drop {', '.join(flags[key] for key in clashing)} to use the saved value, or give the --name "
            f"of a run trained that way")
