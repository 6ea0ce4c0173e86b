"""Turn a cohort directory into one features table (one row per subject-visit).

`extract_features` reads ``participants.tsv``, every per-modality table and every
pipeline output under ``derivatives/``, and returns a tidy frame: metadata columns
(:data:`META_COLUMNS`), one named float column per feature, and ``has_<modality>``
availability columns. A subject whose file is bad is reported (an :class:`Issue`
naming the file and the fix) and extracted without that modality; with
``strict=True`` the first problem raises instead. Imaging is read in parallel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from joblib import Parallel, delayed

from features import maps
from features.atlas import Atlas, load_atlas
from features.cohort import KEY, CohortPaths, Issue, read_participants, subject_key
from features.errors import CohortFormatError, ImageMismatchError
from features.freesurfer import freesurfer_features
from features.lcmodel import mrs_features
from features.nerve_conduction import read_nerve_conduction, summarise_nerve_conduction
from features.tables import read_clinical, read_peripheral_mri, read_serum

log = logging.getLogger(__name__)

META_COLUMNS = ("participant_id", "session", "diagnosis", "age", "sex", "site")
MODALITIES = (
    "clinical",
    "serum",
    "ncs",
    "peripheral_mri",
    "freesurfer",
    "dti",
    "qsm",
    "mrs",
)
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
    cohort_dir: Path, pid: str, session: str, atlas: Atlas, strict: bool
) -> tuple[dict[str, float], list[Issue]]:
    paths = CohortPaths(cohort_dir, subject_key(pid, session))
    out: dict[str, float] = {}
    issues: list[Issue] = []
    readers = {
        "freesurfer": lambda: freesurfer_features(paths.freesurfer_stats_dir),
        "dti": lambda: maps.dti_features(
            {m: paths.dti_map(m) for m in maps.DTI_MAPS}, atlas
        ),
        "qsm": lambda: maps.qsm_features(paths.qsm_map, atlas),
        "mrs": lambda: mrs_features(paths.lcmodel_table),
    }
    for modality, read in readers.items():
        try:
            values = read()
        except _IMAGING_ERRORS as exc:
            if strict:
                raise
            issues.append(
                Issue(
                    file=f"derivatives/{modality}",
                    participant_id=pid,
                    column=modality,
                    value="",
                    message=f"{pid} {modality}: {exc}",
                )
            )
            values = {}
        out.update(values)
        out[f"has_{modality}"] = float(bool(values))
    return out, issues


def extract_features(
    cohort_dir: Path,
    *,
    strict: bool = False,
    n_jobs: int = -1,
    atlas: Atlas | None = None,
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

    Returns
    -------
    Extraction
        ``table`` has one row per (participant_id, session), sorted.
    """
    cohort_dir = Path(cohort_dir)
    participants = read_participants(cohort_dir)
    issues: list[Issue] = []
    parts = []
    for reader in (read_clinical, read_serum, read_peripheral_mri):
        frame, found = reader(cohort_dir, participants, strict=strict)
        parts.append(frame)
        issues += found
    long, found = read_nerve_conduction(cohort_dir, participants, strict=strict)
    issues += found
    parts.append(summarise_nerve_conduction(long))
    atlas = atlas if atlas is not None else load_atlas()
    keys = list(participants.index)
    results = Parallel(n_jobs=n_jobs)(
        delayed(_subject_imaging)(cohort_dir, pid, ses, atlas, strict)
        for pid, ses in keys
    )
    imaging_rows = []
    for values, found in results:
        issues += found
        imaging_rows.append(values)
    table = participants.copy()
    for name, frame in zip(
        ("clinical", "serum", "peripheral_mri", "ncs"), parts, strict=True
    ):
        numeric = _numeric(frame)
        table = table.join(numeric, how="left")
        table[f"has_{name}"] = table.index.isin(frame.index).astype(float)
    img = pd.DataFrame(imaging_rows, index=participants.index)
    table = table.join(img, how="left")
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
    return Extraction(table, issues)


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


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The model inputs: every numeric column except metadata, QC flags and the
    patient-only history columns (:data:`PATIENT_ONLY`)."""
    skip = set(META_COLUMNS) | {"sex"} | set(PATIENT_ONLY)
    return [
        c
        for c in table.columns
        if c not in skip
        and not c.endswith("_rejected")
        and table[c].dtype.kind in "fiub"
    ]


def write_table(table: pd.DataFrame, out: Path, *, overwrite: bool = False) -> Path:
    """Write ``table`` to ``out`` (.parquet, .csv or .tsv) atomically."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it.")
    tmp = out.with_name(f".{out.name}.tmp")
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        table.to_parquet(tmp, index=False)
    elif suffix in (".csv", ".tsv"):
        table.to_csv(tmp, sep="," if suffix == ".csv" else "\t", index=False)
    else:
        raise ValueError(
            f"{out}: unsupported extension {suffix!r}; use .parquet, .csv or .tsv."
        )
    tmp.replace(out)
    return out


__all__ = [
    "Extraction",
    "META_COLUMNS",
    "MODALITIES",
    "extract_features",
    "feature_columns",
    "write_table",
]
