"""The cohort directory's own tables: ``participants.tsv`` and the cohort layout
(:mod:`~features.cohort.participants`), the cell rules every table shares
(:mod:`~features.cohort.cells`), the clinical, serum and peripheral-MRI tables
(:mod:`~features.cohort.tables`, antibodies in :mod:`~features.cohort.serology`) and
nerve conduction (:mod:`~features.cohort.nerve_conduction`).
"""

from features.cohort.nerve_conduction import (
    grade_conduction_block,
    read_nerve_conduction,
    summarise_nerve_conduction,
)
from features.cohort.participants import CohortPaths, Issue, IssueLog, read_participants
from features.cohort.tables import read_clinical, read_peripheral_mri, read_serum

__all__ = [
    "CohortPaths",
    "Issue",
    "IssueLog",
    "grade_conduction_block",
    "read_clinical",
    "read_nerve_conduction",
    "read_participants",
    "read_peripheral_mri",
    "read_serum",
    "summarise_nerve_conduction",
]
