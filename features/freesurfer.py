"""Read FreeSurfer ``aseg.stats`` and ``?h.aparc*.stats`` files.

Both formats are plain text: ``#`` header lines (``# Measure`` summary values,
``# ColHeaders`` naming the table columns) followed by a whitespace-separated table.
Column positions are always taken from ``# ColHeaders``; structure and measure names
renamed between FreeSurfer 5.3/6 and 7 are normalised to the FreeSurfer 7 spelling.
Malformed ``# Measure`` lines, which some versions write, are skipped with a warning.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import CohortFormatError

__all__ = ["AparcStats", "AsegStats", "read_aparc_stats", "read_aseg_stats"]

#: FreeSurfer 5.3/6 structure names and their FreeSurfer 7 spelling.
STRUCTURE_RENAMES: dict[str, str] = {
    "Left-Thalamus-Proper": "Left-Thalamus",
    "Right-Thalamus-Proper": "Right-Thalamus",
}

#: FreeSurfer 5.x ``# Measure`` keys and the key FreeSurfer 6/7 writes instead. The
#: values are the same quantity; FreeSurfer 6 changed how white matter is computed.
MEASURE_RENAMES: dict[str, str] = {
    "ICV": "eTIV",
    "lhCorticalWhiteMatterVol": "lhCerebralWhiteMatterVol",
    "rhCorticalWhiteMatterVol": "rhCerebralWhiteMatterVol",
    "CorticalWhiteMatterVol": "CerebralWhiteMatterVol",
}

APARC_COLUMNS: tuple[str, ...] = (
    "NumVert", "SurfArea", "GrayVol", "ThickAvg", "ThickStd",
    "MeanCurv", "GausCurv", "FoldInd", "CurvInd",
)  # fmt: skip


@dataclass(frozen=True)
class AsegStats:
    """Contents of one FreeSurfer ``aseg.stats`` file.

    Attributes
    ----------
    measures : dict of str to float
        ``# Measure`` values keyed by the measure's second field (``"eTIV"``,
        ``"BrainSegVol"``, ``"TotalGrayVol"``, ...); FreeSurfer 5.x keys are renamed
        as in ``MEASURE_RENAMES`` (``ICV`` -> ``eTIV``).
    volumes : dict of str to float
        Structure name (FreeSurfer 7 spelling) -> ``Volume_mm3`` (the partial-volume
        corrected volume, not ``NVoxels``).
    version : str or None
        The ``# cvs_version`` text, else the ``# generating_program`` text.
    path : Path
        The file that was read.
    """

    measures: dict[str, float]
    volumes: dict[str, float]
    version: str | None
    path: Path


@dataclass(frozen=True, eq=False)
class AparcStats:
    """Contents of one FreeSurfer ``?h.aparc*.stats`` file.

    Attributes
    ----------
    hemi : {"lh", "rh"}
        Hemisphere, from the ``# hemi`` header line or the file name.
    measures : dict of str to float
        ``# Measure`` values keyed by their second field (``"MeanThickness"``,
        ``"WhiteSurfArea"``, ``"eTIV"``, ...).
    regions : pandas.DataFrame
        One row per parcel, indexed by ``StructName``, with float columns as named in
        ``# ColHeaders`` (``NumVert``, ``SurfArea``, ``GrayVol``, ``ThickAvg``, ...).
        Parcels absent from the atlas are absent from the index.
    atlas : str
        Parcellation name, e.g. ``"aparc"`` or ``"aparc.DKTatlas"``.
    path : Path
        The file that was read.
    """

    hemi: str
    measures: dict[str, float]
    regions: pd.DataFrame
    atlas: str
    path: Path


@dataclass(frozen=True)
class _StatsFile:
    """Raw pieces of a stats file: header keys, measures, columns and table rows."""

    header: dict[str, str]
    measures: dict[str, float]
    columns: list[str]
    rows: list[tuple[int, list[str]]]


def _parse_measure(path: Path, lineno: int, line: str) -> tuple[str, float] | None:
    """Return (second field, value) of a ``# Measure`` line, or None after a warning."""
    fields = [f.strip() for f in line.split("Measure", 1)[1].split(",")]
    problem = None
    if len(fields) != 5:
        problem = f"has {len(fields)} comma-separated fields, expected 5"
    else:
        try:
            return fields[1], float(fields[3])
        except ValueError:
            problem = f"value {fields[3]!r} is not a number"
    warnings.warn(
        f"{path}, line {lineno}: skipped malformed '# Measure' line ({problem}; "
        f"expected 'name, key, description, value, units'): {line.strip()!r}",
        stacklevel=4,
    )
    return None


def _parse_stats_file(path: Path, expected: str) -> _StatsFile:
    """Split a FreeSurfer stats file into header, measures, columns and rows."""
    if not path.is_file():
        raise FileNotFoundError(
            f"FreeSurfer stats file not found: {path}. Expected it at {expected} "
            "in the cohort directory; run recon-all for this subject or fix the path."
        )
    header: dict[str, str] = {}
    measures: dict[str, float] = {}
    columns: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if not line.startswith("#"):
            rows.append((lineno, line.split()))
            continue
        body = line[1:].strip()
        key, _, value = body.partition(" ")
        if key == "Measure":
            parsed = _parse_measure(path, lineno, line)
            if parsed is not None:
                measures[parsed[0]] = parsed[1]
        elif key == "ColHeaders":
            columns = value.split()
        elif key and key not in header:
            header[key] = value.strip()
    for old, new in MEASURE_RENAMES.items():
        if old in measures:
            measures.setdefault(new, measures.pop(old))
    if columns is None:
        raise CohortFormatError(
            f"{path}: no '# ColHeaders' line found; a FreeSurfer stats file names its "
            "table columns in a '# ColHeaders ...' line just above the table. Check "
            "that the file is a complete mri_segstats/mris_anatomical_stats output."
        )
    for lineno, tokens in rows:
        if len(tokens) != len(columns):
            raise CohortFormatError(
                f"{path}, line {lineno}: table row has {len(tokens)} fields but "
                f"'# ColHeaders' names {len(columns)} ({' '.join(columns)}): "
                f"{' '.join(tokens)!r}. The file is truncated or edited; re-export it."
            )
    return _StatsFile(header, measures, columns, rows)


def _to_float(path: Path, lineno: int, column: str, text: str) -> float:
    """Parse one table cell as float, naming file, line and column on failure."""
    try:
        return float(text)
    except ValueError:
        raise CohortFormatError(
            f"{path}, line {lineno}: column {column} = {text!r} is not a number. "
            "Fix or re-export the stats file."
        ) from None


def read_aseg_stats(path: str | Path) -> AsegStats:
    """Read a FreeSurfer ``aseg.stats`` file (FreeSurfer 5.3 to 7).

    Parameters
    ----------
    path : str or Path
        Path to ``aseg.stats``, normally
        ``derivatives/freesurfer/sub-X/stats/aseg.stats``.

    Returns
    -------
    AsegStats
        Measures keyed by their second field, volumes from the ``Volume_mm3``
        column keyed by structure name (``Left-Thalamus-Proper`` is renamed
        ``Left-Thalamus``), and the FreeSurfer version string.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CohortFormatError
        If the file has no ``# ColHeaders`` line, lacks a ``StructName`` or
        ``Volume_mm3`` column, or holds a malformed table row.

    Examples
    --------
    >>> stats = read_aseg_stats("tests/data/real/freesurfer/bert/stats/aseg.stats")
    >>> stats.volumes["Left-Thalamus"], stats.measures["eTIV"]
    (8066.3, 1520021.264474)
    """
    path = Path(path)
    parsed = _parse_stats_file(path, "derivatives/freesurfer/sub-X/stats/aseg.stats")
    for needed in ("StructName", "Volume_mm3"):
        if needed not in parsed.columns:
            raise CohortFormatError(
                f"{path}: '# ColHeaders' has no {needed} column (found: "
                f"{' '.join(parsed.columns)}). An aseg.stats table needs StructName "
                "and Volume_mm3 columns; check that this is an mri_segstats output."
            )
    name_at = parsed.columns.index("StructName")
    vol_at = parsed.columns.index("Volume_mm3")
    volumes: dict[str, float] = {}
    for lineno, tokens in parsed.rows:
        name = STRUCTURE_RENAMES.get(tokens[name_at], tokens[name_at])
        volumes[name] = _to_float(path, lineno, "Volume_mm3", tokens[vol_at])
    version = parsed.header.get("cvs_version") or parsed.header.get(
        "generating_program"
    )
    return AsegStats(parsed.measures, volumes, version or None, path)


def _annotation_name(path: Path, header: dict[str, str]) -> str:
    """Atlas name from ``# AnnotationFile`` or, failing that, the file name."""
    annot = header.get("AnnotationFile", "")
    name = Path(annot).name if annot else path.name
    name = re.sub(r"^[lr]h\.", "", name)
    return re.sub(r"\.(annot|stats)$", "", name)


def read_aparc_stats(path: str | Path) -> AparcStats:
    """Read a FreeSurfer cortical parcellation stats file (``?h.aparc*.stats``).

    Parameters
    ----------
    path : str or Path
        Path to e.g. ``derivatives/freesurfer/sub-X/stats/lh.aparc.stats`` or
        ``rh.aparc.DKTatlas.stats``.

    Returns
    -------
    AparcStats
        Hemisphere, measures keyed by their second field, a float table of parcels
        indexed by ``StructName`` and the atlas name.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CohortFormatError
        If the file has no ``# ColHeaders`` line or no ``StructName`` column, holds a
        malformed or non-numeric table row, or its hemisphere cannot be told.

    Examples
    --------
    >>> stats = read_aparc_stats("tests/data/real/freesurfer/bert/stats/lh.aparc.stats")
    >>> stats.hemi, stats.atlas, stats.regions.loc["precentral", "GrayVol"]
    ('lh', 'aparc', np.float64(14392.0))
    """
    path = Path(path)
    parsed = _parse_stats_file(
        path, "derivatives/freesurfer/sub-X/stats/lh.aparc.stats"
    )
    if "StructName" not in parsed.columns:
        raise CohortFormatError(
            f"{path}: '# ColHeaders' has no StructName column (found: "
            f"{' '.join(parsed.columns)}). Check that this is an mris_anatomical_stats "
            "output (?h.aparc.stats)."
        )
    hemi = parsed.header.get("hemi") or path.name[:2]
    if hemi not in ("lh", "rh"):
        raise CohortFormatError(
            f"{path}: cannot tell the hemisphere: no '# hemi lh|rh' header line and "
            "the file name does not start with 'lh.' or 'rh.'. Rename the file "
            "(e.g. lh.aparc.stats) or add the '# hemi' line."
        )
    numeric = [c for c in parsed.columns if c != "StructName"]
    name_at = parsed.columns.index("StructName")
    records: dict[str, list[float]] = {}
    for lineno, tokens in parsed.rows:
        cells = dict(zip(parsed.columns, tokens, strict=True))
        records[tokens[name_at]] = [
            _to_float(path, lineno, col, cells[col]) for col in numeric
        ]
    regions = pd.DataFrame.from_dict(
        records, orient="index", columns=numeric, dtype="float64"
    )
    regions.index.name = "StructName"
    return AparcStats(
        hemi, parsed.measures, regions, _annotation_name(path, parsed.header), path
    )


ASEG_STRUCTURES = ("Thalamus", "Caudate", "Putamen", "Pallidum")


def freesurfer_features(stats_dir: Path) -> dict[str, float]:
    """Volumes (mm^3), thickness (mm) and the M1/precuneus ratio (recon-all stats)."""
    aseg_path = stats_dir / "aseg.stats"
    if not aseg_path.exists():
        return {}
    aseg = read_aseg_stats(aseg_path)
    out = {
        "fs_etiv_mm3": aseg.measures.get("eTIV", np.nan),
        "fs_total_gray_mm3": aseg.measures.get("TotalGrayVol", np.nan),
    }
    for side, hemi in (("l", "Left"), ("r", "Right")):
        for s in ASEG_STRUCTURES:
            out[f"fs_{s.lower()}_{side}_mm3"] = aseg.volumes.get(f"{hemi}-{s}", np.nan)
    for side, hemi in (("l", "lh"), ("r", "rh")):
        aparc = read_aparc_stats(stats_dir / f"{hemi}.aparc.stats")
        gray = aparc.regions["GrayVol"] if "GrayVol" in aparc.regions else {}
        out[f"fs_precentral_{side}_mm3"] = float(gray.get("precentral", np.nan))
        out[f"fs_precuneus_{side}_mm3"] = float(gray.get("precuneus", np.nan))
        out[f"fs_mean_thickness_{side}_mm"] = aparc.measures.get(
            "MeanThickness", np.nan
        )
    # M1/precuneus grey-matter volume ratio, both hemispheres (Sako 2023; lit §5).
    out["fs_m1_precuneus_ratio"] = (
        out["fs_precentral_l_mm3"] + out["fs_precentral_r_mm3"]
    ) / (out["fs_precuneus_l_mm3"] + out["fs_precuneus_r_mm3"])
    return out
