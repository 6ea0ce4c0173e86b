"""Exceptions raised on bad cohort input.

Every message names the file, the subject, the column and the value, and says how
to fix it. They subclass built-in exceptions so callers may catch ``ValueError``.
"""


class CohortFormatError(ValueError):
    """A cohort file is missing, malformed, or holds an invalid value."""


class ImageMismatchError(ValueError):
    """A NIfTI map does not match the atlas space or is not a usable 3D map."""


def internal_error(log, exc: BaseException, debug: bool) -> int:
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


class FmriInputError(ValueError):
    """A resting-state fMRI input cannot give the SMN features (bad grid, a 3D
    image, too few volumes, no repetition time, unknown atlas columns...)."""
