"""The column names and labels every stage agrees on, in one place.

A features table (``python -m features extract``) and a lab's own table after
mapping both hold the identifiers :data:`KEY`, the metadata :data:`META_COLUMNS`
and one column per feature; the diagnoses are :data:`DIAGNOSES`, the clinical
question :data:`POSITIVE` against :data:`MIMICS`. Visit times of lab tables are
recognised by :data:`VISIT_TIME_NAMES`; monitoring orders visits by
:data:`VISIT_TIME`.
"""

from __future__ import annotations

__all__ = [
    "DIAGNOSES",
    "KEY",
    "META_COLUMNS",
    "MIMICS",
    "PARTICIPANT_COLUMNS",
    "POSITIVE",
    "TEXT_ID_COLUMNS",
    "VISIT_TIME",
    "VISIT_TIME_NAMES",
]

#: One subject-visit: the BIDS participant and session labels.
KEY: tuple[str, ...] = ("participant_id", "session")
#: Identifier columns read as text whatever they hold (``001`` stays ``001``).
TEXT_ID_COLUMNS: tuple[str, ...] = (*KEY, "site")
#: The columns of ``participants.tsv``.
PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "diagnosis",
    "age",
    "sex",
    "site",
)
#: The metadata columns that open a features table, in order.
META_COLUMNS: tuple[str, ...] = (*KEY, "diagnosis", "age", "sex", "site")

#: Every diagnosis a cohort may hold, in the order classes are reported.
DIAGNOSES: tuple[str, ...] = ("ALS", "MMN", "NMO", "MS", "HC")
#: The class the clinical question is about.
POSITIVE = "ALS"
#: The classes counted as ALS mimics unless a task says otherwise (``--mimics``).
MIMICS: tuple[str, ...] = ("MMN", "NMO", "MS")

#: The visit time of a features table, in months from the subject's first visit.
VISIT_TIME = "months_since_baseline"
#: Column names (lower case, letters and digits only) that date or number a visit
#: in lab tables: ``months_since_baseline``, ``Visit``, OASIS's ``MR Delay``...
VISIT_TIME_NAMES: tuple[str, ...] = (  # times first, then visit numbers
    "monthssincebaseline", "mrdelay", "days", "dayssincebaseline",
    "daysfrombaseline", "weeks", "months", "years", "yearssincebaseline", "time",
    "visitdate", "examdate", "scandate", "date", "visit", "visitnumber", "visitno",
    "visitnum", "visitcode", "timepoint",
)  # fmt: skip
