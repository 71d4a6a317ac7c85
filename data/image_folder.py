"""Finding image files in folders."""
from __future__ import annotations

from pathlib import Path

from util.errors import UserError
from util.image_io import IMAGE_EXTENSIONS, is_image_file


def find_images(folder: Path, max_count: int | None = None) -> list[Path]:
    """All image files under ``folder`` (recursively), sorted; fail clearly when there are none."""
    if not folder.is_dir():
        raise UserError(f"folder {folder} does not exist; check --dataroot and --phase")
    paths = sorted(path for path in folder.rglob("*") if path.is_file() and is_image_file(path))
    if not paths:
        raise UserError(
            f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)}); check --dataroot and --phase"
        )
    return paths[:max_count] if max_count is not None else paths
