"""User-facing errors: one clear message and a non-zero exit instead of a traceback."""
from __future__ import annotations

import logging
import sys
from typing import Callable, Sequence

logger = logging.getLogger(__name__)

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem the user can fix: a bad option, path, file or checkpoint.

    The message must name the offending option or file and say what to do.
    """


class BadImageError(UserError):
    """An image file (or a pair of files) that cannot be used as it is: unreadable, truncated,
    too large, or not matching its partner. ``--bad_image skip`` leaves such files out."""

    # One positional argument, so DataLoader workers can re-raise it in the main process.
    def __init__(self, message: str, path: object = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)


def user_message(error: BaseException) -> str:
    """The message of ``error`` without a DataLoader worker's traceback."""
    # DataLoader workers re-raise exceptions with the worker's traceback pasted into the
    # message; the user only needs the original message, the text after the last
    # "<class name>: " of that traceback (the re-raised error has the original class).
    text = str(error)
    marker = f"{type(error).__name__}: "
    if "Original Traceback" in text and marker in text:
        text = text.rsplit(marker, 1)[1]
    return text.strip()


def run_cli(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> None:
    """Run a command-line entry point, turning :class:`UserError` into exit status 2."""
    try:
        main(argv)
    except UserError as error:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logger.error("error: %s", user_message(error))
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        logger.error("interrupted")
        sys.exit(130)
