"""Read ``participants.tsv`` and locate a subject's files in a cohort directory.

The cohort directory format is specified in ``docs/cohort-format.md``. This module
holds what every table reader shares: the participants table that defines the cohort
(its errors are always raised), the raw TSV reader, the :class:`Issue` record and the
:class:`IssueLog` that either raises (strict) or records a bad cell (lenient), and
:func:`attach_keys`, which keys the rows of a per-subject table by
(``participant_id``, ``session``).

Row numbers in messages are file line numbers (the header is row 1), so they match
the row numbers a spreadsheet shows. Cells are stripped; an empty cell, ``n/a``
(the BIDS spelling), ``NA`` or ``NaN`` means missing.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from common import schema
from common.schema import DIAGNOSES, PARTICIPANT_COLUMNS
from features.errors import CohortFormatError

__all__ = [
    "DIAGNOSES", "KEY", "CohortPaths", "Issue", "IssueLog", "attach_keys",
    "is_missing", "read_participants", "read_tsv", "subject_key",
]  # fmt: skip

SEXES: tuple[str, ...] = ("M", "F")
KEY: list[str] = list(schema.KEY)  # a list: pandas reads a tuple as one label
DTI_MAPS: tuple[str, ...] = ("FA", "MD", "AD", "RD")
SPACE = "space-MNI152NLin2009cAsym_res-2"
FORMAT_DOC = "docs/cohort-format.md"
MISSING_TOKENS = frozenset({"", "n/a", "na", "nan"})
# Labels name files (``sub-X_ses-Y_space-..._FA.nii.gz``), and file names hold at
# most 255 bytes: 100 characters leave room for the rest.
PARTICIPANT_ID = re.compile(r"sub-[A-Za-z0-9]{1,100}")
SESSION_ID = re.compile(r"ses-[A-Za-z0-9]{1,100}")


def is_missing(raw: object) -> bool:
    """True for a cell that means "missing" (empty, ``n/a``, ``NA``, ``NaN``)."""
    if isinstance(raw, str):
        return raw.strip().lower() in MISSING_TOKENS
    return raw is None or bool(pd.isna(raw))


def _show(raw: str) -> str:
    """Cell text for a message: numbers as written, anything else quoted."""
    try:
        float(raw)
    except ValueError:
        if len(raw) > 60:
            return f"{raw[:40]!r}... ({len(raw)} characters)"
        return repr(raw)
    return raw


@dataclass(frozen=True)
class Issue:
    """One bad cell or row that lenient reading set to missing or dropped.

    Attributes
    ----------
    file : str
        Table file name, e.g. ``"clinical.tsv"``.
    participant_id : str
        Subject of the row (``""`` for a problem with the whole table).
    column : str
        Offending column.
    value : str
        Cell text as written.
    message : str
        Full message: file, row, subject, column, value and how to fix it.
    session : str
        Session of the row, ``""`` when the cohort has none.
    row : int or None
        File line number (header = 1), None for table-level problems.
    """

    file: str
    participant_id: str
    column: str
    value: str
    message: str
    session: str = ""
    row: int | None = None


@dataclass
class IssueLog:
    """Raise (``strict``) or record (lenient) problems found in one table file.

    Parameters
    ----------
    file : str
        Table file name used in every message.
    strict : bool
        Raise :class:`CohortFormatError` on the first problem instead of recording.
    issues : list of Issue
        Problems recorded so far.
    """

    file: str
    strict: bool = False
    issues: list[Issue] = field(default_factory=list)

    def flag(
        self,
        row: int | None,
        participant_id: str,
        column: str,
        value: str,
        problem: str,
        fix: str = "Fix the value or leave the cell empty to mark it missing.",
        session: str = "",
    ) -> None:
        """Raise or record ``"<file>, row <n> (<subject>): <column> = <value>; ..."``"""
        who = ", ".join(part for part in (participant_id, session) if part)
        where = self.file if row is None else f"{self.file}, row {row}"
        where += f" ({who})" if who else ""
        message = f"{where}: {column} = {_show(value)}; {problem}. {fix}"
        if self.strict:
            raise CohortFormatError(message)
        self.issues.append(
            Issue(self.file, participant_id, column, value, message, session, row)
        )


def read_tsv(path: Path) -> pd.DataFrame:
    """Read a cohort table as stripped text, header lower-cased, index = line number.

    Parameters
    ----------
    path : Path
        A tab-separated UTF-8 file with a header row.

    Returns
    -------
    pandas.DataFrame
        Object columns of stripped cell text; the index (``"row"``) is the file line
        number of each row. Blank lines are skipped; missing trailing cells are empty.

    Raises
    ------
    CohortFormatError
        If the file is not UTF-8, has no header, repeats a column name, looks
        comma-separated, or a row has more cells than the header.
    """
    name = path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = [cell.strip().lower() for cell in next(reader, [])]
            while header and not header[-1]:  # trailing tabs after the last name
                header.pop()
            rows, lines = [], []
            for fields in reader:
                if not any(cell.strip() for cell in fields):
                    continue
                if len(fields) > len(header) and any(
                    cell.strip() for cell in fields[len(header) :]
                ):
                    raise CohortFormatError(
                        f"{name}, row {reader.line_num}: has {len(fields)} cells but "
                        f"the header has {len(header)} columns. Remove the extra "
                        "cells or add the missing column names to the header."
                    )
                cells = [cell.strip() for cell in fields[: len(header)]]
                rows.append(cells + [""] * (len(header) - len(cells)))
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise CohortFormatError(
            f"{path}: is not UTF-8 text ({err.reason} at byte {err.start}). "
            "Re-save the table as UTF-8 tab-separated text."
        ) from err
    if not any(header):
        raise CohortFormatError(
            f"{path}: has no header row. Add a tab-separated header naming the "
            f"columns (see {FORMAT_DOC})."
        )
    if len(header) == 1 and "," in header[0]:
        raise CohortFormatError(
            f"{path}: header {header[0]!r} looks comma-separated; cohort tables are "
            "tab-separated. Re-save the table with tabs between columns."
        )
    repeated = sorted({col for col in header if header.count(col) > 1})
    if repeated:
        raise CohortFormatError(
            f"{path}: column(s) {', '.join(map(repr, repeated))} appear more than "
            "once in the header. Rename or remove the duplicates."
        )
    index = pd.Index(lines, name="row", dtype="int64")
    return pd.DataFrame(rows, columns=header, index=index, dtype=object)


def require_columns(table: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    """Raise if one of ``required`` is not a column of ``table``."""
    for column in required:
        if column not in table.columns:
            found = ", ".join(table.columns) or "none"
            raise CohortFormatError(
                f"{path}: required column {column!r} is missing; columns found: "
                f"{found}. Add the column (empty cells mean missing; see "
                f"{FORMAT_DOC})."
            )


_PARTICIPANT_RULES: dict[str, str] = {
    "participant_id": "identifiers must be 'sub-' followed by letters and digits "
    "only, at most 100 (e.g. sub-0031; they name files). Rename the subject here "
    "and in every other table.",
    "session": "sessions must be 'ses-' followed by letters and digits only, at "
    "most 100 (e.g. ses-01), or empty. Rename the session.",
    "diagnosis": f"allowed labels are {', '.join(DIAGNOSES)} (any case), or an "
    "empty cell when the diagnosis is unknown. Correct the label, or leave it empty "
    "for a subject outside these classes who is to be scored.",
    "sex": "sex must be M or F (any case), or empty when unknown. Correct the value.",
    "age": "age must be a number of years from 0 to 120, or empty when unknown. "
    "Correct the value.",
}


def _bad_participant(
    row: int, pid: str, column: str, value: str, hint: str = ""
) -> None:
    """Raise the participants.tsv error for one bad cell."""
    who = f" ({pid})" if column != "participant_id" else ""
    raise CohortFormatError(
        f"participants.tsv, row {row}{who}: {column} = {_show(value)}; "
        + _PARTICIPANT_RULES[column]
        + hint
    )


def read_participants(cohort_dir: Path) -> pd.DataFrame:
    """Read and validate ``participants.tsv``, the table that defines the cohort.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.

    Returns
    -------
    pandas.DataFrame
        Indexed by (``participant_id``, ``session``); ``session`` is ``""`` when the
        table has no session column or the cell is empty. Columns: ``diagnosis``
        (string, upper case, NA when unknown), ``age`` (float, NaN when missing),
        ``sex`` (string ``"M"``/``"F"`` or NA), ``site`` (string or NA). Other
        columns are ignored.

    Raises
    ------
    CohortFormatError
        Always (there is no lenient mode here) when the file is missing, a required
        column is missing, or any row has a bad identifier, a duplicate
        (participant_id, session), an unknown diagnosis, a bad sex or age.

    Examples
    --------
    >>> import tempfile
    >>> cohort = Path(tempfile.mkdtemp())
    >>> table = pd.DataFrame({"participant_id": ["sub-01"], "diagnosis": ["als"],
    ...                       "age": [61], "sex": ["M"], "site": ["A"]})
    >>> table.to_csv(cohort / "participants.tsv", sep=chr(9), index=False)
    >>> read_participants(cohort).loc[("sub-01", ""), "diagnosis"]
    'ALS'
    """
    path = Path(cohort_dir) / "participants.tsv"
    if not path.is_file():
        raise CohortFormatError(
            f"participants.tsv not found: expected {path}. Every cohort needs a "
            "participants.tsv listing participant_id, diagnosis, age, sex and site "
            f"for each subject (see {FORMAT_DOC})."
        )
    table = read_tsv(path)
    require_columns(table, path, PARTICIPANT_COLUMNS)
    if table.empty:
        raise CohortFormatError(f"{path}: has a header but no subjects; add them.")
    records: dict[tuple[str, str], dict[str, object]] = {}
    first_row: dict[tuple[str, str], int] = {}
    for row, cells in table.iterrows():
        pid = cells["participant_id"]
        if not PARTICIPANT_ID.fullmatch(pid):
            _bad_participant(row, pid, "participant_id", pid)
        session = "" if is_missing(cells.get("session")) else cells["session"]
        if session and not SESSION_ID.fullmatch(session):
            _bad_participant(row, pid, "session", session)
        if (pid, session) in first_row:
            visit = f"session {session}" if session else "no session"
            raise CohortFormatError(
                f"participants.tsv, row {row} ({pid}): participant_id = {_show(pid)}; "
                f"this subject with {visit} is already listed in row "
                f"{first_row[pid, session]}. Remove the duplicate row, or give each "
                "visit its own session label."
            )
        first_row[pid, session] = row
        records[pid, session] = _participant_record(row, pid, cells)
    frame = pd.DataFrame.from_records(
        list(records.values()),
        index=pd.MultiIndex.from_tuples(list(records), names=KEY),
        columns=["diagnosis", "age", "sex", "site"],
    )
    dtypes = {"diagnosis": "string", "age": "float64", "sex": "string"}
    return frame.astype({**dtypes, "site": "string"})


def _participant_record(row: int, pid: str, cells: pd.Series) -> dict[str, object]:
    """Validate and normalise diagnosis, age, sex and site of one participants row."""
    missing = {col: is_missing(cells[col]) for col in PARTICIPANT_COLUMNS}
    diagnosis = None if missing["diagnosis"] else cells["diagnosis"].upper()
    if diagnosis is not None and diagnosis not in DIAGNOSES:
        _bad_participant(row, pid, "diagnosis", cells["diagnosis"])
    sex = None if missing["sex"] else cells["sex"].upper()
    if sex is not None and sex not in SEXES:
        _bad_participant(row, pid, "sex", cells["sex"])
    age = float("nan")
    if not missing["age"]:
        try:
            age = float(cells["age"])
        except ValueError:
            age = float("nan")
        if not 0 <= age <= 120:
            months = " It looks like months: divide by 12." if age <= 1440 else ""
            _bad_participant(row, pid, "age", cells["age"], months)
    site = None if missing["site"] else cells["site"]
    return {"diagnosis": diagnosis, "age": age, "sex": sex, "site": site}


def subject_key(participant_id: str, session: object = "") -> str:
    """Return the BIDS file prefix ``sub-X`` or ``sub-X_ses-Y`` of a subject visit.

    Examples
    --------
    >>> subject_key("sub-01"), subject_key("sub-01", "ses-2")
    ('sub-01', 'sub-01_ses-2')
    """
    if is_missing(session):
        return participant_id
    return f"{participant_id}_{session}"


@dataclass(frozen=True)
class CohortPaths:
    """Paths of one subject visit's derivatives, as ``docs/cohort-format.md`` says.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    key : str
        Subject file prefix from :func:`subject_key` (``sub-X`` or ``sub-X_ses-Y``).

    Examples
    --------
    >>> paths = CohortPaths(Path("cohort"), subject_key("sub-01", "ses-2"))
    >>> paths.dti_map("FA").name
    'sub-01_ses-2_space-MNI152NLin2009cAsym_res-2_FA.nii.gz'
    """

    cohort_dir: Path
    key: str

    @property
    def freesurfer_stats_dir(self) -> Path:
        """``derivatives/freesurfer/<key>/stats``."""
        return Path(self.cohort_dir) / "derivatives" / "freesurfer" / self.key / "stats"

    def dti_map(self, map_name: str) -> Path:
        """``derivatives/dti/<key>/<key>_space-..._<MAP>.nii.gz``, MAP = FA/MD/AD/RD."""
        if map_name not in DTI_MAPS:
            raise ValueError(
                f"dti map {map_name!r} is not one of {', '.join(DTI_MAPS)}; "
                "pass one of those names."
            )
        folder = Path(self.cohort_dir) / "derivatives" / "dti" / self.key
        return folder / f"{self.key}_{SPACE}_{map_name}.nii.gz"

    @property
    def qsm_map(self) -> Path:
        """``derivatives/qsm/<key>/<key>_space-..._res-2_Chimap.nii.gz``."""
        folder = Path(self.cohort_dir) / "derivatives" / "qsm" / self.key
        return folder / f"{self.key}_{SPACE}_Chimap.nii.gz"

    @property
    def gm_map(self) -> Path:
        """Modulated grey-matter map (VBM, optional): ``derivatives/vbm/<key>/<key>_
        space-MNI152NLin2009cAsym_res-2_label-GM_desc-modulated_probseg.nii.gz``.

        GM probability times the Jacobian of the warp to MNI152 2 mm (e.g. CAT12
        ``mwp1``, SPM ``mwc1``), unitless, so its sum over a region times the voxel
        volume is the region's native grey-matter volume.
        """
        folder = Path(self.cohort_dir) / "derivatives" / "vbm" / self.key
        return folder / f"{self.key}_{SPACE}_label-GM_desc-modulated_probseg.nii.gz"

    @property
    def lcmodel_dir(self) -> Path:
        """``derivatives/lcmodel/<key>/``: the subject-visit's LCModel outputs
        (:func:`features.mrs.find_lcmodel_output` picks the one to read)."""
        return Path(self.cohort_dir) / "derivatives" / "lcmodel" / self.key


def attach_keys(
    table: pd.DataFrame, participants: pd.DataFrame, log: IssueLog
) -> pd.DataFrame:
    """Key the rows of a per-subject table by (participant_id, session).

    Rows are matched on (``participant_id``, ``session``) when the table has a
    ``session`` column, else on ``participant_id`` alone, which must then name a
    subject with a single visit. Unmatched rows are flagged through ``log`` and
    dropped.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`read_tsv`, with a ``participant_id`` column.
    participants : pandas.DataFrame
        Output of :func:`read_participants`.
    log : IssueLog
        Where problems go (raised when ``log.strict``).

    Returns
    -------
    pandas.DataFrame
        The matched rows, indexed by (``participant_id``, ``session``), with the
        file line number in a ``row`` column and without the key columns.
    """
    visits: dict[str, list[str]] = {}
    for pid, session in participants.index:
        visits.setdefault(pid, []).append(session)
    has_session = "session" in table.columns
    keys, keep = [], []
    for row, cells in table.iterrows():
        pid = cells["participant_id"]
        session = (
            cells["session"] if has_session and not is_missing(cells["session"]) else ""
        )
        if not PARTICIPANT_ID.fullmatch(pid):
            log.flag(
                row,
                "",
                "participant_id",
                pid,
                "not a participant identifier (sub-<letters and digits>)",
                "Use the identifier from participants.tsv; the row is ignored.",
            )
            continue
        if pid not in visits or (has_session and session not in visits[pid]):
            log.flag(
                row,
                pid,
                "session" if pid in visits else "participant_id",
                session if pid in visits else pid,
                "this subject visit is not listed in participants.tsv",
                "Add it to participants.tsv or remove the row; the row is ignored.",
                session,
            )
            continue
        if not has_session:
            if len(visits[pid]) > 1:
                log.flag(
                    row,
                    pid,
                    "participant_id",
                    pid,
                    f"participants.tsv lists sessions "
                    f"{', '.join(visits[pid])} for this subject",
                    f"Add a session column to {log.file} to say which visit "
                    "the row belongs to; the row is ignored.",
                )
                continue
            session = visits[pid][0]
        keys.append((pid, session))
        keep.append(row)
    drop = [c for c in (*KEY, "row") if c in table.columns]
    out = table.loc[keep].drop(columns=drop)
    out.insert(0, "row", keep)
    out.index = pd.MultiIndex.from_tuples(keys, names=KEY) if keys else empty_index()
    return out


def empty_index() -> pd.MultiIndex:
    """An empty (participant_id, session) index."""
    return pd.MultiIndex.from_arrays([[], []], names=KEY)
