"""Magnetic resonance spectroscopy: LCModel's outputs read
(:mod:`~features.mrs.lcmodel`) and turned into metabolite features with CRLB quality
control (:mod:`~features.mrs.metabolites`)."""

from features.mrs.lcmodel import (
    LCModelResult,
    find_lcmodel_output,
    read_lcmodel_csv,
    read_lcmodel_table,
)
from features.mrs.metabolites import (
    MRS_COLUMNS,
    apply_crlb_threshold,
    mrs_features,
    read_mrs_table,
)

__all__ = [
    "MRS_COLUMNS",
    "LCModelResult",
    "apply_crlb_threshold",
    "find_lcmodel_output",
    "mrs_features",
    "read_lcmodel_csv",
    "read_lcmodel_table",
    "read_mrs_table",
]
