"""``--config FILE``: options read from a YAML or JSON file, which the command line overrides.

A configuration file is a flat mapping from option name to value (``model: cascade3``, ``netG1: unet_256``,
``no_dropout: true``): every key is an option of train.py or test.py without its ``--`` (an alias such as irsrnet's
``nf`` works too). The values become the parser's defaults before the command line is parsed, so a flag given
there wins; ``model`` and ``dataset_mode`` in the file choose the model and dataset whose options the file may then
set. A run's saved ``checkpoints/<name>/train_opt.json`` is accepted as well: its resolved options are used,
except those that belong to that run or that machine (name, device, phase, a built-in dataroot).

Keys that are options of the other entry point only (``n_epochs`` given to test.py, ``results_dir`` to train.py)
are skipped, so one file serves both. Anything else wrong (a missing or unreadable file, bad YAML, an unknown key,
a value of the wrong type) is one :class:`UserError` naming the file and the key.
"""
from __future__ import annotations

import argparse
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from util.errors import UserError

# Options of a saved train_opt.json that describe that run or that machine, not the experiment.
SAVED_RUN_ONLY = ("name", "device", "gpu_ids", "phase", "continue_train", "epoch_count", "epoch", "load_iter",
                  "config")


@dataclass(frozen=True)
class ConfigFile:
    """The options of one ``--config`` file: ``{key as written: value}``."""

    path: Path
    values: dict[str, Any]


def config_path(argv: Sequence[str]) -> str | None:
    """The ``--config`` value of ``argv`` (the last one), or None."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=None)
    return pre.parse_known_args(list(argv))[0].config


def read_config(file_name: str) -> ConfigFile:
    """Read a YAML or JSON configuration file, or a saved ``train_opt.json``."""
    path = Path(file_name)
    if not path.is_file():
        raise UserError(f"--config {file_name}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--config {file_name}: cannot read it ({error})") from None
    if path.suffix.lower() == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"--config {file_name}: not valid JSON (line {error.lineno}: {error.msg})") from None
    else:
        import yaml

        try:
            content = yaml.safe_load(text)
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            line = f"line {where.line + 1}: " if where is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise UserError(f"--config {file_name}: not valid YAML ({line}{problem})") from None
    if content is None:
        content = {}
    if not isinstance(content, Mapping):
        raise UserError(f"--config {file_name}: expected a mapping of option names to values (e.g. 'model: "
                        f"pix2pix'), got a {type(content).__name__}")
    if "format" in content and isinstance(content.get("options"), Mapping):  # a run's train_opt.json
        options = dict(content["options"])
        if options.get("dataroot_is_default"):
            options.pop("dataroot", None)  # the built-in dataset: resolved again where this runs
        for key in (*SAVED_RUN_ONLY, "dataroot_is_default", "isTrain"):
            options.pop(key, None)
        return ConfigFile(path, options)
    bad = [key for key in content if not isinstance(key, str)]
    if bad:
        raise UserError(f"--config {file_name}: key {bad[0]!r} is not an option name")
    return ConfigFile(path, dict(content))


def _actions_by_key(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option of ``parser`` by the names a file may use: its destination and its long flags."""
    actions: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if action.dest in (argparse.SUPPRESS, "help", "config") or not action.option_strings:
            continue
        for flag in action.option_strings:
            if flag.startswith("--"):
                actions.setdefault(flag[2:], action)
        actions.setdefault(action.dest, action)
    return actions


def _convert(config: ConfigFile, key: str, value: Any, action: argparse.Action) -> Any:
    """``value`` as the option's type (and within its choices); a UserError naming the file and key if not."""
    def wrong(expected: str) -> UserError:
        return UserError(f"--config {config.path}: {key}: {value!r} is not {expected}")

    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if value is None:
        return None
    if action.nargs not in (None, "?"):
        items = value if isinstance(value, list) else [value]
        if isinstance(action.nargs, int) and len(items) != action.nargs:
            raise wrong(f"a list of {action.nargs} values")
        return [_convert_one(wrong, item, action) for item in items]
    if isinstance(value, (list, dict)):
        raise wrong("a single value")
    return _convert_one(wrong, value, action)


def _convert_one(wrong, value: Any, action: argparse.Action) -> Any:
    if isinstance(value, bool) and action.type is not None:
        raise wrong(f"a {getattr(action.type, '__name__', 'value')}")
    if isinstance(value, bool):  # a string option: YAML reads yes/no/on/off as booleans
        raise wrong("a string (quote it)")
    try:
        converted = action.type(str(value)) if callable(action.type) else str(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        raise wrong(f"a valid {getattr(action.type, '__name__', 'value')}") from None
    if action.choices is not None and converted not in action.choices:
        raise wrong(f"one of {', '.join(map(str, action.choices))}")
    return converted


def config_defaults(config: ConfigFile, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """``{dest: value}`` for the file's keys that ``parser`` knows, converted to the options' types."""
    actions = _actions_by_key(parser)
    return {actions[key].dest: _convert(config, key, value, actions[key])
            for key, value in config.values.items() if key in actions}


def check_unknown_keys(config: ConfigFile, parser: argparse.ArgumentParser, other_phase: Iterable[str],
                       model: str, program: str) -> None:
    """Refuse a key that is an option neither of ``parser`` nor of the other entry point (``other_phase``)."""
    known = set(_actions_by_key(parser)) | set(other_phase)
    for key in config.values:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UserError(f"--config {config.path}: unknown option '{key}' for {program} --model {model}{hint} "
                            f"(every key is an option name without '--'; see python {program} --model {model} "
                            f"--help)")


def explicit_keys(config: ConfigFile, parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{dest: how to name it in a message}`` for the file's keys, as :func:`options.saved_config.contradictions`
    names flags."""
    actions = _actions_by_key(parser)
    return {actions[key].dest: f"{key} (from {config.path})" for key in config.values if key in actions}


def option_keys(parser: argparse.ArgumentParser) -> set[str]:
    """Every name a configuration file may give an option of ``parser`` by."""
    return set(_actions_by_key(parser))
