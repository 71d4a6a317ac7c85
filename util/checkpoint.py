"""Checkpoint files: atomic writes and weights-only loading.

Network weights are stored as plain ``state_dict`` files (``<tag>_net_<name>.pth``), the
same layout upstream pix2pix writes, so checkpoints move freely between the two projects.
Everything else needed to resume (optimizers, schedulers, counters, RNG states) lives in
``<tag>_state.pth``, written after the networks, together with a digest of each network
file so an interrupted save is detected instead of silently mixing two checkpoints.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from util.errors import UserError

# Prefixes added by DistributedDataParallel / DataParallel and torch.compile wrappers.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it into place.

    A crash at any moment leaves either the old file or the new one, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def safe_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``; refuse pickled Python objects clearly."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; check --checkpoints_dir, --name and --epoch")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if unsupported is None:
            raise UserError(f"cannot read checkpoint {path}: the file is corrupt or not a PyTorch checkpoint") from None
        raise UserError(
            f"refusing to load {path}: it is not a plain state dict (it contains the Python object "
            f"{unsupported.group(1)}, and loading it could run code). Re-save it with "
            f"torch.save(model.state_dict(), path)"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise UserError(f"cannot read checkpoint {path}: {error}. The file is corrupt or not a PyTorch checkpoint") from None


def load_state_dict_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a network ``state_dict`` file and strip DDP/compile wrapper prefixes."""
    loaded = safe_load(path, map_location)
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise UserError(
            f"{path} is not a network state dict (expected a mapping of parameter names to tensors)"
        )
    return {_strip_wrapper_prefixes(key): value for key, value in loaded.items()}


def _strip_wrapper_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                changed = True
    return key


def state_dict_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """A content hash of a state dict, used to check that a checkpoint set belongs together."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous().reshape(-1)
        digest.update(key.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(state_dict[key].shape)).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
