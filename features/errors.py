"""Exceptions raised on bad cohort input.

Every message names the file, the subject, the column and the value, and says how
to fix it. They subclass built-in exceptions so callers may catch ``ValueError``.
"""


class CohortFormatError(ValueError):
    """A cohort file is missing, malformed, or holds an invalid value."""


class ImageMismatchError(ValueError):
    """A NIfTI map does not match the atlas space or is not a usable 3D map."""


class FmriInputError(ValueError):
    """A resting-state fMRI input cannot give the SMN features (bad grid, a 3D
    image, too few volumes, no repetition time, unknown atlas columns...)."""
