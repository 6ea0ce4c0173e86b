"""Read FreeSurfer ``aseg.stats``, ``?h.aparc*.stats`` and thalamic-nuclei volumes.

Both stats formats are plain text: ``#`` header lines (``# Measure`` summary values,
``# ColHeaders`` naming the table columns) followed by a whitespace-separated table.
Column positions are always taken from ``# ColHeaders``; structure and measure names
renamed between FreeSurfer 5.3/6 and 7 are normalised to the FreeSurfer 7 spelling.
Malformed ``# Measure`` lines, which some versions write, are skipped with a warning.

Thalamic nuclei (``segmentThalamicNuclei.sh``, FreeSurfer 7) come as
``stats/thalamic-nuclei.?h.v1X.T1.stats``, which the script writes without a
``# ColHeaders`` line (rows ``Index SegId NVoxels Volume_mm3 StructName`` with
``NVoxels`` 0 and the ``Left-``/``Right-`` prefix removed), or as
``mri/ThalamicNuclei.v1X.T1.volumes.txt`` (``Left-PuA 227.317872`` lines).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.files import what_is
from features.errors import CohortFormatError

__all__ = [
    "AparcStats",
    "AsegStats",
    "freesurfer_features",
    "read_aparc_stats",
    "read_aseg_stats",
    "read_thalamic_nuclei",
]

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


def _parse_stats_file(
    path: Path, expected: str, default_columns: tuple[str, ...] | None = None
) -> _StatsFile:
    """Split a FreeSurfer stats file into header, measures, columns and rows.

    ``default_columns`` names the table columns of files written without a
    ``# ColHeaders`` line; without it such a file is an error.
    """
    if not path.is_file():
        unreadable = what_is(path)
        raise FileNotFoundError(
            f"FreeSurfer stats file {path} is {unreadable}, not a file. Put the "
            f"stats file itself at {expected}."
            if unreadable
            else f"FreeSurfer stats file not found: {path}. Expected it at "
            f"{expected} in the cohort directory; run recon-all for this subject "
            "or fix the path."
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
    if columns is None and default_columns is not None:
        columns = list(default_columns)
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


def _volume_columns(parsed: _StatsFile, path: Path, fix: str) -> tuple[int, int]:
    """Positions of StructName and Volume_mm3 in a stats table, or a clear error."""
    for needed in ("StructName", "Volume_mm3"):
        if needed not in parsed.columns:
            raise CohortFormatError(
                f"{path}: '# ColHeaders' has no {needed} column (found: "
                f"{' '.join(parsed.columns)}). {fix}"
            )
    return parsed.columns.index("StructName"), parsed.columns.index("Volume_mm3")


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
    name_at, vol_at = _volume_columns(
        parsed,
        path,
        "An aseg.stats table needs StructName and Volume_mm3 columns; check that "
        "this is an mri_segstats output.",
    )
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


#: Columns of the ``thalamic-nuclei.?h.v1X.T1.stats`` files that
#: ``segmentThalamicNuclei.sh`` writes without a ``# ColHeaders`` line.
THALAMIC_STATS_COLUMNS = ("Index", "SegId", "NVoxels", "Volume_mm3", "StructName")
#: The four pulvinar nuclei of the Iglesias et al. (2018) thalamic atlas.
PULVINAR_NUCLEI = ("PuA", "PuM", "PuL", "PuI")
_HEMI_NAMES = {"lh": "Left", "rh": "Right"}
_VERSION = re.compile(r"\.v(\d+)\.")


def _nucleus_name(path: Path, lineno: int, name: str, hemi: str | None) -> str:
    """``Left-PuA`` from ``PuA`` (hemisphere from the file) or ``Left-PuA``."""
    side, _, bare = name.partition("-")
    if side in ("Left", "Right") and bare:
        if hemi is not None and side != _HEMI_NAMES[hemi]:
            raise CohortFormatError(
                f"{path}, line {lineno}: structure {name!r} is in the {hemi} file. "
                "The lh/rh files are swapped or edited; restore the files "
                "segmentThalamicNuclei.sh wrote."
            )
        return name
    if hemi is None:
        raise CohortFormatError(
            f"{path}, line {lineno}: structure {name!r} has no Left-/Right- prefix "
            "and the file name does not say the hemisphere (thalamic-nuclei.lh... "
            "or .rh...). Rename the file or restore the prefix."
        )
    return f"{_HEMI_NAMES[hemi]}-{name}"


def read_thalamic_nuclei(path: str | Path) -> dict[str, float]:
    """Read FreeSurfer 7 thalamic-nuclei volumes (``segmentThalamicNuclei.sh``).

    Parameters
    ----------
    path : str or Path
        Either a per-hemisphere stats file,
        ``stats/thalamic-nuclei.lh.v13.T1.stats`` (hemisphere from the file name;
        with or without a ``# ColHeaders`` line), or the two-hemisphere
        ``mri/ThalamicNuclei.v12.T1.volumes.txt`` (``name volume`` lines).

    Returns
    -------
    dict of str to float
        Nucleus name with its hemisphere prefix (``"Left-PuA"``, ...,
        ``"Right-Whole_thalamus"``) -> volume in mm^3.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CohortFormatError
        If a row has the wrong number of fields, a volume is not a number, or a
        stats-file structure belongs to the other hemisphere or to none.

    Examples
    --------
    >>> nuclei = read_thalamic_nuclei(
    ...     "tests/data/freesurfer_quirks/thalamic_nuclei/stats/"
    ...     "thalamic-nuclei.lh.v13.T1.stats"
    ... )
    >>> nuclei["Left-PuM"]
    1252.526558
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"thalamic nuclei file not found: {path}. Run segmentThalamicNuclei.sh "
            "for this subject or fix the path."
        )
    if path.name.endswith(".volumes.txt"):
        return _read_nuclei_volumes_txt(path)
    hemi = next((h for h in _HEMI_NAMES if f".{h}." in path.name), None)
    parsed = _parse_stats_file(
        path,
        "derivatives/freesurfer/sub-X/stats/thalamic-nuclei.lh.v13.T1.stats",
        default_columns=THALAMIC_STATS_COLUMNS,
    )
    name_at, vol_at = _volume_columns(
        parsed, path, "Restore the file that segmentThalamicNuclei.sh wrote."
    )
    return {
        _nucleus_name(path, lineno, tokens[name_at], hemi): _to_float(
            path, lineno, "Volume_mm3", tokens[vol_at]
        )
        for lineno, tokens in parsed.rows
    }


def _read_nuclei_volumes_txt(path: Path) -> dict[str, float]:
    """Read ``ThalamicNuclei.v1X.T1.volumes.txt``: one ``name volume`` per line."""
    volumes: dict[str, float] = {}
    text = path.read_text(encoding="utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2:
            raise CohortFormatError(
                f"{path}, line {lineno}: expected 'name volume' (e.g. "
                f"'Left-PuA 227.317872'), got {line.strip()!r}. The file is "
                "truncated or edited; re-run segmentThalamicNuclei.sh."
            )
        volumes[tokens[0]] = _to_float(path, lineno, "volume", tokens[1])
    return volumes


def _newest(paths: list[Path]) -> Path | None:
    """The path with the highest ``.vNN.`` atlas version, None for no paths."""
    versions = [(int(m[1]) if (m := _VERSION.search(p.name)) else -1, p) for p in paths]
    return max(versions)[1] if versions else None


def _pulvinar_volumes(stats_dir: Path) -> dict[str, float]:
    """``fs_pulvinar_{l,r}_mm3`` from the newest thalamic-nuclei output, {} if none.

    Per hemisphere the stats file is used when present, else ``volumes.txt``; a
    hemisphere lacking one of the four nuclei gives NaN.
    """
    stats = {
        hemi: _newest(list(stats_dir.glob(f"thalamic-nuclei.{hemi}.v*.T1.stats")))
        for hemi in _HEMI_NAMES
    }
    txt = None
    if not all(stats.values()):
        mri_dir = stats_dir.parent / "mri"
        txt = _newest(list(mri_dir.glob("ThalamicNuclei.v*.T1.volumes.txt")))
    from_txt = read_thalamic_nuclei(txt) if txt is not None else {}
    out: dict[str, float] = {}
    for side, hemi in (("l", "lh"), ("r", "rh")):
        if stats[hemi] is None and txt is None:
            continue
        nuclei = from_txt if stats[hemi] is None else read_thalamic_nuclei(stats[hemi])
        names = [f"{_HEMI_NAMES[hemi]}-{n}" for n in PULVINAR_NUCLEI]
        out[side] = sum(nuclei.get(n, np.nan) for n in names)
    if not out:
        return {}
    return {f"fs_pulvinar_{side}_mm3": out.get(side, np.nan) for side in ("l", "r")}


def _parcellation(stats_dir: Path, has_aseg: bool) -> tuple[dict[str, Path], bool]:
    """The ``?h.aparc.stats`` pair, else the ``?h.aparc.DKTatlas.stats`` pair
    (``?h.aparc.DKTatlas40.stats`` as FreeSurfer 5.3 names it)."""
    for atlas, is_dkt in (
        ("aparc", False),
        ("aparc.DKTatlas", True),
        ("aparc.DKTatlas40", True),
    ):
        paths = {h: stats_dir / f"{h}.{atlas}.stats" for h in ("lh", "rh")}
        if all(p.is_file() for p in paths.values()):
            return paths, is_dkt
    wanted = [
        f"{h}.{a}.stats" for a in ("aparc", "aparc.DKTatlas") for h in ("lh", "rh")
    ]
    missing = [name for name in wanted if not (stats_dir / name).is_file()]
    there = "aseg.stats is there but" if has_aseg else "no aseg.stats, and"
    raise FileNotFoundError(
        f"{stats_dir}: {there} {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not there; the cortical measures need "
        "lh.aparc.stats and rh.aparc.stats (or, failing those, both "
        "?h.aparc.DKTatlas.stats, or FreeSurfer 5.3's ?h.aparc.DKTatlas40.stats). "
        "Finish recon-all (-autorecon3) for this subject "
        "or copy the stats files from its recon-all output."
    )


ASEG_STRUCTURES = ("Thalamus", "Caudate", "Putamen", "Pallidum")


def freesurfer_features(stats_dir: Path) -> dict[str, float]:
    """Volumes, thickness, M1/precuneus ratio and eTIV-normalised volumes.

    Parameters
    ----------
    stats_dir : Path
        A recon-all ``stats/`` folder, ``derivatives/freesurfer/sub-X/stats``;
        thalamic-nuclei volumes are also looked for in the sibling ``mri/``.

    Returns
    -------
    dict of str to float
        Empty when the folder holds no ``.stats`` file (not acquired). Otherwise
        ``fs_etiv_mm3``,
        ``fs_total_gray_mm3``, ``fs_{thalamus,caudate,putamen,pallidum}_{l,r}_mm3``
        (aseg), ``fs_{precentral,precuneus}_{l,r}_mm3`` (grey-matter volume) and
        ``fs_mean_thickness_{l,r}_mm`` from ``?h.aparc.stats`` or, when that pair
        is missing, ``?h.aparc.DKTatlas.stats`` (``qc_fs_parcellation_dkt`` = 1.0);
        ``fs_m1_precuneus_ratio``; ``fs_pulvinar_{l,r}_mm3`` (PuA + PuM + PuL +
        PuI) only when thalamic-nuclei volumes exist; and for every ``fs_<x>_mm3``
        but eTIV, ``fs_<x>_etiv_pct`` = 100 x volume / eTIV. All volumes in mm^3.

        Without ``aseg.stats`` (e.g. a FreeSurfer 6 subject whose volume stats
        were not copied) the cortical values are still extracted, with the eTIV
        of the aparc files' ``# Measure`` line, and a ``UserWarning`` names what
        is missing (total grey matter, subcortical volumes).

    Raises
    ------
    FileNotFoundError
        If the folder holds stats files but neither parcellation pair.
    CohortFormatError
        If a stats or thalamic-nuclei file is malformed.

    Examples
    --------
    >>> feats = freesurfer_features(Path("tests/data/real/freesurfer/bert/stats"))
    >>> round(feats["fs_m1_precuneus_ratio"], 2), feats["qc_fs_parcellation_dkt"]
    (1.52, 0.0)
    """
    stats_dir = Path(stats_dir)
    aseg_path = stats_dir / "aseg.stats"
    found = sorted(p.name for p in stats_dir.glob("*.stats") if p.is_file())
    if not found:
        return {}  # not acquired
    has_aseg = aseg_path.is_file()
    parcellation, is_dkt = _parcellation(stats_dir, has_aseg)
    out: dict[str, float] = {}
    if has_aseg:
        aseg = read_aseg_stats(aseg_path)
        out["fs_etiv_mm3"] = aseg.measures.get("eTIV", np.nan)
        out["fs_total_gray_mm3"] = aseg.measures.get("TotalGrayVol", np.nan)
    else:
        out["fs_etiv_mm3"] = out["fs_total_gray_mm3"] = np.nan
    for side, hemi in (("l", "Left"), ("r", "Right")):
        for s in ASEG_STRUCTURES:
            name = f"fs_{s.lower()}_{side}_mm3"
            out[name] = aseg.volumes.get(f"{hemi}-{s}", np.nan) if has_aseg else np.nan
    for side, hemi in (("l", "lh"), ("r", "rh")):
        aparc = read_aparc_stats(parcellation[hemi])
        if not has_aseg and np.isnan(out["fs_etiv_mm3"]):
            out["fs_etiv_mm3"] = aparc.measures.get("eTIV", np.nan)
        gray = aparc.regions["GrayVol"] if "GrayVol" in aparc.regions else {}
        out[f"fs_precentral_{side}_mm3"] = float(gray.get("precentral", np.nan))
        out[f"fs_precuneus_{side}_mm3"] = float(gray.get("precuneus", np.nan))
        out[f"fs_mean_thickness_{side}_mm"] = aparc.measures.get(
            "MeanThickness", np.nan
        )
    # M1/precuneus grey-matter volume ratio, both hemispheres (Sako 2023; refs#gm).
    out["fs_m1_precuneus_ratio"] = (
        out["fs_precentral_l_mm3"] + out["fs_precentral_r_mm3"]
    ) / (out["fs_precuneus_l_mm3"] + out["fs_precuneus_r_mm3"])
    out["qc_fs_parcellation_dkt"] = float(is_dkt)
    # Pulvinar atrophy in RRMS vs controls and NMOSD (Pudlac 2020; refs#gm).
    out.update(_pulvinar_volumes(stats_dir))
    etiv = out["fs_etiv_mm3"] if out["fs_etiv_mm3"] > 0 else np.nan
    for name in [n for n in out if n.endswith("_mm3") and n != "fs_etiv_mm3"]:
        out[name.removesuffix("_mm3") + "_etiv_pct"] = 100.0 * out[name] / etiv
    if not has_aseg:
        etiv_from = (
            f"eTIV from {parcellation['lh'].name}"
            if np.isfinite(etiv)
            else "no eTIV either (the aparc files have no eTIV measure), so no "
            "eTIV-normalised (_etiv_pct) value"
        )
        unreadable = what_is(aseg_path)
        absent = f"aseg.stats is {unreadable}" if unreadable else "no aseg.stats"
        warnings.warn(
            f"{stats_dir}: {absent} (found {', '.join(found)}): the cortical "
            "values (precentral and precuneus volumes, thickness, the M1/precuneus "
            f"ratio) are extracted with {etiv_from}; total grey matter and the "
            "thalamus, caudate, putamen and pallidum volumes (and their _etiv_pct) "
            "are missing. Copy aseg.stats from the subject's recon-all output to "
            "get them.",
            UserWarning,
            stacklevel=2,
        )
    return out
