"""Name -> class lookup for plug-in modules that follow a file-naming convention.

A model named ``foo_bar`` lives in ``models/foo_bar_model.py`` as class ``FooBarModel``
(case-insensitive, underscores ignored), so adding a model means adding one file.
Modules are imported only when asked for, keeping start-up fast.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from util.errors import UserError


def available_names(package_dir: Path, suffix: str) -> list[str]:
    """Names of every ``<name>_<suffix>.py`` module in ``package_dir``, sorted."""
    tail = f"_{suffix}.py"
    return sorted(path.name[: -len(tail)] for path in package_dir.glob(f"*{tail}") if not path.name.startswith("base"))


def find_class(package: str, package_dir: Path, name: str, suffix: str, base: type, option: str) -> type:
    """Import ``<package>.<name>_<suffix>`` and return its ``<Name><Suffix>`` subclass of ``base``."""
    names = available_names(package_dir, suffix)
    if name not in names:
        raise UserError(f"unknown {option} {name!r}; available: {', '.join(names)}")
    module = importlib.import_module(f"{package}.{name}_{suffix}")
    wanted = f"{name.replace('_', '')}{suffix}".lower()
    for attribute in vars(module).values():
        if isinstance(attribute, type) and issubclass(attribute, base) and attribute.__name__.lower() == wanted:
            return attribute
    raise UserError(
        f"{package}/{name}_{suffix}.py must define a subclass of {base.__name__} named like {wanted!r} "
        "(case-insensitive)"
    )
