"""Read the per-subject tables ``clinical.tsv``, ``serum.tsv``, ``peripheral_mri.tsv``.

Columns, units and ranges are those of ``docs/cohort-format.md``. Every reader takes
the output of :func:`features.cohort.read_participants` and returns
``(frame, issues)``: one row per subject visit found in the file, indexed by
(``participant_id``, ``session``), and the list of :class:`features.cohort.Issue`
records of the cells that were set to missing and the rows that were dropped. With
``strict=True`` the first such problem raises :class:`CohortFormatError` instead. A
missing file means the modality is absent: an empty frame with the right columns.
Columns outside the format are reported as issues (never raised) and ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.cohort import (
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
    "CLINICAL_COLUMNS",
    "PERIPHERAL_MRI_COLUMNS",
    "SERUM_COLUMNS",
    "TITRE_CUTOFFS",
    "Rule",
    "category_column",
    "drop_duplicate_rows",
    "load_table",
    "numeric_column",
    "read_clinical",
    "read_peripheral_mri",
    "read_serum",
    "serology_columns",
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
    """

    what: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    integer: bool = False
    step: float | None = None

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


CLINICAL_RULES: dict[str, Rule] = {
    "alsfrs_r": Rule("ALSFRS-R", 0, 48, integer=True),
    "months_since_onset": Rule("months since onset", 0),
    "mrc_sum": Rule("the MRC sum score", 0, 60, integer=True),
    "fvc_pct": Rule("FVC (% predicted)", 0, 200),
    "penn_umn": Rule("the Penn UMN score", 0, 32, integer=True),
    "edss": Rule("EDSS", 0, 10, step=0.5),
    "t2_lesion_volume_ml": Rule("T2 lesion volume (mL)", 0),
}
SERUM_RULES: dict[str, Rule] = {
    "nfl_pg_ml": Rule("NfL concentration (pg/mL)", 0, low_open=True),
    "chi3l1_ng_ml": Rule("CHI3L1 concentration (ng/mL)", 0, low_open=True),
}
YES_NO: dict[str, float] = {
    **dict.fromkeys(("yes", "y", "true", "1"), 1.0),
    **dict.fromkeys(("no", "n", "false", "0"), 0.0),
}
POSITIVE_NEGATIVE: dict[str, float] = {
    **dict.fromkeys(("positive", "pos", "+"), 1.0),
    **dict.fromkeys(("negative", "neg", "-"), 0.0),
}
ONSET_REGIONS: dict[str, str] = {r: r for r in ("bulbar", "upper_limb", "lower_limb")}
PRESENT_ABSENT: dict[str, float] = {
    **dict.fromkeys(("1", "1.0", "present"), 1.0),
    **dict.fromkeys(("0", "0.0", "absent"), 0.0),
}
SIDES: dict[str, str] = {"left": "left", "l": "left", "right": "right", "r": "right"}

YES_NO_COLUMNS = ("umn_signs", "lmn_signs")
SEROLOGY_COLUMNS = ("anti_gm1_igm", "aqp4_igg", "oligoclonal_bands")
#: Positivity cut-offs (reciprocal titres) applied to a titre given without a
#: positive/negative word: anti-GM1 IgM by ELISA 1:800, AQP4-IgG by cell-based assay
#: 1:10. Both are assay-typical values without a cited source (UE, lit §7) and
#: lab-specific: a lab's own positive/negative call always wins over them.
TITRE_CUTOFFS: dict[str, float] = {"anti_gm1_igm": 800.0, "aqp4_igg": 10.0}
TITRE_COLUMNS = tuple(f"{column}_titre" for column in TITRE_CUTOFFS)
INDETERMINATE = frozenset({"borderline", "equivocal"})
PERIPHERAL_MRI_RATINGS = ("plexus_t2_hyperintensity", "nerve_thickening",
                          "muscle_oedema", "muscle_atrophy")  # fmt: skip
CLINICAL_COLUMNS: tuple[str, ...] = (
    *CLINICAL_RULES, "onset_region", *YES_NO_COLUMNS, "alsfrs_r_progression_rate"
)  # fmt: skip
SERUM_COLUMNS: tuple[str, ...] = (*SERUM_RULES, *SEROLOGY_COLUMNS, *TITRE_COLUMNS)
_PER_RATING = ("n_sides", "asymmetric")
PERIPHERAL_MRI_COLUMNS: tuple[str, ...] = (
    *(f"{r}_{x}" for r in PERIPHERAL_MRI_RATINGS for x in _PER_RATING),
    "peripheral_mri_any",
)


def numeric_column(
    keyed: pd.DataFrame, column: str, rule: Rule, log: IssueLog
) -> pd.Series:
    """Parse one numeric column of a keyed table; bad cells become NaN (or raise).

    Parameters
    ----------
    keyed : pandas.DataFrame
        Output of :func:`features.cohort.attach_keys`.
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
                    rule.describe()
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
        Output of :func:`features.cohort.attach_keys`.
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
        Output of :func:`features.cohort.attach_keys`.
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


def _empty(columns: tuple[str, ...], strings: tuple[str, ...] = ()) -> pd.DataFrame:
    """An empty frame with ``columns`` (float, or string for ``strings``)."""
    dtypes = {col: "string" if col in strings else "float64" for col in columns}
    return pd.DataFrame(index=empty_index(), columns=list(columns)).astype(dtypes)


def read_clinical(
    cohort_dir: Path, participants: pd.DataFrame, strict: bool = False
) -> tuple[pd.DataFrame, list[Issue]]:
    """Read ``clinical.tsv``: scales, onset, signs and lesion volume.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    participants : pandas.DataFrame
        Output of :func:`features.cohort.read_participants`.
    strict : bool
        Raise :class:`CohortFormatError` on the first bad cell or row instead of
        setting it to missing and recording an :class:`Issue`.

    Returns
    -------
    frame : pandas.DataFrame
        Indexed by (``participant_id``, ``session``), columns
        :data:`CLINICAL_COLUMNS`: float scores, ``umn_signs``/``lmn_signs`` as
        1.0/0.0, ``onset_region`` as a string, and the derived
        ``alsfrs_r_progression_rate = (48 - alsfrs_r) / months_since_onset``
        (points per month; NaN when months is 0 or missing).
    issues : list of Issue
        Cells set to missing and rows dropped.
    """
    keyed, log = load_table(
        cohort_dir, "clinical.tsv", participants, strict, CLINICAL_COLUMNS
    )
    if keyed is None:
        return _empty(CLINICAL_COLUMNS, ("onset_region",)), []
    keyed = drop_duplicate_rows(keyed, log)
    out = pd.DataFrame(index=keyed.index)
    for column, rule in CLINICAL_RULES.items():
        out[column] = numeric_column(keyed, column, rule, log)
    out["onset_region"] = category_column(
        keyed,
        "onset_region",
        ONSET_REGIONS,
        "bulbar, upper_limb or lower_limb",
        log,
        dtype="string",
    )
    for column in YES_NO_COLUMNS:
        out[column] = category_column(keyed, column, YES_NO, "yes or no", log)
    months = out["months_since_onset"].where(out["months_since_onset"] > 0)
    out["alsfrs_r_progression_rate"] = (48.0 - out["alsfrs_r"]) / months
    return out[list(CLINICAL_COLUMNS)], log.issues


def read_serum(
    cohort_dir: Path, participants: pd.DataFrame, strict: bool = False
) -> tuple[pd.DataFrame, list[Issue]]:
    """Read ``serum.tsv``: NfL, CHI3L1 and antibodies with their titres.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    participants : pandas.DataFrame
        Output of :func:`features.cohort.read_participants`.
    strict : bool
        Raise on the first bad cell or row instead of recording an :class:`Issue`.

    Returns
    -------
    frame : pandas.DataFrame
        Indexed by (``participant_id``, ``session``), float columns
        :data:`SERUM_COLUMNS`; the serologies are 1.0 (positive) / 0.0 (negative),
        accepting ``positive``/``pos``/``+`` and ``negative``/``neg``/``-``. The
        anti-GM1 and AQP4 cells may also hold a titre (``1:800``, ``800``,
        ``positive (1:3200)``, ``negative (<1:10)``), as may the optional
        ``anti_gm1_igm_titre`` / ``aqp4_igg_titre`` columns; a titre without a
        positive/negative word is called against :data:`TITRE_CUTOFFS`.
        ``anti_gm1_igm_titre`` and ``aqp4_igg_titre`` hold the reciprocal titre
        (800.0 for 1:800), NaN when none was given. ``borderline`` and
        ``equivocal`` results become missing, with an issue.
    issues : list of Issue
        Cells set to missing and rows dropped.
    """
    keyed, log = load_table(
        cohort_dir, "serum.tsv", participants, strict, SERUM_COLUMNS
    )
    if keyed is None:
        return _empty(SERUM_COLUMNS), []
    keyed = drop_duplicate_rows(keyed, log)
    out = pd.DataFrame(index=keyed.index)
    for column, rule in SERUM_RULES.items():
        out[column] = numeric_column(keyed, column, rule, log)
    for column in SEROLOGY_COLUMNS:
        out[column], titre = serology_columns(keyed, column, log)
        if titre is not None:
            out[titre.name] = titre
    return out[list(SERUM_COLUMNS)], log.issues


def read_peripheral_mri(
    cohort_dir: Path, participants: pd.DataFrame, strict: bool = False
) -> tuple[pd.DataFrame, list[Issue]]:
    """Read ``peripheral_mri.tsv`` (one row per side) and summarise each subject.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    participants : pandas.DataFrame
        Output of :func:`features.cohort.read_participants`.
    strict : bool
        Raise on the first bad cell or row instead of recording an :class:`Issue`.

    Returns
    -------
    frame : pandas.DataFrame
        One row per subject visit, float columns :data:`PERIPHERAL_MRI_COLUMNS`.
        For each rating ``<r>``: ``<r>_n_sides`` is the number of sides rated 1
        (0, 1 or 2; NaN when no side was rated) and ``<r>_asymmetric`` is 1.0 when
        exactly one side is rated 1 (NaN unless both sides were rated).
        ``peripheral_mri_any`` is 1.0 when any rating on any side is 1, 0.0 when
        every recorded rating is 0 and NaN when none was recorded.
    issues : list of Issue
        Cells set to missing and rows dropped (bad or repeated ``side``).
    """
    keyed, log = load_table(
        cohort_dir,
        "peripheral_mri.tsv",
        participants,
        strict,
        PERIPHERAL_MRI_RATINGS,
        required=("side",),
    )
    if keyed is None:
        return _empty(PERIPHERAL_MRI_COLUMNS), []
    sides = category_column(
        keyed, "side", SIDES, "left or right", log, "string", required=True
    )
    keyed = keyed.assign(side=sides.to_numpy())[sides.notna().to_numpy()]
    keyed = drop_duplicate_rows(keyed, log, by=("side",))
    ratings = pd.DataFrame(
        {
            r: category_column(keyed, r, PRESENT_ABSENT, "0 or 1", log).to_numpy()
            for r in PERIPHERAL_MRI_RATINGS
        },
        index=keyed.index,
    )
    records, keys = [], []
    for key, group in ratings.groupby(level=KEY, sort=False):
        record: dict[str, float] = {}
        for rating in PERIPHERAL_MRI_RATINGS:
            rated = group[rating].dropna()
            record[f"{rating}_n_sides"] = rated.sum() if len(rated) else math.nan
            record[f"{rating}_asymmetric"] = (
                float(rated.sum() == 1) if len(rated) == 2 else math.nan
            )
        values = group.to_numpy(dtype="float64")
        record["peripheral_mri_any"] = (
            float(np.nanmax(values)) if np.isfinite(values).any() else math.nan
        )
        records.append(record)
        keys.append(key)
    if not records:
        return _empty(PERIPHERAL_MRI_COLUMNS), log.issues
    index = pd.MultiIndex.from_tuples(keys, names=KEY)
    out = pd.DataFrame.from_records(
        records, index=index, columns=PERIPHERAL_MRI_COLUMNS
    )
    return out.astype("float64"), log.issues
