"""Turn a cohort directory into one features table (one row per subject-visit).

`extract_features` reads ``participants.tsv``, every per-modality table and every
pipeline output under ``derivatives/``, and returns a tidy frame: metadata columns
(:data:`META_COLUMNS`), one named float column per feature, and ``has_<modality>``
availability columns. A subject whose file is bad is reported (an :class:`Issue`
naming the file and the fix) and extracted without that modality; with
``strict=True`` the first problem raises instead. ``source_<modality>`` columns
name the file each modality's values came from. Imaging is read in parallel.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from common.files import unusual_entries
from common.schema import META_COLUMNS
from features import units
from features.cache import PartitionStore
from features.cohort.nerve_conduction import (
    read_nerve_conduction,
    summarise_nerve_conduction,
)
from features.cohort.participants import (
    KEY,
    CohortPaths,
    Issue,
    read_participants,
    subject_key,
)
from features.cohort.tables import (
    read_clinical,
    read_peripheral_mri,
    read_serum,
    read_sessions,
)
from features.dictionary import modality_of
from features.errors import CohortFormatError, ImageMismatchError
from features.fmri.inputs import read_region_mapping
from features.fmri.smn import fmri_features
from features.imaging import region_features
from features.imaging.atlas import Atlas, load_atlas
from features.imaging.freesurfer import freesurfer_features
from features.mrs import find_lcmodel_output, mrs_features, read_mrs_table

_IMAGING_ERRORS = (CohortFormatError, ImageMismatchError, OSError, ValueError)


@dataclass(frozen=True)
class Extraction:
    """The features table and the problems met while building it."""

    table: pd.DataFrame
    issues: list[Issue]

    def summary(self) -> str:
        """One line per problem, for the end of a command-line run."""
        if not self.issues:
            return f"{len(self.table)} subject-visits extracted, no problems."
        lines = [
            f"{len(self.table)} subject-visits extracted; "
            f"{len(self.issues)} problem(s), those values left missing:"
        ]
        lines += [f"  - {i.message}" for i in self.issues]
        return "\n".join(lines)


def _subject_imaging(
    cohort_dir: Path,
    pid: str,
    session: str,
    atlas: Atlas | None,
    strict: bool,
    resample: bool,
    fmri_mapping: pd.DataFrame | None = None,
) -> tuple[dict[str, object], list[Issue]]:
    """Features, availability and source file of each pipeline output of a subject.

    A file that cannot be used becomes an :class:`Issue` (or raises when
    ``strict``); warnings (e.g. a resampled map, a poorly covered region) become
    issues too, so they survive the worker processes.
    """
    atlas = atlas if atlas is not None else load_atlas()  # memoised per process
    paths = CohortPaths(cohort_dir, subject_key(pid, session))
    dti = {m: paths.dti_map(m) for m in region_features.DTI_MAPS}
    fmri_source: list[Path] = []
    mrs_source: list[Path] = []
    readers = {
        "freesurfer": (
            lambda: freesurfer_features(paths.freesurfer_stats_dir),
            paths.freesurfer_stats_dir,
        ),
        "dti": (
            lambda: region_features.dti_features(dti, atlas, resample=resample),
            dti["FA"],
        ),
        "qsm": (
            lambda: region_features.qsm_features(
                paths.qsm_map, atlas, resample=resample
            ),
            paths.qsm_map,
        ),
        "vbm": (
            lambda: region_features.gm_features(paths.gm_map, atlas, resample=resample),
            paths.gm_map,
        ),
        "mrs": (lambda: _mrs(paths, mrs_source), mrs_source),
        "fmri": (
            lambda: _fmri(cohort_dir, pid, session, fmri_mapping, fmri_source),
            fmri_source,
        ),
    }
    out: dict[str, object] = {}
    issues: list[Issue] = []

    def note(modality: str, text: str) -> None:
        issues.append(
            Issue(
                f"derivatives/{modality}",
                pid,
                modality,
                "",
                f"{pid} {modality}: {text}",
                session,
            )
        )

    for modality, (read, source) in readers.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                values = read()
            except _IMAGING_ERRORS as exc:
                if strict:
                    raise
                note(modality, str(exc))
                values = {}
        for w in caught:
            note(modality, str(w.message))
        out.update(values)
        out[f"has_{modality}"] = float(bool(values))
        if values:
            source = source[0] if isinstance(source, list) else source
            out[f"source_{modality}"] = str(Path(source).relative_to(cohort_dir))
    return out, issues


def _subject_partition(store: PartitionStore, key: str, *args) -> tuple[dict, list]:
    """:func:`_subject_imaging`, read back from ``store`` when it holds ``key``; a
    partition that cannot be read is computed again, rewritten and named."""
    saved, unreadable = store.load(key)
    if saved is not None:
        return saved
    values, issues = _subject_imaging(*args)
    store.save(key, (values, issues))
    if unreadable:
        _, pid, session = args[:3]
        path = store.path(key)
        issues = [*issues, Issue(path.name, pid, "", "", (
            f"{path}: the saved partition of {pid} {session} could not be read "
            f"({unreadable}); the subject-visit was extracted again and the "
            "partition rewritten. Nothing to do unless this repeats (then check "
            "the disk holding the partitions folder)."
        ), session)]  # fmt: skip
    return values, issues


def _mrs(paths: CohortPaths, source: list) -> dict:
    """The MRS values of the visit's LCModel output (its path appended to
    ``source``); each file of its folder left unread is a warning."""
    path, notes = find_lcmodel_output(paths.lcmodel_dir, paths.key)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    if path is None:
        return {}
    source.append(path)
    return mrs_features(path)


def _fmri(cohort_dir: Path, pid: str, session: str, mapping, source: list) -> dict:
    """rs-fMRI features; the file they came from is appended to ``source``."""
    values, path = fmri_features(cohort_dir, pid, session, mapping)
    if path is not None:
        source.append(path)
    return values


def extract_features(
    cohort_dir: Path,
    *,
    strict: bool = False,
    n_jobs: int = -1,
    atlas: Atlas | None = None,
    resample: bool = False,
    progress: bool = False,
    partitions: Path | None = None,
) -> Extraction:
    """Extract the features table of the cohort at ``cohort_dir``.

    Parameters
    ----------
    cohort_dir : Path
        A cohort directory (docs/cohort-format.md).
    strict : bool
        Raise on the first bad value or file instead of reporting it.
    n_jobs : int
        Parallel workers for the imaging files (joblib convention).
    atlas : Atlas, optional
        The MNI atlas; loaded (and cached) when not given.
    resample : bool
        Resample maps that are not on the atlas grid (with a reported warning)
        instead of rejecting them.
    progress : bool
        Show a progress bar over subjects.
    partitions : Path, optional
        Keep each subject-visit's imaging values in this folder as they are
        computed, keyed by their inputs, and reuse those already there
        (:mod:`features.cache`): a rerun after a crash computes only the rest.

    Returns
    -------
    Extraction
        ``table`` has one row per (participant_id, session), sorted.

    Examples
    --------
    >>> import tempfile
    >>> from features.simulate.cohort import simulate_cohort
    >>> cohort = simulate_cohort(Path(tempfile.mkdtemp()) / "c", n=10, seed=1)
    >>> extract_features(cohort, n_jobs=1).table.shape[0]
    10
    """
    cohort_dir = Path(cohort_dir)
    participants = read_participants(cohort_dir)
    issues: list[Issue] = _unusual_files(cohort_dir)
    tables = {}
    for name, reader in (
        ("clinical", read_clinical),
        ("serum", read_serum),
        ("peripheral_mri", read_peripheral_mri),
        ("mrs_table", read_mrs_table),
    ):
        tables[name], found = reader(cohort_dir, participants, strict=strict)
        issues += found
    long, found = read_nerve_conduction(cohort_dir, participants, strict=strict)
    issues += found
    months, found = read_sessions(cohort_dir, participants, strict=strict)
    issues += found
    tables["ncs"] = summarise_nerve_conduction(long)
    try:
        fmri_mapping = read_region_mapping(cohort_dir)
    except ValueError as exc:
        if strict:
            raise
        fmri_mapping = None
        issues.append(Issue("fmri_regions.tsv", "", "", "", f"{exc} Not used.", ""))
    if atlas is None:
        load_atlas()  # build the disk cache once; each worker then loads it once
    keys = list(participants.index)
    root = cohort_dir.absolute()
    args = (atlas, strict, resample, fmri_mapping)
    if partitions is None:
        work = [delayed(_subject_imaging)(root, pid, ses, *args) for pid, ses in keys]
    else:
        store = PartitionStore(
            partitions,
            root,
            {
                "strict": strict,
                "resample": resample,
                "atlas": "default" if atlas is None else id(atlas),
                "mapping": None if fmri_mapping is None else fmri_mapping.to_csv(),
            },
        )
        named = store.keys(keys)
        work = [
            delayed(_subject_partition)(store, named[k], root, *k, *args) for k in keys
        ]
    # absolute root: joblib may reuse worker processes started in another directory
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(work)
    rows = []
    for values, found in tqdm(
        jobs, total=len(keys), desc="extracting", unit="subject", disable=not progress
    ):
        issues += found
        rows.append(values)
    table = participants.join(pd.DataFrame(rows, index=participants.index))
    if len(months):  # sessions.tsv: when each visit took place
        table["months_since_baseline"] = months.reindex(table.index)
    table = _fill_mrs_from_table(table, tables.pop("mrs_table"))
    for name, frame in tables.items():
        table = table.join(_numeric(frame), how="left")
        present = table.index.isin(frame.index)
        table[f"has_{name}"] = present.astype(float)
        table[f"source_{name}"] = pd.Series(
            np.where(present, f"{_TABLE_FILES[name]}", None), index=table.index
        )
    table = table.reset_index()
    table["sex"] = table["sex"].astype("string")
    table.insert(
        len(META_COLUMNS),
        "male",
        (table["sex"] == "M").astype(float).where(table["sex"].notna()),
    )
    ordered = (
        list(META_COLUMNS)
        + ["male"]
        + sorted(c for c in table.columns if c not in META_COLUMNS and c != "male")
    )
    table = table[ordered].sort_values(KEY).reset_index(drop=True)
    issues += check_units(table, strict)
    return Extraction(table, issues)


#: What each kind of :func:`common.files.unusual_entries` means, and the fix.
_UNUSUAL = {
    "outside": "lead out of the cohort and were followed",
    "dangling": (
        "lead to nothing, so their files count as not acquired; in a DataLad or "
        "git-annex dataset run `datalad get` first, otherwise fix or remove them"
    ),
    "special": (
        "are not regular files (FIFOs, sockets or devices), so they count as not "
        "acquired; put the pipeline's output files there instead"
    ),
}


def _unusual_files(cohort_dir: Path) -> list[Issue]:
    """One issue per kind of link or special file in the cohort (not per file)."""
    issues = []
    for kind, paths in unusual_entries(cohort_dir).items():
        if not paths:
            continue
        shown = ", ".join(paths[:3]) + (
            f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        )
        message = f"{cohort_dir}: {len(paths)} path(s) {_UNUSUAL[kind]}: {shown}."
        if kind == "outside":
            message += (
                " The cohort is not self-contained: copy those files in before "
                "sharing or archiving it."
            )
        issues.append(Issue(paths[0].split(" -> ")[0], "", "", "", message, ""))
    return issues


#: Problems quoted one by one per column; more are one problem with examples.
MAX_QUOTED = 3


def check_units(
    table: pd.DataFrame, strict: bool = False, file: str | None = None
) -> list[Issue]:
    """Leave missing (in place) the values of ``table`` that look like another
    unit than the data dictionary's, and what the readers derived from them
    (:func:`dependents`): whole column groups first (the cohort's typical value
    off by a known factor), then single values outside their plausible range.
    Each is one problem (raised with ``strict``), naming ``file`` (else the
    cohort file each value came from); a column with more than
    :data:`MAX_QUOTED` such values is one problem with the count and examples."""
    issues = []

    def found(issue: Issue) -> None:
        if strict:
            raise CohortFormatError(issue.message)
        issues.append(issue)

    for columns, message in units.cohort_mixups(table):
        table[columns] = np.nan
        for column in columns:
            table[dependents(column, table.columns)] = np.nan
        where = f"{file}: " if file else ""
        text = f"{where}{message} Left missing."
        found(Issue(file or "features", "", columns[0], "", text, ""))
    for column in table.columns:
        check = units.check_for(column)
        if check is None:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        lo, hi = check.values
        bad = np.flatnonzero(((values < lo) | (values > hi)).to_numpy(bool))
        quoted = []
        for i in bad:
            row = table.iloc[i]
            pid, ses = (_text(row.get(k)) for k in ("participant_id", "session"))
            origin = file or _source_of(row, column)
            line = f"row {i + 2}" if file else ""
            where = ", ".join(w for w in (line, pid, ses) if w)
            reason = units.implausible(column, float(values.iloc[i]))
            quoted.append((origin, where, pid, ses, float(values.iloc[i]), reason))
        if len(bad) <= MAX_QUOTED:
            for origin, where, pid, ses, value, reason in quoted:
                message = f"{origin} ({where}): {reason}. Left missing; correct it in "
                found(Issue(origin, pid, column, f"{value:g}",
                            f"{message}{origin}.", ses))  # fmt: skip
        else:
            origins = ", ".join(sorted({q[0] for q in quoted}))
            who = [q[1] for q in quoted]
            shown = "; ".join(who[:10]) + (
                f" and {len(who) - 10} more" if len(who) > 10 else ""
            )
            found(Issue(origins.split(", ")[0], "", column, "", (
                f"{origins}: {len(bad)} values of {column} are implausible "
                f"({shown}); the first: {quoted[0][5]}. Left missing; check the "
                f"column's unit, then correct them in {origins}."), ""))  # fmt: skip
        rows = table.index[bad]
        table.loc[rows, [column, *dependents(column, table.columns)]] = np.nan
    return issues


def dependents(column: str, columns) -> list[str]:
    """The columns of ``columns`` the readers compute from ``column``: left
    missing with it, so that a rejected value feeds nothing (a volume's
    ``_etiv_pct`` and the M1/precuneus ratio, :func:`features.imaging.freesurfer.
    freesurfer_features`; the metabolite ratios, :mod:`features.mrs`).

    >>> dependents("fs_thalamus_l_mm3", ["fs_thalamus_l_etiv_pct", "age"])
    ['fs_thalamus_l_etiv_pct']
    >>> dependents("mrs_naa", ["mrs_glu_naa", "mrs_naa_cr", "mrs_glu_gaba"])
    ['mrs_glu_naa', 'mrs_naa_cr']
    """
    out = []
    if column == "fs_etiv_mm3":
        out = [c for c in columns if c.endswith("_etiv_pct")]
    elif column.startswith("fs_") and column.endswith("_mm3"):
        out = [column.removesuffix("_mm3") + "_etiv_pct"]
        if re.fullmatch(r"fs_(precentral|precuneus)_(l|r)_mm3", column):
            out.append("fs_m1_precuneus_ratio")
    elif re.fullmatch(r"mrs_(naa|glu|gaba|cr)", column):
        metabolite = column.removeprefix("mrs_")
        out = [
            ratio
            for ratio in ("mrs_glu_naa", "mrs_glu_gaba", "mrs_naa_cr")
            if metabolite in ratio.removeprefix("mrs_").split("_")
        ]
    return [c for c in out if c in set(columns)]


def _text(value) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _source_of(row: pd.Series, column: str) -> str:
    """The file ``column``'s value of ``row`` came from (participants.tsv for the
    demographics)."""
    modality = modality_of(column)
    if modality == "demographics":
        return "participants.tsv"
    source = row.get(f"source_{modality}")
    return str(source) if isinstance(source, str) and source else f"the {modality} data"


_TABLE_FILES = {
    "clinical": "clinical.tsv",
    "serum": "serum.tsv",
    "peripheral_mri": "peripheral_mri.tsv",
    "ncs": "nerve_conduction.tsv",
}


def _fill_mrs_from_table(table: pd.DataFrame, mrs: pd.DataFrame) -> pd.DataFrame:
    """Use ``mrs.tsv`` values for subjects without an LCModel file."""
    if mrs.empty:
        return table
    take = mrs.index[~table.loc[mrs.index, "has_mrs"].eq(1.0).to_numpy()]
    for col in mrs.columns:
        if col not in table:
            table[col] = np.nan
        table.loc[take, col] = mrs.loc[take, col].astype(float)
    table.loc[take, "has_mrs"] = 1.0
    table.loc[take, "source_mrs"] = "mrs.tsv"
    return table


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns; the onset region becomes one-hot indicator columns."""
    out = frame.copy()
    if "onset_region" in out:
        region = out.pop("onset_region").astype("string")
        for r in ("bulbar", "upper_limb", "lower_limb"):
            out[f"onset_{r}"] = (region == r).astype(float).where(region.notna())
    return out.apply(pd.to_numeric, errors="coerce").astype(float)


# Defined only for patients (controls have no onset): their mere presence would
# identify the controls, so they are reported but are not model inputs.
PATIENT_ONLY = (
    "months_since_onset",
    "alsfrs_r_progression_rate",
    "onset_bulbar",
    "onset_upper_limb",
    "onset_lower_limb",
)


#: Metadata columns that are model inputs: the covariates (age, sex as 0/1).
COVARIATES = ("age", "male")


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The model inputs: every numeric column except identifiers, the diagnosis,
    quality-control columns and the patient-only history columns
    (:data:`PATIENT_ONLY`); the covariates :data:`COVARIATES` are inputs."""
    skip = (set(META_COLUMNS) - set(COVARIATES)) | set(PATIENT_ONLY)
    skip.add("months_since_baseline")  # when the visit was, not what it found
    return [
        c
        for c in table.columns
        if c not in skip
        and not c.startswith("qc_")
        and not c.endswith("_rejected")
        and table[c].dtype.kind in "fiub"
    ]


__all__ = [
    "COVARIATES",
    "Extraction",
    "META_COLUMNS",
    "extract_features",
    "feature_columns",
]
