"""Console and file logging that does not break tqdm progress bars."""
from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm


class _TqdmHandler(logging.Handler):
    """Write records through tqdm so an active progress bar is redrawn below them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
        except Exception:  # logging must never crash training
            self.handleError(record)


def setup_logging(log_file: str | Path | None = None, verbose: bool = False) -> None:
    """Configure the root logger: concise console output, full records in ``log_file``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    console = _TqdmHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file_handler)
