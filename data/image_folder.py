"""Finding image files and folders."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Hashable, TypeVar

from util.errors import UserError
from util.image_io import IMAGE_EXTENSIONS, is_image_file

Key = TypeVar("Key", bound=Hashable)


def find_images(folder: Path, max_count: int | None = None) -> list[Path]:
    """All image files under ``folder`` (recursively), sorted; fail clearly when there are none."""
    if not folder.is_dir():
        raise UserError(f"folder {folder} does not exist; check --dataroot and --phase")
    paths = sorted(path for path in _files_under(folder) if is_image_file(path))
    if not paths:
        raise UserError(
            f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)}); check --dataroot and --phase"
        )
    return paths[:max_count] if max_count is not None else paths


def _files_under(folder: Path) -> list[Path]:
    """Every file under ``folder``, following symlinked sub-folders (``dev/A/llvip -> /mnt/llvip/A`` is a common
    way to assemble a dataset; ``Path.rglob`` skips them before Python 3.13), each real folder once so a link
    cycle cannot loop."""
    seen: set[str] = set()
    files: list[Path] = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        files.extend(Path(root, name) for name in names if os.path.isfile(os.path.join(root, name)))
    return files


def find_subfolder(parent: Path, name: str) -> Path | None:
    """``parent/name`` matched case-insensitively (``A`` or ``a``), or None; two matches
    (``A`` and ``a`` on a case-sensitive file system) are an error rather than a guess."""
    if not parent.is_dir():
        return None
    matches = sorted(child for child in parent.iterdir() if child.is_dir() and child.name.lower() == name.lower())
    if len(matches) > 1:
        raise UserError(f"{' and '.join(map(str, matches))} differ only in case; merge or rename them")
    return matches[0] if matches else None


def images_by_key(folder: Path, key: Callable[[Path], Key], why: str) -> dict[Key, Path]:
    """The images under ``folder`` by their pairing key; two images with one key (``dup.png`` and
    ``dup.jpg``) are an error, since silently keeping one would drop the other."""
    images: dict[Key, Path] = {}
    for path in find_images(folder):
        name = key(path)
        if name in images:
            raise UserError(f"{images[name]} and {path} have the same name{why}, so their partner is ambiguous; "
                            f"rename or remove one of them")
        images[name] = path
    return images
