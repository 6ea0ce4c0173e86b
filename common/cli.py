"""How the three command lines (``python -m features | training | serve``) run.

One rule for all of them: a problem with the inputs (a bad value, a missing or
unreadable file, an output that exists) is one line and exit status 2; anything
else is a bug, reported in one line (the traceback with ``ALSDX_DEBUG=1``) with
exit status 3. No traceback reaches a user by default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

__all__ = ["INPUT_ERRORS", "internal_error", "run_command", "setup_logging"]

#: Exceptions that mean "fix your input": ``TypeError`` is a configuration value of
#: the wrong type, ``OSError`` a file that is missing, exists, or cannot be read or
#: written (permissions, a full disk).
INPUT_ERRORS = (ValueError, TypeError, OSError)


def setup_logging(quiet: Iterable[str] = ()) -> None:
    """Plain messages at INFO; the libraries in ``quiet`` at WARNING."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)


def run_command(log: logging.Logger, work: Callable[[], int]) -> int:
    """Run ``work`` and return its exit status; 2 for an input problem (logged as
    ``error: <message>``), 3 for a bug (:func:`internal_error`)."""
    try:
        return work()
    except INPUT_ERRORS as exc:
        log.error("error: %s", exc)
        return 2
    except Exception as exc:  # a bug: one line, the traceback only when asked
        return internal_error(log, exc, bool(os.environ.get("ALSDX_DEBUG")))


def internal_error(log: logging.Logger, exc: BaseException, debug: bool) -> int:
    """Report an unexpected error (a bug, not a data problem) in one line, without a
    traceback unless ``debug``; returns exit status 3."""
    if debug:
        log.exception("internal error")
    else:
        log.error(
            "internal error: %s: %s. This is a bug, not a problem with your data: "
            "rerun with ALSDX_DEBUG=1 for the traceback and report it.",
            type(exc).__name__,
            exc,
        )
    return 3
