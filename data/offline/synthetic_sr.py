"""The built-in super-resolution dataset: the infrared images of the synthetic v2ir dataset.

:func:`ensure_synthetic_sr_dataset` writes ``root/{train,val,test}/NNNNN.png``, the
infrared half (A, left) of each side-by-side image of ``synthetic_v2ir`` as a 1-channel
8-bit PNG; the SR dataset makes the LR inputs from them on the fly. The source dataset is
generated first when it is missing (by default next to ``root``:
``./datasets/synthetic_v2ir`` for ``./datasets/synthetic_sr``).

The images are written to a temporary folder beside ``root`` that is renamed into place
once complete, with ``synthetic_sr.json`` (which records the source's metadata) inside,
so an interrupted build never leaves a dataset that looks complete.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from data.offline import synthetic_v2ir
from util.errors import UserError
from util.image_io import read_image, write_image

logger = logging.getLogger(__name__)

METADATA_FILENAME = "synthetic_sr.json"
GENERATOR_VERSION = 1
_BUILD_MARKER = ".build-"


def _expected_metadata(source_root: Path) -> dict:
    source = json.loads((source_root / synthetic_v2ir.METADATA_FILENAME).read_text())
    return {"generator": "synthetic_sr", "version": GENERATOR_VERSION, "source": source,
            "layout": "1-channel 8-bit HR images: the infrared (left) halves of synthetic_v2ir"}


def _image_names(metadata: dict) -> list[tuple[str, str]]:
    return [(split, f"{index:05d}.png") for split, count in metadata["source"]["counts"].items()
            for index in range(count)]


def _is_complete(root: Path, metadata: dict) -> bool:
    try:
        found = json.loads((root / METADATA_FILENAME).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return found == metadata and all((root / split / name).is_file() for split, name in _image_names(metadata))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned_builds(root: Path) -> None:
    """Delete temporary folders left by builds whose process no longer runs."""
    for folder in root.parent.glob(f".{root.name}{_BUILD_MARKER}*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _check_replaceable(root: Path) -> None:
    """Refuse to delete a folder at ``root`` that holds anything this builder would not write."""
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        ours = (relative.parts[0] in synthetic_v2ir.SPLITS and (path.is_dir() or path.suffix == ".png")) \
            or relative.name == METADATA_FILENAME
        if not ours:
            raise UserError(f"{root} exists but is not a complete synthetic SR dataset and holds other files "
                            f"(e.g. {path}); move it away or pass --dataroot")


def _build(root: Path, source_root: Path, metadata: dict) -> None:
    if root.exists():
        _check_replaceable(root)
    temporary = root.with_name(f".{root.name}{_BUILD_MARKER}{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        for split, name in _image_names(metadata):
            side_by_side = read_image(source_root / split / name)
            write_image(temporary / split / name, side_by_side[:, : side_by_side.shape[1] // 2, 0])
        (temporary / METADATA_FILENAME).write_text(json.dumps(metadata, indent=2) + "\n")
        if root.exists():
            shutil.rmtree(root)
        try:
            os.replace(temporary, root)
        except OSError:
            if not _is_complete(root, metadata):  # unless another process just finished the same build
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def ensure_synthetic_sr_dataset(root: str | Path, source_root: str | Path | None = None, *, workers: int = 1,
                                **source_options) -> Path:
    """Build the SR dataset at ``root`` unless a complete one from the same source is there.

    ``source_options`` (``seed``, ``num_train``, ``size``, ...) are passed to
    :func:`data.offline.synthetic_v2ir.ensure_synthetic_dataset` for the source at ``source_root``.
    """
    root = Path(root)
    source_root = Path(source_root) if source_root is not None else root.parent / "synthetic_v2ir"
    synthetic_v2ir.ensure_synthetic_dataset(source_root, workers=workers, **source_options)
    metadata = _expected_metadata(source_root)
    if _is_complete(root, metadata):
        return root
    logger.info("Writing the synthetic SR dataset to %s (infrared images of %s)", root, source_root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(root)
    _build(root, source_root, metadata)
    return root
