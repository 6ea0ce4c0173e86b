"""Resting-state fMRI features of the sensorimotor network (SMN).

Inputs per subject-visit, found the way the pipelines write them (BIDS folders
``sub-<l>/[ses-<l>/]func/`` under ``derivatives/``; docs/cohort-format.md):

1. **XCP-D parcellated outputs** (``derivatives/xcp_d``): ``*_task-rest*_atlas-<A>
   [_stat-mean]_timeseries.tsv`` (one column per region; ``seg-<A>`` in XCP-D
   0.7-0.9), and ``*_stat-pearsoncorrelation_relmat.tsv``; the JSON sidecar of the
   time series (``RepetitionTime``, ``SoftwareFilters``), ``<source>_motion.tsv``
   (``framewise_displacement``) and ``<source>_outliers.tsv`` (1 = censored volume).
2. **fMRIPrep preprocessed BOLD** in MNI space (``derivatives/fmriprep``):
   ``*_task-rest*_space-MNI152*_desc-preproc_bold.nii[.gz]``, its sidecar
   (``RepetitionTime``) and ``*_desc-confounds_timeseries.tsv``. Reduced to region
   time series by nilearn's ``NiftiLabelsMasker`` on :mod:`features.smn_atlas`
   (labels resampled to the BOLD grid, nearest neighbour; the masker's result computed
   faster, :func:`reduce_bold`), linearly detrended, the
   six motion parameters regressed out and volumes with FD > 0.5 mm censored
   (Power et al. 2012's threshold; refs#fmri).

XCP-D outputs win when both exist (they are the pipeline's own denoised signal);
``source_fmri`` names the file used.

Region columns: the project's own atlas (``atlas-alsdx``, columns named as
:data:`features.smn_atlas.SMN_REGIONS`), the HCP-MMP1 atlas (``atlas-Glasser``:
M1 = area 4, SMA = 6ma/6mp/SCEF, S1 = 3a/3b/1/2; refs#fmri), or any atlas mapped
in ``fmri_regions.tsv`` at the cohort root (``atlas``, ``column``, ``region``).

Features (Fisher z of Pearson correlations between region mean signals; fALFF =
amplitude in 0.01-0.08 Hz over the amplitude up to Nyquist, Zou et al. 2008, from
a Lomb-Scargle periodogram over the kept volumes' times so censoring leaves no
gaps to fill): ``fmri_smn_within_z`` (mean over the 15 pairs of M1, SMA, S1 left
and right), ``fmri_sma_m1_z`` (the 4 SMA-M1 pairs), ``fmri_m1_interhemispheric_z``,
``fmri_falff_sma``, ``fmri_falff_m1`` (mean of both sides), and QC columns
``qc_fmri_volumes`` (kept), ``qc_fmri_mean_fd`` (mm, all volumes),
``qc_fmri_censored_fraction``.
"""

from __future__ import annotations

import json
import re
import warnings
import zlib
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import FmriInputError
from features.smn_atlas import ATLAS_LABEL, SMN_REGIONS

__all__ = [
    "FD_THRESHOLD_MM",
    "BoldRun",
    "MIN_VOLUMES",
    "FmriInput",
    "find_bold",
    "find_fmri",
    "fmri_features",
    "load_bold",
    "region_timeseries",
]

#: Fewer kept volumes than this cannot give stable correlations (UE: about 2.5
#: minutes at TR 3 s; correlations keep stabilising to ~5 minutes, refs#fmri).
MIN_VOLUMES = 50
#: Volumes of the BOLD path with a larger framewise displacement are censored.
FD_THRESHOLD_MM = 0.5
LOW_BAND_HZ = (0.01, 0.08)
_SMN = ("m1_l", "m1_r", "sma_l", "sma_r", "s1_l", "s1_r")
_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_SIDES = ("L", "R")
#: HCP-MMP1 (Glasser 2016) areas of each region (refs#fmri).
_GLASSER = {
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


def _entity(name: str, key: str) -> str:
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
                if atlas in (_entity(p.name, "atlas"), _entity(p.name, "seg"))
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
                    if _source(r.name) == _source(same[0].name)
                    and atlas in (_entity(r.name, "atlas"), _entity(r.name, "seg"))
                ),
                None,
            )
            return FmriInput("xcpd", same[0], atlas, relmat, notes)
        if series or relmats:
            atlases = sorted(
                {_entity(p.name, "atlas") or _entity(p.name, "seg") for p in series}
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


def _source(name: str) -> str:
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


def _regions_of(columns: list[str], atlas: str, mapping: pd.DataFrame | None):
    """Region key -> the atlas columns that make it up."""
    if atlas == ATLAS_LABEL:
        return {r: [r] for r in SMN_REGIONS if r in columns}
    if atlas == "Glasser":
        out: dict[str, list[str]] = {}
        for region, areas in _GLASSER.items():
            for side in _SIDES:
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


def _read_table(path: Path) -> pd.DataFrame:
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


def _sidecar(path: Path) -> dict:
    side = path.with_name(re.sub(r"\.(tsv|nii|nii\.gz)$", ".json", path.name))
    if not side.exists():
        return {}
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FmriInputError(
            f"{side}: not valid JSON ({err}). Fix or delete the sidecar."
        ) from err


def _fd(path: Path) -> np.ndarray | None:
    """Framewise displacement per volume from a motion or confounds file."""
    if not path.exists():
        return None
    table = _read_table(path)
    if "framewise_displacement" not in table.columns:
        raise FmriInputError(
            f"{path}: no 'framewise_displacement' column (columns: "
            f"{', '.join(map(str, table.columns[:8]))}...). Give the fMRIPrep "
            "confounds or XCP-D motion file unchanged."
        )
    return table["framewise_displacement"].fillna(0.0).to_numpy(float)


def region_timeseries(
    found: FmriInput, mapping: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, np.ndarray | None, dict[str, float], list[str]]:
    """Region mean signals of one input, with the kept volumes' times and QC.

    Returns
    -------
    signals : pandas.DataFrame
        One column per region key (parcels of a region averaged), one row per kept
        volume; empty when the input is only a relmat.
    times : numpy.ndarray or None
        Seconds of each kept volume; None when the repetition time is unknown.
    qc : dict
        ``qc_fmri_volumes``, ``qc_fmri_mean_fd``, ``qc_fmri_censored_fraction``.
    notes : list of str
        What could not be done (e.g. no motion file), each naming the file.
    """
    if found.kind == "bold":
        return _bold_timeseries(found.path)
    notes: list[str] = []
    path = found.path
    if path.name.endswith("_relmat.tsv"):
        return pd.DataFrame(), None, _qc(None, None, None), notes
    table = _read_table(path)
    regions = _regions_of(list(table.columns), found.atlas, mapping)
    if not regions:
        raise FmriInputError(
            f"{path}: none of its columns ({', '.join(map(str, table.columns[:6]))}"
            f"...) is a region of atlas {found.atlas}. Use the file XCP-D wrote, or "
            "map the columns in fmri_regions.tsv."
        )
    signals = pd.DataFrame({r: table[cols].mean(axis=1) for r, cols in regions.items()})
    meta = _sidecar(path)
    tr = meta.get("RepetitionTime")
    source = path.with_name(_source(path.name))
    fd = _fd(Path(f"{source}_motion.tsv"))
    outliers = Path(f"{source}_outliers.tsv")
    if outliers.exists():
        flags = _read_table(outliers).iloc[:, 0].to_numpy(float) > 0
        kept_index = np.flatnonzero(~flags)
        if len(kept_index) != len(table) and len(flags) != len(table):
            raise FmriInputError(
                f"{path}: {len(table)} rows, but {outliers.name} has {len(flags)} "
                f"volumes of which {len(kept_index)} kept. Use the time series and "
                "outliers file of the same XCP-D run."
            )
        if len(flags) == len(table):  # interpolated (abcd mode): drop censored rows
            signals = signals.iloc[kept_index].reset_index(drop=True)
        total = len(flags)
    else:
        kept_index, total = np.arange(len(signals)), None
        notes.append(f"no {outliers.name}: censored fraction unknown")
    if fd is None:
        notes.append(f"no {source.name}_motion.tsv: mean FD unknown")
    if tr is None:
        notes.append(
            f"{path.name}: RepetitionTime missing from its JSON sidecar, fALFF not "
            "computed. Add RepetitionTime (seconds) to the sidecar."
        )
    elif "Bandpass" in json.dumps(meta.get("SoftwareFilters", {})):
        notes.append(
            f"{path.name}: the series was band-pass filtered (SoftwareFilters), so "
            "fALFF is not defined; run XCP-D with --disable-bandpass-filtering."
        )
        tr = None
    times = kept_index * float(tr) if tr is not None else None
    return signals, times, _qc(len(signals), fd, total), notes


def _qc(kept: int | None, fd, total: int | None) -> dict[str, float]:
    return {
        "qc_fmri_volumes": float(kept) if kept is not None else np.nan,
        "qc_fmri_mean_fd": float(np.mean(fd)) if fd is not None else np.nan,
        "qc_fmri_censored_fraction": 1 - kept / total if kept and total else np.nan,
    }


@dataclass(frozen=True)
class BoldRun:
    """One preprocessed BOLD run, read and checked by :func:`load_bold`.

    ``img`` is float32 in memory; ``labels`` the SMN atlas on its grid (nearest
    neighbour); ``confounds`` the six motion parameters (volumes x 6) or None;
    ``kept`` the indices of volumes with FD <= :data:`FD_THRESHOLD_MM`; ``fd`` the
    framewise displacement of every volume or None; ``notes`` what was not done.
    """

    path: Path
    img: object
    labels: object
    tr: float
    confounds: np.ndarray | None
    kept: np.ndarray
    fd: np.ndarray | None
    notes: tuple[str, ...]

    @property
    def qc(self) -> dict[str, float]:
        return _qc(len(self.kept), self.fd, self.img.shape[3])


def _bold_timeseries(path: Path):
    run = load_bold(path)
    signals = reduce_bold(run.img, run.labels, run.tr, run.confounds, run.kept)
    return signals, run.kept * run.tr, run.qc, list(run.notes)


def load_bold(path: Path) -> BoldRun:
    """Read a preprocessed BOLD run with its sidecar and confounds, and check it.

    Raises
    ------
    FmriInputError
        Not MNI space, unreadable or truncated, not 4D, no repetition time, not on
        an MNI grid, confounds of another run, fewer than :data:`MIN_VOLUMES` kept.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError
    from nilearn.image import resample_to_img

    from features.smn_atlas import smn_atlas

    space = _entity(path.name, "space")
    if space and not space.startswith("MNI"):
        raise FmriInputError(
            f"{path}: space-{space} is not MNI; the SMN atlas is in MNI space. Use "
            "fMRIPrep's --output-spaces MNI152NLin2009cAsym output."
        )
    try:
        img = nib.load(path)
    except (OSError, EOFError, ValueError, ImageFileError, zlib.error) as err:
        raise FmriInputError(f"{path}: not a readable NIfTI ({err}).") from err
    if img.ndim != 4:
        raise FmriInputError(
            f"{path}: a {img.ndim}D image of shape {img.shape}; resting-state BOLD is "
            "4D (x, y, z, time). Give the preprocessed BOLD series, not a mean or "
            "reference image."
        )
    n_vols = img.shape[3]
    meta = _sidecar(path)
    tr = meta.get("RepetitionTime")
    if tr is None:
        zooms, unit = img.header.get_zooms(), img.header.get_xyzt_units()[1]
        if unit in ("sec", "msec") and zooms[3] > 0:
            tr = zooms[3] / (1000 if unit == "msec" else 1)
        else:
            raise FmriInputError(
                f"{path}: repetition time missing (no RepetitionTime in its JSON "
                "sidecar, no time unit in the header). Add the sidecar fMRIPrep wrote "
                "or set RepetitionTime (seconds) in it."
            )
    atlas = smn_atlas()
    labels = resample_to_img(
        atlas.labels_img,
        nib.Nifti1Image(np.zeros(img.shape[:3], np.int8), img.affine),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    atlas_mm3 = atlas.voxel_counts()
    have = np.bincount(np.asarray(labels.dataobj, int).ravel(), minlength=11)
    vox_mm3 = float(abs(np.linalg.det(img.affine[:3, :3])))
    for region in _SMN:
        covered = have[SMN_REGIONS[region]] * vox_mm3 / (atlas_mm3[region] * 8.0)
        if covered < 0.5:
            raise FmriInputError(
                f"{path}: only {covered:.0%} of {region} falls inside the image "
                f"(grid {img.shape[:3]}, affine origin {img.affine[:3, 3].round(1)}); "
                "it is not on an MNI grid. Give the space-MNI152* output of fMRIPrep."
            )
    confounds_path = path.with_name(
        _source(path.name) + "_desc-confounds_timeseries.tsv"
    )
    notes: list[str] = []
    fd, confounds = None, None
    if confounds_path.exists():
        table = _read_table(confounds_path)
        fd = _fd(confounds_path)
        have_motion = [c for c in _MOTION if c in table.columns]
        if have_motion:
            confounds = table[have_motion].fillna(0.0).to_numpy(float)
        if len(have_motion) < len(_MOTION):
            notes.append(
                f"{confounds_path.name}: motion columns "
                f"{sorted(set(_MOTION) - set(have_motion))} absent, not regressed out"
            )
        if len(table) != n_vols:
            raise FmriInputError(
                f"{confounds_path}: {len(table)} rows for {n_vols} volumes in "
                f"{path.name}. Use the confounds file of the same fMRIPrep run."
            )
    else:
        notes.append(f"no {confounds_path.name}: no motion regression or censoring")
    kept = (
        np.flatnonzero(fd <= FD_THRESHOLD_MM) if fd is not None else np.arange(n_vols)
    )
    if len(kept) < MIN_VOLUMES:
        raise FmriInputError(
            f"{path}: {len(kept)} of {n_vols} volumes kept (FD <= {FD_THRESHOLD_MM} mm)"
            f"; at least {MIN_VOLUMES} are needed for stable correlations. Exclude "
            "this visit or acquire a longer run."
        )
    try:  # read once, as float32, here where a truncated file can be named
        data = np.asarray(img.dataobj, dtype=np.float32)
    except (OSError, EOFError, ValueError, zlib.error) as err:
        raise FmriInputError(
            f"{path}: image data truncated or corrupt ({err}). Copy the file again "
            "from the fMRIPrep output."
        ) from err
    img = nib.Nifti1Image(data, img.affine, img.header)
    return BoldRun(path, img, labels, float(tr), confounds, kept, fd, tuple(notes))


def reduce_bold(img, labels, tr: float, confounds, kept: np.ndarray) -> pd.DataFrame:
    """Region mean signals of a 4D image, cleaned as ``NiftiLabelsMasker`` cleans
    them (nilearn's ``signal.clean``: detrend, confound regression, censoring).

    Equal to ``NiftiLabelsMasker(labels, detrend=True, standardize=None)
    .fit_transform(img, confounds=..., sample_mask=kept)`` (a test checks it), but
    the means are taken over the labelled voxels only instead of one pass over the
    whole volume per time point, and the file is read once, as float32. On 8
    runs (experiments/bench_extract.py) the whole BOLD path ran at 1.10x the
    throughput of loading the files with nibabel; through the masker it was 0.50x.
    """
    from nilearn.signal import clean

    data = np.asarray(img.dataobj, dtype=np.float32)
    values = np.asarray(labels.dataobj).astype(int)
    present = [r for r, v in SMN_REGIONS.items() if (values == v).any()]
    raw = np.stack(
        [
            data[values == SMN_REGIONS[r]].mean(axis=0, dtype=np.float64)
            for r in present
        ],
        axis=1,
    )
    cleaned = clean(
        raw,
        detrend=True,
        standardize=None,
        confounds=confounds,
        sample_mask=kept,
        t_r=tr,
    )
    return pd.DataFrame(cleaned, columns=present)


def _fisher_z(r: np.ndarray) -> np.ndarray:
    return np.arctanh(np.clip(r, -0.999, 0.999))


def _pair_mean(z: pd.DataFrame, pairs: list[tuple[str, str]]) -> float:
    values = [z.loc[a, b] for a, b in pairs if a in z.index and b in z.index]
    return float(np.nanmean(values)) if values else np.nan


def _falff(signal: np.ndarray, times: np.ndarray) -> float:
    from scipy.signal import lombscargle

    span = times[-1] - times[0] + np.median(np.diff(times))
    nyquist = 0.5 / np.median(np.diff(times))
    freqs = np.arange(1, int(span * nyquist) + 1) / span
    y = signal - np.polyval(np.polyfit(times, signal, 1), times)
    amp = np.sqrt(lombscargle(times, y, 2 * np.pi * freqs, normalize=False))
    low = (freqs >= LOW_BAND_HZ[0]) & (freqs <= LOW_BAND_HZ[1])
    return float(amp[low].sum() / amp.sum()) if amp.sum() > 0 else np.nan


def fmri_features(
    cohort_dir: Path, pid: str, session: str, mapping: pd.DataFrame | None = None
) -> tuple[dict[str, float], Path | None]:
    """SMN connectivity, fALFF and QC of one subject-visit.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    pid, session : str
        The visit's ``participant_id`` and ``session``.
    mapping : pandas.DataFrame, optional
        :func:`read_region_mapping` of the cohort.

    Returns
    -------
    features : dict
        The columns listed in the module docstring; empty without an input.
    source : Path or None
        The file the values came from.

    Raises
    ------
    FmriInputError
        A 3D image, a non-MNI grid, too few volumes, no repetition time for BOLD,
        non-numeric cells, an atlas without M1/SMA/S1 columns, mismatched files.

    Warns
    -----
    UserWarning
        For each value that could not be computed and each file passed over.
    """
    found = find_fmri(cohort_dir, pid, session, mapping)
    if found is None:
        return {}, None
    signals, times, qc, notes = region_timeseries(found, mapping)
    notes = [*found.notes, *notes]
    if found.relmat is not None and signals.empty:
        z = _relmat_z(found.relmat, found.atlas, mapping)
        notes.append(
            f"{found.path.name}: a correlation matrix only, fALFF not computed"
        )
    else:
        if len(signals) < MIN_VOLUMES:
            raise FmriInputError(
                f"{found.path}: {len(signals)} kept volumes; at least {MIN_VOLUMES} "
                "are needed for stable correlations. Exclude this visit or use a "
                "longer run."
            )
        z = pd.DataFrame(
            _fisher_z(np.corrcoef(signals.to_numpy(float).T)),
            index=signals.columns,
            columns=signals.columns,
        )
    missing = [r for r in _SMN if r not in z.index]
    if missing:
        notes.append(
            f"{found.path.name}: regions {missing} absent; features that need them "
            "are missing"
        )
    out = {
        "fmri_smn_within_z": _pair_mean(z, list(combinations(_SMN, 2))),
        "fmri_sma_m1_z": _pair_mean(
            z, [(s, m) for s in ("sma_l", "sma_r") for m in ("m1_l", "m1_r")]
        ),
        "fmri_m1_interhemispheric_z": _pair_mean(z, [("m1_l", "m1_r")]),
    }
    for region in ("sma", "m1"):
        sides = [f"{region}_l", f"{region}_r"]
        if times is None or signals.empty or not set(sides) <= set(signals.columns):
            out[f"fmri_falff_{region}"] = np.nan
        else:
            out[f"fmri_falff_{region}"] = float(
                np.mean([_falff(signals[s].to_numpy(float), times) for s in sides])
            )
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return {**out, **qc}, found.path


def _relmat_z(path: Path, atlas: str, mapping: pd.DataFrame | None) -> pd.DataFrame:
    """Region-pair mean Fisher z from a parcel correlation matrix."""
    table = _read_table(path)
    if "Node" in table.columns:
        table = table.set_index("Node")
    else:
        table.index = table.columns
    if table.shape[0] != table.shape[1] or list(table.index) != list(table.columns):
        raise FmriInputError(
            f"{path}: a {table.shape[0]} x {table.shape[1]} table whose rows and "
            "columns do not name the same regions; a relmat is square and "
            "symmetric. Use XCP-D's *_relmat.tsv unchanged."
        )
    regions = _regions_of(list(table.columns), atlas, mapping)
    z = _fisher_z(table.to_numpy(float))
    np.fill_diagonal(z, np.nan)
    z = pd.DataFrame(z, index=table.index, columns=table.columns)
    keys = list(regions)
    return pd.DataFrame(
        [
            [np.nanmean(z.loc[regions[a], regions[b]].to_numpy()) for b in keys]
            for a in keys
        ],
        index=keys,
        columns=keys,
    )
