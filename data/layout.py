"""The folder-pairing rules, in one place: which layout a split folder has and which files pair.

Used by the datasets (``data/aligned_dataset.py``, ``data/sr_dataset.py``) and by the dataset
checker (``scripts/check_dataset.py``), so the checker reports exactly the layout and the pairs
that training loads.

* A/B folders (``aligned`` dataset): ``<root>/<phase>/{A,B}/`` or ``<root>/{A,B}/<phase>/``, folder
  names in any case (``a/``, ``b/``). One of the two without its partner is an error: reading
  ``train/A/`` as side-by-side images would silently cut every infrared image in half.
* HR/LR folders (``sr`` dataset): ``<split>/HR/`` with ``<split>/LR/x<scale>/``, ``<split>/LR_x<scale>/``
  or ``<split>/LR/``, names in any case.
* Partners share their relative path without the extension (``x.png`` pairs with ``x.jpg``); SR
  names may also end in ``x<scale>``, ``_lr`` or ``_hr`` (``0001x4.png`` pairs with ``0001.png``).
  Two files of one folder with one key (``dup.png`` and ``dup.jpg``) are an error.
* Two folders whose names differ only in case (``A/`` and ``a/``) are an error rather than a guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Hashable

from data.image_folder import find_subfolder, images_by_key
from util.errors import UserError

AB_SIDES = ("A", "B")


def _ab_pair_at(parent: Path, below: str = "") -> tuple[Path, Path] | None:
    """``parent/{A,B}/below`` when both exist, None when neither does, an error naming the missing one."""
    folders = [(find_subfolder(parent, side) or parent / side) / below for side in AB_SIDES]
    missing = [folder for folder in folders if not folder.is_dir()]
    if len(missing) == 2:
        return None
    if missing:
        raise UserError(f"{missing[0]} does not exist, but its partner folder of the A/B folders layout does; "
                        f"add it (or fix its name), or use --aligned_layout ab for side-by-side images")
    return folders[0], folders[1]


def ab_folders(root: Path, phase: str) -> tuple[Path, Path] | None:
    """The A and B folders of split ``phase`` (``<root>/<phase>/{A,B}`` first, then
    ``<root>/{A,B}/<phase>``), or None when the split has neither (side-by-side files)."""
    return _ab_pair_at(root / phase) or _ab_pair_at(root, phase)


def ab_folders_at(folder: Path) -> tuple[Path, Path] | None:
    """``folder/{A,B}`` itself as a split (no split level), or None."""
    return _ab_pair_at(folder)


def _scaled_subfolders(parent: Path | None, pattern: str) -> list[tuple[Path, int]]:
    """Subfolders of ``parent`` whose whole name matches ``pattern`` (any case; group 1 is the scale)."""
    if parent is None or not parent.is_dir():
        return []
    found = []
    for child in sorted(parent.iterdir()):
        if child.is_dir() and (match := re.fullmatch(pattern, child.name, re.IGNORECASE)):
            find_subfolder(parent, child.name)  # two names differing only in case: an error
            found.append((child, int(match.group(1))))
    return found


def hr_folder(split: Path) -> Path | None:
    """``<split>/HR`` in any case, or None."""
    return find_subfolder(split, "hr")


def lr_folders(split: Path) -> list[tuple[Path, int | None]]:
    """Every LR folder of an SR split and its scale: ``LR/x<N>/`` (or ``LR/`` itself, scale unknown,
    when it has no such subfolders), then ``LR_x<N>/``."""
    lr = find_subfolder(split, "lr")
    under_lr: list[tuple[Path, int | None]] = list(_scaled_subfolders(lr, r"x(\d+)"))
    if lr is not None and not under_lr:
        under_lr = [(lr, None)]
    return under_lr + list(_scaled_subfolders(split, r"lr_x(\d+)"))


def lr_folder(split: Path, scale: int) -> Path | None:
    """The LR folder the SR dataset reads at ``scale``: ``LR/x<scale>``, else ``LR_x<scale>``, else
    ``LR`` (an error when ``LR`` holds folders for other scales only), else None."""
    lr = find_subfolder(split, "lr")
    under_lr = _scaled_subfolders(lr, r"x(\d+)")
    for folder, folder_scale in under_lr + _scaled_subfolders(split, r"lr_x(\d+)"):
        if folder_scale == scale:
            return folder
    if under_lr:
        raise UserError(f"{lr} has LR folders {', '.join(folder.name for folder, _ in under_lr)} but none for "
                        f"--scale {scale} (x{scale}); pick one of those scales")
    return lr


@dataclass(frozen=True)
class SrLayout:
    """Where an SR split's images are: ``kind`` is ``hr``, ``paired`` or ``lr``."""

    kind: str
    hr_folder: Path | None
    lr_folder: Path | None


def detect_sr_layout(split: Path, sr_input: str, scale: int) -> SrLayout:
    """Resolve ``--sr_input`` (``auto``, ``hr``, ``lr`` or ``paired``) for the split folder ``split``."""
    hr = hr_folder(split)
    if sr_input == "hr":
        return SrLayout("hr", hr or split, None)
    lr = lr_folder(split, scale)
    if sr_input == "paired" or (sr_input == "auto" and hr and lr):
        if not (hr and lr):
            raise UserError(f"--sr_input paired needs {split}/HR and {split}/LR (or LR/x{scale}, LR_x{scale}) folders")
        return SrLayout("paired", hr, lr)
    if sr_input == "lr" or (sr_input == "auto" and lr and not hr):
        return SrLayout("lr", None, lr or split)
    return SrLayout("hr", hr or split, None)


def ab_key(folder: Path, path: Path) -> PurePosixPath:
    """A/B partners share the relative path without the extension."""
    return PurePosixPath(path.relative_to(folder).with_suffix("").as_posix())


def sr_key(scale: int | None) -> Callable[[Path, Path], tuple[PurePosixPath, str]]:
    """HR/LR partners share the relative folder and the name without the extension and without
    ``x<scale>``/``_lr``/``_hr`` suffixes (any scale when ``scale`` is None)."""
    number = str(scale) if scale is not None else r"\d+"
    suffix = re.compile(rf"(?:[_-](?:lr|hr)|[_-]?x{number})+$", re.IGNORECASE)

    def key(folder: Path, path: Path) -> tuple[PurePosixPath, str]:
        relative = path.relative_to(folder)
        return PurePosixPath(relative.parent.as_posix()), suffix.sub("", relative.stem)

    return key


def key_text(key: Hashable) -> str:
    """A pairing key as text (``sub/0001``)."""
    if isinstance(key, tuple):
        return (key[0] / key[1]).as_posix()
    return str(key)


@dataclass
class Pairing:
    """Files of two folders matched by key: ``(key, first, second)``, then the files without a partner."""

    pairs: list[tuple[Hashable, Path, Path]]
    only_first: list[Path]
    only_second: list[Path]


_WHY = {"ab": " once extensions are removed", "sr": " once extensions and scale/LR/HR suffixes are removed"}


def pair_folders(first: Path, second: Path, key: Callable[[Path, Path], Hashable], why: str) -> Pairing:
    """Match the images under two folders by ``key(folder, path)``; a folder without images, or two
    images of one folder with one key, is an error (``why`` says what the key ignores: ``ab`` or ``sr``)."""
    def keyed(folder: Path) -> dict[Hashable, Path]:
        return images_by_key(folder, lambda path: key(folder, path), _WHY.get(why, why))

    images_first, images_second = keyed(first), keyed(second)
    return Pairing(
        pairs=[(name, images_first[name], images_second[name])
               for name in sorted(images_first.keys() & images_second.keys())],
        only_first=[images_first[name] for name in sorted(images_first.keys() - images_second.keys())],
        only_second=[images_second[name] for name in sorted(images_second.keys() - images_first.keys())],
    )


def pair_ab(folder_a: Path, folder_b: Path) -> Pairing:
    """The A/B pairs of two folders."""
    return pair_folders(folder_a, folder_b, ab_key, "ab")


def pair_sr(hr: Path, lr: Path, scale: int | None) -> Pairing:
    """The HR/LR pairs of two folders at ``scale`` (None: any ``x<N>`` suffix)."""
    return pair_folders(hr, lr, sr_key(scale), "sr")
