"""fMRIPrep preprocessed BOLD: loading a 4D run and reducing it to region time
series on the SMN atlas (nilearn ``NiftiLabelsMasker``'s result, computed faster),
detrended, motion regressed out, high-motion volumes censored.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import FmriInputError
from features.fmri.inputs import (
    FD_THRESHOLD_MM,
    MIN_VOLUMES,
    SMN_ORDER,
    entity,
    framewise_displacement,
    qc_columns,
    read_tsv,
    sidecar,
    source_name,
)
from features.fmri.smn_atlas import SMN_REGIONS

__all__ = ["BoldRun", "bold_timeseries", "load_bold", "reduce_bold"]

_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


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
        return qc_columns(len(self.kept), self.fd, self.img.shape[3])


def bold_timeseries(path: Path):
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

    from features.fmri.smn_atlas import smn_atlas

    space = entity(path.name, "space")
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
    meta = sidecar(path)
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
    for region in SMN_ORDER:
        covered = have[SMN_REGIONS[region]] * vox_mm3 / (atlas_mm3[region] * 8.0)
        if covered < 0.5:
            raise FmriInputError(
                f"{path}: only {covered:.0%} of {region} falls inside the image "
                f"(grid {img.shape[:3]}, affine origin {img.affine[:3, 3].round(1)}); "
                "it is not on an MNI grid. Give the space-MNI152* output of fMRIPrep."
            )
    confounds_path = path.with_name(
        source_name(path.name) + "_desc-confounds_timeseries.tsv"
    )
    notes: list[str] = []
    fd, confounds = None, None
    if confounds_path.exists():
        table = read_tsv(confounds_path)
        fd = framewise_displacement(confounds_path)
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
