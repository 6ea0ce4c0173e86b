"""Antibody results of ``serum.tsv``: anti-GM1 IgM, AQP4-IgG and oligoclonal bands,
as a lab writes them (``positive``, ``neg``, ``+``, ``1:3200``, ``positive
(1:800)``, ``<1:10``), parsed into a positive/negative call and a reciprocal titre.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.cohort.participants import IssueLog, is_missing

__all__ = ["SEROLOGY_COLUMNS", "TITRE_COLUMNS", "TITRE_CUTOFFS", "serology_columns"]

SEROLOGY_COLUMNS = ("anti_gm1_igm", "aqp4_igg", "oligoclonal_bands")
#: Positivity cut-offs (reciprocal titres) applied to a titre given without a
#: positive/negative word: anti-GM1 IgM by ELISA 1:800, AQP4-IgG by cell-based assay
#: 1:10. Both are assay-typical values without a cited source (UE, refs#ncs) and
#: lab-specific: a lab's own positive/negative call always wins over them.
TITRE_CUTOFFS: dict[str, float] = {"anti_gm1_igm": 800.0, "aqp4_igg": 10.0}
TITRE_COLUMNS = tuple(f"{column}_titre" for column in TITRE_CUTOFFS)
INDETERMINATE = frozenset({"borderline", "equivocal"})
POSITIVE_NEGATIVE: dict[str, float] = {
    **dict.fromkeys(("positive", "pos", "+"), 1.0),
    **dict.fromkeys(("negative", "neg", "-"), 0.0),
}

_TITRE = r"(?P<bound>[<>]?)\s*(?P<ratio>1\s*[:/]\s*)?(?P<n>\d+(?:\.\d+)?)"
_SEROLOGY_CELL = re.compile(rf"(?P<word>[a-z]+|[+-])?\s*(?:\(?\s*{_TITRE}\s*\)?)?")
_TITRE_HINT = ", a titre (1:800 or 800) or both, e.g. 'positive (1:3200)'"
_SEROLOGY_PROBLEMS: dict[str, tuple[str, str]] = {
    "unknown": (
        "expected positive or negative (or pos/neg, +/-){hint}",
        "Fix the value or leave the cell empty to mark it missing.",
    ),
    "not_titre": (
        "expected a titre such as 1:800 or 800 (or a bound such as <1:10)",
        "Fix the value or leave the cell empty to mark it missing.",
    ),
    "ambiguous": (
        "a bare {value} could be a yes/no code or a titre",
        "Write positive or negative, or the titre as 1:N (e.g. 1:800).",
    ),
    "borderline": (
        "a borderline/equivocal result is neither positive nor negative, so it is "
        "left missing",
        "Enter the lab's titre (e.g. 1:400) or the result of a repeat test.",
    ),
    "bound": (
        "the bound {value} does not say whether the titre reaches the positivity "
        "cut-off 1:{cutoff:g} (see docs/cohort-format.md)",
        "Enter the lab's positive/negative result.",
    ),
    "conflict": (
        "disagrees with the titre in {other} = {value}",
        "Give the titre in one of the two columns; the titre is left missing.",
    ),
}


@dataclass(frozen=True)
class _Serology:
    """One parsed antibody cell: the lab's word, the titre and how it is bounded."""

    word: float | None  # 1.0 positive, 0.0 negative, None not given
    borderline: bool
    titre: float = math.nan  # reciprocal titre: 800.0 for 1:800
    bound: str = ""  # "<" or ">" when the lab gave only a bound on the titre

    def call(self, cutoff: float) -> float | None:
        """1.0/0.0 from the word, else from the titre against ``cutoff``."""
        if self.word is not None or math.isnan(self.titre):
            return self.word
        if self.bound == "<":
            return 0.0 if self.titre <= cutoff else None
        if self.bound == ">":
            return 1.0 if self.titre >= cutoff else None
        return float(self.titre >= cutoff)


def _parse_serology(text: str, titres: bool, titre_only: bool) -> _Serology | str:
    """Parse ``pos``, ``1:800``, ``800``, ``positive (1:3200)``, ``<1:10``, ...

    Returns the cell, or the key of the problem in ``_SEROLOGY_PROBLEMS``.
    ``titres``: the column may hold titres; ``titre_only``: nothing else.
    """
    match = _SEROLOGY_CELL.fullmatch(text.strip().lower())
    word = match["word"] if match else None
    known = {*POSITIVE_NEGATIVE, *INDETERMINATE}
    if titre_only and (match is None or word or not match["n"]):
        return "not_titre"
    if (
        match is None
        or not (word or match["n"])
        or (word and word not in known)
        or (match["n"] and not titres)
    ):
        return "unknown"
    if not match["n"]:
        return _Serology(POSITIVE_NEGATIVE.get(word), word in INDETERMINATE)
    value = float(match["n"])
    if not (word or match["bound"] or match["ratio"] or titre_only) and value in (0, 1):
        return "ambiguous"  # a bare 0 or 1
    if value < 1:
        return "not_titre" if titre_only else "unknown"
    return _Serology(
        POSITIVE_NEGATIVE.get(word or ""), word in INDETERMINATE, value, match["bound"]
    )


def _flag_serology(
    log: IssueLog, where: tuple[int, str, str], column: str, raw: str, kind: str, **fmt
) -> None:
    """Record (or raise) the serology problem ``kind`` for one cell."""
    row, pid, session = where
    problem, fix = _SEROLOGY_PROBLEMS[kind]
    log.flag(row, pid, column, raw, problem.format(**fmt), fix, session)


def _read_serology_cell(
    log: IssueLog,
    where: tuple[int, str, str],
    column: str,
    raw: object,
    cutoff: float | None,
    titre_only: bool = False,
) -> _Serology | None:
    """Parse one cell; None for a missing or bad (flagged) cell."""
    if is_missing(raw):
        return None
    parsed = _parse_serology(str(raw), cutoff is not None, titre_only)
    if isinstance(parsed, _Serology):
        return parsed
    hint = _TITRE_HINT if cutoff is not None else ""
    _flag_serology(log, where, column, raw, parsed, hint=hint, value=str(raw).strip())
    return None


def serology_columns(
    keyed: pd.DataFrame, column: str, log: IssueLog
) -> tuple[pd.Series, pd.Series | None]:
    """Parse one antibody column (and its ``<column>_titre`` column).

    Parameters
    ----------
    keyed : pandas.DataFrame
        Output of :func:`features.cohort.participants.attach_keys`.
    column : str
        ``anti_gm1_igm`` or ``aqp4_igg`` (titres allowed, cut-offs
        :data:`TITRE_CUTOFFS`), or ``oligoclonal_bands`` (positive/negative only).
    log : IssueLog
        Where bad cells go (borderline results, unreadable text, a titre bound
        that straddles the cut-off, two titres that disagree).

    Returns
    -------
    result : pandas.Series
        1.0 positive, 0.0 negative, NaN missing: the lab's word when the cell has
        one, else its titre against the cut-off, else the ``<column>_titre``
        column's titre against the cut-off.
    titre : pandas.Series or None
        Reciprocal titre (NaN when not given, given only as a bound, or when the
        two columns disagree); None for a column without titres.
    """
    cutoff = TITRE_CUTOFFS.get(column)
    titre_column = f"{column}_titre"
    blank = pd.Series("", index=keyed.index)
    results = np.full(len(keyed), np.nan)
    titres = np.full(len(keyed), np.nan)
    cells = zip(
        keyed.index,
        keyed["row"],
        keyed.get(column, blank),
        keyed.get(titre_column, blank),
        strict=True,
    )
    for pos, ((pid, session), row, raw, raw_titre) in enumerate(cells):
        where = (row, pid, session)
        cell = _read_serology_cell(log, where, column, raw, cutoff)
        extra = None
        if cutoff is not None:
            extra = _read_serology_cell(
                log, where, titre_column, raw_titre, cutoff, titre_only=True
            )
        exact = {
            r.titre
            for r in (cell, extra)
            if r is not None and not r.bound and not math.isnan(r.titre)
        }
        if len(exact) > 1:
            _flag_serology(
                log, where, titre_column, raw_titre, "conflict",
                other=column, value=repr(str(raw).strip()),
            )  # fmt: skip
        elif exact:
            titres[pos] = exact.pop()
        source, name, text = (
            (cell, column, raw)
            if cell is not None
            else (extra, titre_column, raw_titre)
        )
        if source is None:
            continue
        if source.borderline:
            _flag_serology(log, where, name, text, "borderline")
            continue
        call = source.word if cutoff is None else source.call(cutoff)
        if call is None:
            _flag_serology(
                log, where, name, text, "bound", value=str(text).strip(), cutoff=cutoff
            )
            continue
        results[pos] = call
    result = pd.Series(results, index=keyed.index, name=column, dtype="float64")
    if cutoff is None:
        return result, None
    return result, pd.Series(titres, index=keyed.index, name=titre_column)
