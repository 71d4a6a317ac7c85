"""Stopping training cleanly on SIGINT/SIGTERM, and picking the checkpoint to resume from.

While the training loop runs, the first SIGINT (Ctrl-C) or SIGTERM (``kill``, a cluster
scheduler's time limit) only sets a flag: the current optimisation step finishes, an
``interrupted`` checkpoint is saved the same way as ``latest``, and the process exits with
status 128 + the signal number (130 for SIGINT, 143 for SIGTERM, what a shell reports for a
process ended by that signal, so scripts and schedulers still see an interruption). A second
signal acts at once: Ctrl-C raises KeyboardInterrupt, SIGTERM ends the process; the files
already saved stay whole either way (util.checkpoint).

``--continue_train`` without an explicit ``--epoch``/``--load_iter`` resumes from whichever of
``latest`` and ``interrupted`` got furthest (the progress its state file records) and loads completely.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Any, Iterator

import torch

from util.checkpoint import load_training_state
from util.errors import UserError

logger = logging.getLogger(__name__)

INTERRUPTED_TAG = "interrupted"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request the training loop honours between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle the signals inside the ``with`` block (main thread only, as Python requires)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._previous = {signum: signal.signal(signum, self._handle) for signum in _SIGNALS}
        try:
            yield
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signum = signum
        signal.signal(signum, self._previous[signum])  # a second signal acts at once
        logger.warning("%s received: finishing this step, then saving checkpoint '%s' and stopping (send it again "
                       "to stop at once)", signal.Signals(signum).name, INTERRUPTED_TAG)

    def requested(self) -> bool:
        """Whether to stop now. Under torch.distributed every rank gets the same answer (the
        flags are combined), so all ranks stop after the same step."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return self.signum is not None
        device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
        flag = torch.tensor([self.signum or 0], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        self.signum = int(flag.item()) or None
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or 0)


def load_newest_checkpoint(model: Any) -> tuple[str, dict[str, int | bool] | None]:
    """Load the checkpoint ``--continue_train`` resumes from; return its tag and progress.

    An explicit ``--epoch``/``--load_iter`` is loaded as given. Otherwise ``latest`` and
    ``interrupted`` are tried, the one that got furthest first; one that cannot be loaded
    (missing, corrupt, files of different saves) is reported and the other one is used.
    """
    opt = model.opt
    if opt.load_iter > 0 or opt.epoch != "latest":
        return model.checkpoint_tag(), model.load_checkpoint(model.checkpoint_tag())
    model.finish_interrupted_saves()  # so the progress below is that of whole sets
    tags = ("latest", INTERRUPTED_TAG)
    candidates = sorted((tag for tag in tags if any(path.exists() for path in model.checkpoint_files(tag))),
                        key=lambda tag: _recorded_progress(model, tag), reverse=True) or ["latest"]
    for tag, fallback in zip(candidates, candidates[1:]):
        try:
            return tag, _load(model, tag)
        except UserError as error:
            logger.warning("cannot resume from checkpoint '%s' (%s); trying '%s'", tag, error, fallback)
    return candidates[-1], _load(model, candidates[-1])  # when none exists, this says so clearly


def _load(model: Any, tag: str) -> dict[str, int | bool] | None:
    progress = model.load_checkpoint(tag)
    logger.info("resuming from checkpoint '%s' in %s", tag, model.save_dir)
    return progress


def _recorded_progress(model: Any, tag: str) -> int:
    """How far checkpoint ``tag`` got: the images seen its state file records (file dates can be
    changed by a copy or a ``touch``). -1 without a readable state file: such a set is tried last."""
    path = model.state_path(tag)
    try:
        return int(load_training_state(path)["progress"]["total_iters"]) if path.exists() else -1
    except (UserError, KeyError, TypeError, ValueError):
        return -1
