"""The cell-parsing toolkit of the per-subject tables: value rules, numeric and
categorical cells, reading a table keyed by subject visit, duplicate rows.

Every function records a bad cell in an :class:`features.cohort.participants.IssueLog`
(file,
row, subject, column, value and the fix) and sets it to missing, or raises in
strict mode. Used by :mod:`features.cohort.tables`, :mod:`features.cohort.serology`,
:mod:`features.cohort.nerve_conduction` and :mod:`features.mrs`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.cohort.participants import (
    FORMAT_DOC,
    KEY,
    Issue,
    IssueLog,
    attach_keys,
    empty_index,
    is_missing,
    read_tsv,
    require_columns,
)

__all__ = [
    "PRESENT_ABSENT",
    "SIDES",
    "YES_NO",
    "Rule",
    "category_column",
    "drop_duplicate_rows",
    "empty_frame",
    "load_table",
    "numeric_column",
]


@dataclass(frozen=True)
class Rule:
    """Allowed values of a numeric cell: bounds, integer or a step.

    Parameters
    ----------
    what : str
        Name used in messages, e.g. ``"ALSFRS-R"``.
    low, high : float or None
        Inclusive bounds (``low`` exclusive when ``low_open``); None = unbounded.
    low_open : bool
        Require ``value > low`` rather than ``>=``.
    integer : bool
        Require a whole number.
    step : float or None
        Require a multiple of ``step`` (EDSS: 0.5).
    mixups : tuple of (unit, factor)
        Wrong units a value may be in (value in ``unit`` = factor x the right
        value): a rejected value that fits once divided by ``factor`` is said to
        look like ``unit``.
    """

    what: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    integer: bool = False
    step: float | None = None
    mixups: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(cls, column: str, what: str, **kwargs) -> Rule:
        """The rule of a features-table ``column``: its bounds from the data
        dictionary's unit (:func:`features.dictionary.value_range`) and its unit
        mix-ups from :data:`features.units.CHECKS`, so each has one home;
        ``kwargs`` add what the unit does not say (whole numbers, steps).

        >>> Rule.of("alsfrs_r", "ALSFRS-R", integer=True).describe()
        'ALSFRS-R must be an integer from 0 to 48'
        """
        from features.dictionary import value_range
        from features.units import check_for

        low, high = value_range(column)
        check = check_for(column)
        return cls(
            what,
            low if math.isfinite(low) else None,
            high if math.isfinite(high) else None,
            mixups=check.mixups if check is not None else (),
            **kwargs,
        )

    def accepts(self, value: float) -> bool:
        """True when ``value`` is finite and satisfies every constraint."""
        if not math.isfinite(value):
            return False
        if self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        ):
            return False
        if self.high is not None and value > self.high:
            return False
        if self.integer and value != round(value):
            return False
        return (
            self.step is None
            or abs(value / self.step - round(value / self.step)) < 1e-9
        )

    def describe(self) -> str:
        """E.g. ``"ALSFRS-R must be an integer from 0 to 48"``."""
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            text = f"{kind} from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = kind
        if self.step is not None:
            text += f" in steps of {self.step:g}"
        return f"{self.what} must be {text}"

    def mixup(self, value: float) -> str:
        """``"; it looks like uV: divide by 1000"`` when ``value`` fits in one of
        the ``mixups`` units, else ``""``."""
        for unit, factor in self.mixups:
            if self.accepts(value / factor):
                how = (
                    f"multiply by {1 / factor:g}"
                    if factor < 1
                    else f"divide by {factor:g}"
                )
                return f"; it looks like {unit}: {how}"
        return ""


YES_NO: dict[str, float] = {
    **dict.fromkeys(("yes", "y", "true", "1"), 1.0),
    **dict.fromkeys(("no", "n", "false", "0"), 0.0),
}
PRESENT_ABSENT: dict[str, float] = {
    **dict.fromkeys(("1", "1.0", "present"), 1.0),
    **dict.fromkeys(("0", "0.0", "absent"), 0.0),
}
SIDES: dict[str, str] = {"left": "left", "l": "left", "right": "right", "r": "right"}


def numeric_column(
    keyed: pd.DataFrame, column: str, rule: Rule, log: IssueLog
) -> pd.Series:
    """Parse one numeric column of a keyed table; bad cells become NaN (or raise).

    Parameters
    ----------
    keyed : pandas.DataFrame
        Output of :func:`features.cohort.participants.attach_keys`.
    column : str
        Column to parse; an absent column gives all-NaN.
    rule : Rule
        Allowed values.
    log : IssueLog
        Where bad cells go.

    Returns
    -------
    pandas.Series
        float64, aligned with ``keyed``.
    """
    values = np.full(len(keyed), np.nan)
    if column in keyed.columns:
        cells = zip(keyed.index, keyed["row"], keyed[column], strict=True)
        for pos, ((pid, session), row, raw) in enumerate(cells):
            if is_missing(raw):
                continue
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if rule.accepts(value):
                values[pos] = value
            else:
                problem = (
                    rule.describe() + rule.mixup(value)
                    if math.isfinite(value)
                    else (f"not a number ({rule.describe()})")
                )
                log.flag(row, pid, column, raw, problem, session=session)
    return pd.Series(values, index=keyed.index, name=column, dtype="float64")


def category_column(
    keyed: pd.DataFrame,
    column: str,
    mapping: Mapping[str, object],
    allowed: str,
    log: IssueLog,
    dtype: str = "float64",
    required: bool = False,
) -> pd.Series:
    """Map one categorical column through ``mapping`` (case-insensitive).

    Parameters
    ----------
    keyed : pandas.DataFrame
        Output of :func:`features.cohort.participants.attach_keys`.
    column : str
        Column to map; an absent column gives all-missing.
    mapping : mapping of str to object
        Lower-case cell text (spaces and hyphens also tried as ``_``) -> value.
    allowed : str
        The accepted spellings, for messages.
    log : IssueLog
        Where bad cells go.
    dtype : str
        dtype of the result (``"float64"`` or ``"string"``).
    required : bool
        An identifying column (nerve, side, ...): empty cells are flagged too, and
        the messages say the row is ignored (the caller drops it).

    Returns
    -------
    pandas.Series
        Mapped values aligned with ``keyed``; missing and bad cells are missing.
    """
    values: list[object] = [None] * len(keyed)
    fix = "Fix the value or leave the cell empty to mark it missing."
    if required:
        fix = "Correct the value; the row is ignored."
    if column in keyed.columns:
        cells = zip(keyed.index, keyed["row"], keyed[column], strict=True)
        for pos, ((pid, session), row, raw) in enumerate(cells):
            if is_missing(raw) and not required:
                continue
            text = "" if is_missing(raw) else raw.lower()
            value = mapping.get(text, mapping.get(re.sub(r"[\s-]+", "_", text)))
            if value is None:
                log.flag(row, pid, column, raw, f"expected {allowed}", fix, session)
            values[pos] = value
    return pd.Series(values, index=keyed.index, name=column, dtype=dtype)


def load_table(
    cohort_dir: Path,
    name: str,
    participants: pd.DataFrame,
    strict: bool,
    known: tuple[str, ...],
    required: tuple[str, ...] = (),
) -> tuple[pd.DataFrame | None, IssueLog]:
    """Read ``name``, report unknown columns and key its rows (None: no file)."""
    path = Path(cohort_dir) / name
    log = IssueLog(name, strict)
    if not path.is_file():
        return None, log
    table = read_tsv(path)
    require_columns(table, path, ("participant_id", *required))
    for column in table.columns:
        if column not in (*KEY, *required, *known):
            message = (
                f"{name}: column {column!r} is not part of the format and is ignored. "
                f"Rename it if it is a misspelling of one of {', '.join(known)} "
                f"(see {FORMAT_DOC})."
            )
            log.issues.append(Issue(name, "", column, "", message))
    return attach_keys(table, participants, log), log


def drop_duplicate_rows(
    keyed: pd.DataFrame, log: IssueLog, by: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Keep the first row of each subject visit (and ``by`` values); flag the rest."""
    seen: dict[tuple[object, ...], int] = {}
    keep: list[int] = []
    extra = list(zip(*(keyed[col] for col in by), strict=True)) or [()] * len(keyed)
    cells = zip(keyed.index, extra, keyed["row"], strict=True)
    for pos, ((pid, session), other, row) in enumerate(cells):
        ident = (pid, session, *other)
        if ident not in seen:
            seen[ident] = row
            keep.append(pos)
            continue
        same = f" and {'/'.join(by)} {'/'.join(map(str, other))}" if by else ""
        problem = f"row {seen[ident]} already holds this subject visit{same}"
        fix = "Remove one of the rows; this one is ignored."
        log.flag(row, pid, "participant_id", pid, problem, fix, session)
    return keyed.iloc[keep]


def empty_frame(
    columns: tuple[str, ...], strings: tuple[str, ...] = ()
) -> pd.DataFrame:
    """An empty frame with ``columns`` (float, or string for ``strings``)."""
    dtypes = {col: "string" if col in strings else "float64" for col in columns}
    return pd.DataFrame(index=empty_index(), columns=list(columns)).astype(dtypes)
