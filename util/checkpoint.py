"""Checkpoint files: atomic writes and weights-only loading.

Network weights are stored as plain ``state_dict`` files (``<tag>_net_<name>.pth``), the
same layout upstream pix2pix writes, so checkpoints move freely between the two projects.
Everything else needed to resume (optimizers, schedulers, counters, RNG states) lives in
``<tag>_state.pth``, written after the networks, together with a digest of each network
file so a set mixed from two saves is detected instead of silently loaded.

A checkpoint set is saved as one unit (``save_files_together``): every file is written in
full under a temporary name, a commit marker is created, the files are renamed into place
and the marker is removed. ``finish_interrupted_save`` completes a set whose renames were
cut short and discards one that was still being written, so a process killed at any moment
leaves a loadable set.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Iterator

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
        _write_synced(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)  # make the rename itself durable


def partial_path(path: Path) -> Path:
    """Where ``save_files_together`` writes ``path`` before renaming it into place."""
    return path.with_name(f"{path.name}.partial")


def commit_marker(paths: Sequence[Path]) -> Path:
    """The marker whose existence means every partial file of the set is complete."""
    return paths[-1].with_name(f"{paths[-1].name}.commit")


def save_files_together(items: Sequence[tuple[Path, Any]]) -> None:
    """Save several files as one unit; the last one is the set's record (the training state).

    1. each object is written and fsynced to ``<file>.partial``;
    2. the commit marker ``<last file>.commit`` is created;
    3. the partial files are renamed over the final names, in order;
    4. the marker is removed.
    A kill before step 2 leaves the previous set untouched (its partial files are discarded
    later); a kill after it leaves partial files that ``finish_interrupted_save`` renames.
    """
    paths = [Path(path) for path, _ in items]
    folder = paths[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    finish_interrupted_save(paths)  # never build on top of another save's leftovers
    try:
        for path, obj in zip(paths, (obj for _, obj in items)):
            _write_synced(obj, partial_path(path))
        _fsync_dir(folder)
    except (OSError, RuntimeError) as error:  # a full disk (torch's writer raises RuntimeError for it)
        for path in paths:
            partial_path(path).unlink(missing_ok=True)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot save checkpoint {paths[-1].name} in {folder} ({reason}); the checkpoint set "
                        f"saved before is intact: free some space, then resume with --continue_train") from None
    commit_marker(paths).touch()
    _fsync_dir(folder)
    _rename_partials(paths)
    commit_marker(paths).unlink()
    _fsync_dir(folder)


LOCK_FILE = ".lock"


@contextlib.contextmanager
def experiment_lock(folder: Path) -> Iterator[None]:
    """Hold ``<folder>/.lock`` inside the ``with`` block: a second run writing the same experiment
    folder would overwrite the first one's checkpoints, so it stops with a clear error instead.
    The system releases the lock when the process ends, even when it is killed."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UserError(f"experiment folder {folder} is in use by another training run (process {holder}); "
                            f"wait for it to finish, or choose another --name") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def finish_interrupted_save(paths: Sequence[Path]) -> bool:
    """Complete or discard a ``save_files_together`` of ``paths`` that was cut short.

    Returns True when a committed set had to be renamed into place.
    """
    paths = [Path(path) for path in paths]
    marker = commit_marker(paths)
    if marker.exists():
        _rename_partials(paths)
        marker.unlink()
        _fsync_dir(marker.parent)
        return True
    for path in paths:  # written before the commit: the previous set is still whole
        partial_path(path).unlink(missing_ok=True)
    return False


def _rename_partials(paths: Sequence[Path]) -> None:
    for path in paths:
        if partial_path(path).exists():
            os.replace(partial_path(path), path)
    _fsync_dir(paths[0].parent)


def _write_synced(obj: Any, path: Path) -> None:
    with open(path, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def safe_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``; refuse pickled Python objects clearly."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; check --checkpoints_dir, --name and --epoch")
    check_zip_crc(path)
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
        raise UserError(f"cannot read checkpoint {path}: {error}. "
                        "The file is corrupt or not a PyTorch checkpoint") from None


def check_zip_crc(path: Path) -> None:
    """Refuse a checkpoint whose stored CRCs do not match its bytes: ``torch.load`` does not check
    them, so bytes damaged on disk or in a copy would load as wrong weights without a word."""
    if not zipfile.is_zipfile(path):  # the legacy (pre-1.6) format has no CRCs; torch.load checks its structure
        return
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise UserError(f"cannot read checkpoint {path}: {error}. The file is damaged; use another checkpoint "
                        f"(--epoch) or copy it again") from None
    if damaged is not None:
        raise UserError(f"checkpoint {path} is damaged: its record {damaged} fails its CRC check. Use another "
                        f"checkpoint (--epoch) or copy it again")


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


_STATE_KEYS = ("progress", "optimizers", "schedulers", "rng", "net_digests")


def load_training_state(path: Path) -> dict[str, Any]:
    """A ``<tag>_state.pth`` file, checked to be a training state this project wrote."""
    state = safe_load(path, map_location="cpu")
    missing = [key for key in _STATE_KEYS if key not in state] if isinstance(state, Mapping) else list(_STATE_KEYS)
    if missing or not isinstance(state["net_digests"], Mapping):
        raise UserError(f"{path} is not a training state written by train.py (it holds {type(state).__name__}"
                        f"{'' if not isinstance(state, Mapping) else ' without ' + ', '.join(missing)}); remove it "
                        f"to use the network files alone, or use another checkpoint (--epoch)")
    return state


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
