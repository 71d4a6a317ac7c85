"""Shared fixtures: tiny datasets written on the fly and a CLI runner."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from util.image_io import write_image

REPO_ROOT = Path(__file__).resolve().parents[1]


MAX_TEST_WORKERS = 4  # past this the suite's longest tests (about 2 minutes) set its length; each worker holds a torch


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (pytest.ini): one worker per core this process may use, at most ``MAX_TEST_WORKERS``.
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still overrides it (None defers to pytest-xdist)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, MAX_TEST_WORKERS)


@pytest.fixture(autouse=True)
def _restore_root_logger():
    """In-process ``train.main`` calls configure the root logger; give each test the state it started with."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random visible image and an infrared image derived from it."""
    coarse = rng.random((size // 8 + 1, size // 8 + 1, 3))
    visible = np.kron(coarse, np.ones((8, 8, 1)))[:size, :size]
    infrared = 0.6 * visible[..., 0] + 0.4 * (1.0 - visible[..., 2])
    return (visible * 255).round().astype(np.uint8), (infrared * 255).round().astype(np.uint8)


def write_aligned_dataset(
    root: Path, counts: dict[str, int] | None = None, size: int = 32, layout: str = "ab", seed: int = 0
) -> Path:
    """Write ``root/<split>`` images in the AB or folders layout (A = infrared, B = visible)."""
    rng = np.random.default_rng(seed)
    for split, count in (counts or {"train": 4, "val": 2, "test": 3}).items():
        for index in range(count):
            visible, infrared = _scene(rng, size)
            name = f"{index:04d}.png"
            if layout == "ab":
                side_by_side = np.concatenate([np.repeat(infrared[..., None], 3, axis=2), visible], axis=1)
                write_image(root / split / name, side_by_side)
            else:
                write_image(root / split / "A" / name, infrared)
                write_image(root / split / "B" / name, visible)
    return root


@pytest.fixture
def aligned_root(tmp_path: Path) -> Path:
    return write_aligned_dataset(tmp_path / "data")


def run_script(script: str, *args: str, cwd: Path, check: bool = True, timeout: float = 600,
               alone: bool = False) -> subprocess.CompletedProcess:
    """Run ``python <repo>/<script> args`` in ``cwd`` the way a user would.

    ``alone``: run it in a process group of its own and fail unless, once it exits, no process of
    that group (a data-loader worker) is left within 5 s; a command past ``timeout`` s fails as hung.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / script), *args], cwd=cwd, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=alone)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if alone:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.communicate()
        raise AssertionError(f"{script} {' '.join(args)} did not finish within {timeout} s") from None
    if alone:
        _wait_for_group_to_end(process.pid, f"{script} {' '.join(args)}")
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def _wait_for_group_to_end(group: int, command: str) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(group, signal.SIGKILL)
            raise AssertionError(f"{command} exited but left processes running (its data-loader workers?)")
        time.sleep(0.1)
