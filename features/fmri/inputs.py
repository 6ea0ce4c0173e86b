"""Finding a subject-visit's resting-state fMRI files the way XCP-D and fMRIPrep
write them, and reading their tables and sidecars.

BIDS folders ``sub-<l>/[ses-<l>/]func/`` under ``derivatives/xcp_d`` and
``derivatives/fmriprep`` (docs/cohort-format.md); XCP-D outputs win when both
exist. Region columns are mapped to the SMN regions through the project atlas,
the HCP-MMP1 (Glasser) atlas or ``fmri_regions.tsv`` at the cohort root.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import FmriInputError
from features.fmri.smn_atlas import ATLAS_LABEL, SMN_REGIONS

#: Fewer kept volumes than this cannot give stable correlations (UE: about 2.5
#: minutes at TR 3 s; correlations keep stabilising to ~5 minutes, refs#fmri).
MIN_VOLUMES = 50
#: Volumes of the BOLD path with a larger framewise displacement are censored.
FD_THRESHOLD_MM = 0.5

__all__ = ["FmriInput", "find_bold", "find_fmri", "read_region_mapping"]

SMN_ORDER = ("m1_l", "m1_r", "sma_l", "sma_r", "s1_l", "s1_r")


SIDES = ("L", "R")


#: HCP-MMP1 (Glasser 2016) areas of each region (refs#fmri).
GLASSER = {
    "m1": ("4",),
    "sma": ("6ma", "6mp", "SCEF"),
    "s1": ("3a", "3b", "1", "2"),
    "precuneus": ("7m", "PCV"),
    "calcarine": ("V1",),
}


@dataclass(frozen=True)
class FmriInput:
    """The files found for one subject-visit; ``kind`` is ``"xcpd"`` or ``"bold"``."""

    kind: str
    path: Path
    atlas: str = ""
    relmat: Path | None = None
    notes: tuple[str, ...] = ()


def _func_dir(cohort_dir: Path, pipeline: str, pid: str, session: str) -> Path:
    folder = Path(cohort_dir) / "derivatives" / pipeline / pid
    return (folder / session if session else folder) / "func"


def entity(name: str, key: str) -> str:
    found = re.search(rf"_{key}-([A-Za-z0-9]+)", name)
    return found.group(1) if found else ""


def find_fmri(
    cohort_dir: Path, pid: str, session: str, mapping: pd.DataFrame | None = None
) -> FmriInput | None:
    """Locate the rs-fMRI input of one subject-visit, or None when there is none.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    pid, session : str
        ``sub-<label>`` and ``ses-<label>`` (empty without sessions).
    mapping : pandas.DataFrame, optional
        :func:`read_region_mapping` of the cohort, for atlases other than ``alsdx``
        and ``Glasser``.

    Returns
    -------
    FmriInput or None
        XCP-D time series (or, without them, a relmat) of the first usable atlas,
        else fMRIPrep BOLD; ``notes`` name files passed over.
    """
    known = [ATLAS_LABEL, "Glasser"]
    if mapping is not None:
        known += sorted(set(mapping["atlas"]) - set(known))
    xcpd = _func_dir(cohort_dir, "xcp_d", pid, session)
    if xcpd.is_dir():
        series = sorted(xcpd.glob(f"{pid}*task-rest*_timeseries.tsv"))
        relmats = sorted(  # desc-<N>volumes: matrices of truncated series
            p
            for p in xcpd.glob(f"{pid}*task-rest*_relmat.tsv")
            if not p.name.endswith("volumes_relmat.tsv")
        )
        for atlas in known:
            same = [
                p
                for p in (series or relmats)
                if atlas in (entity(p.name, "atlas"), entity(p.name, "seg"))
            ]
            if not same:
                continue
            notes = tuple(
                f"{p.name} not used: one run per visit ({same[0].name} is)"
                for p in same[1:]
            )
            relmat = next(
                (
                    r
                    for r in relmats
                    if source_name(r.name) == source_name(same[0].name)
                    and atlas in (entity(r.name, "atlas"), entity(r.name, "seg"))
                ),
                None,
            )
            return FmriInput("xcpd", same[0], atlas, relmat, notes)
        if series or relmats:
            atlases = sorted(
                {entity(p.name, "atlas") or entity(p.name, "seg") for p in series}
            )
            raise FmriInputError(
                f"{xcpd}: parcellated time series for atlas(es) {atlases}, none of "
                f"which maps to M1/SMA/S1. Parcellate with the project's atlas "
                f"(atlas-{ATLAS_LABEL}) or Glasser, or map your atlas's columns in "
                "fmri_regions.tsv (columns atlas, column, region; region one of "
                f"{', '.join(SMN_REGIONS)})."
            )
    bold = find_bold(cohort_dir, pid, session)
    return None if bold is None else FmriInput("bold", bold[0], notes=bold[1])


def find_bold(
    cohort_dir: Path, pid: str, session: str
) -> tuple[Path, tuple[str, ...]] | None:
    """The fMRIPrep resting-state BOLD of one subject-visit (the first run) and
    notes naming the runs passed over, or None."""
    prep = _func_dir(cohort_dir, "fmriprep", pid, session)
    bolds = sorted(prep.glob(f"{pid}*task-rest*_desc-preproc_bold.nii*"))
    if not bolds:
        return None
    return bolds[0], tuple(f"{p.name} not used: one run per visit" for p in bolds[1:])


def source_name(name: str) -> str:
    """BIDS source entities: everything before ``_space-``/``_atlas-``/``_seg-``."""
    return re.split(r"_(?:space|atlas|seg|stat|desc)-", name)[0]


def read_region_mapping(cohort_dir: Path) -> pd.DataFrame | None:
    """``fmri_regions.tsv`` (atlas, column, region), or None when absent."""
    path = Path(cohort_dir) / "fmri_regions.tsv"
    if not path.exists():
        return None
    table = pd.read_csv(path, sep="\t", dtype=str)
    missing = {"atlas", "column", "region"} - set(table.columns)
    if missing:
        raise FmriInputError(
            f"{path}: columns {sorted(missing)} are missing; the file needs atlas, "
            "column and region (one row per atlas column)."
        )
    bad = table.loc[~table["region"].isin(list(SMN_REGIONS)), "region"]
    if len(bad):
        raise FmriInputError(
            f"{path}, row {bad.index[0] + 2}: region = {bad.iloc[0]!r} is not one of "
            f"{', '.join(SMN_REGIONS)}. Use those names."
        )
    return table


def regions_of(columns: list[str], atlas: str, mapping: pd.DataFrame | None):
    """Region key -> the atlas columns that make it up."""
    if atlas == ATLAS_LABEL:
        return {r: [r] for r in SMN_REGIONS if r in columns}
    if atlas == "Glasser":
        out: dict[str, list[str]] = {}
        for region, areas in GLASSER.items():
            for side in SIDES:
                names = {f"{side}_{a}_ROI" for a in areas} | {
                    f"{side}_{a}" for a in areas
                }
                cols = [c for c in columns if c in names]
                if cols:
                    out[f"{region}_{side.lower()}"] = cols
        return out
    out = {}
    if mapping is not None:
        for row in mapping[mapping["atlas"] == atlas].itertuples():
            if row.column in columns:
                out.setdefault(row.region, []).append(row.column)
    return out


def read_tsv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a", "NaN", "nan"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise FmriInputError(
            f"{path}: not a readable tab-separated table ({e}). Re-export it from "
            "the pipeline."
        ) from e
    for col in table.columns:
        if not pd.api.types.is_numeric_dtype(table[col]):
            bad = pd.to_numeric(table[col], errors="coerce").isna() & table[col].notna()
            if bad.any() and col != "Node":
                row = int(np.flatnonzero(bad)[0])
                raise FmriInputError(
                    f"{path}, row {row + 2}, column {col!r}: value "
                    f"{table[col].iloc[row]!r} is not a number. Fix the value or "
                    "write n/a for a missing one."
                )
    return table


def sidecar(path: Path) -> dict:
    side = path.with_name(re.sub(r"\.(tsv|nii|nii\.gz)$", ".json", path.name))
    if not side.exists():
        return {}
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FmriInputError(
            f"{side}: not valid JSON ({err}). Fix or delete the sidecar."
        ) from err


def framewise_displacement(path: Path) -> np.ndarray | None:
    """Framewise displacement per volume from a motion or confounds file."""
    if not path.exists():
        return None
    table = read_tsv(path)
    if "framewise_displacement" not in table.columns:
        raise FmriInputError(
            f"{path}: no 'framewise_displacement' column (columns: "
            f"{', '.join(map(str, table.columns[:8]))}...). Give the fMRIPrep "
            "confounds or XCP-D motion file unchanged."
        )
    return table["framewise_displacement"].fillna(0.0).to_numpy(float)


def qc_columns(kept: int | None, fd, total: int | None) -> dict[str, float]:
    return {
        "qc_fmri_volumes": float(kept) if kept is not None else np.nan,
        "qc_fmri_mean_fd": float(np.mean(fd)) if fd is not None else np.nan,
        "qc_fmri_censored_fraction": 1 - kept / total if kept and total else np.nan,
    }
