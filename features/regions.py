"""Region means of diffusion and susceptibility maps over the project atlas.

A map (FA, MD, AD, RD or QSM) must already be in MNI152 2 mm space, on the grid of
:func:`features.atlas.load_atlas`; :func:`check_map` says why one is not, and
``resample=True`` resamples it instead (with a warning). Means are taken in one
pass over the image with :func:`numpy.bincount` on the atlas labels, which are
flattened once per atlas and cached.

Non-finite voxels (NaN, +-inf) are left out of a region's mean. Exact zeros are kept
in the mean (they are valid QSM values), but both count as missing in the QC
fraction, since a zero in an FA/MD map usually marks a voxel outside the subject's
brain mask.
"""

from __future__ import annotations

import os
import warnings
import weakref
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.filebasedimages import ImageFileError

from features.atlas import Atlas
from features.errors import ImageMismatchError

__all__ = [
    "AFFINE_TOLERANCE_MM",
    "KINDS",
    "check_map",
    "region_means",
    "region_qc",
    "region_stats",
]

#: Map kinds this module knows; used in messages and as the Series name.
KINDS: tuple[str, ...] = ("FA", "MD", "AD", "RD", "QSM")

#: Largest allowed difference between a map's affine and the atlas's, in mm.
AFFINE_TOLERANCE_MM = 1e-3

_RESAMPLE_FIX = (
    "Resample the map to MNI152 2 mm (e.g. with nilearn.image.resample_to_img onto "
    "atlas.template_img) or pass resample=True."
)


@dataclass(frozen=True)
class _FlatLabels:
    """Atlas labels flattened for :func:`numpy.bincount`."""

    voxels: np.ndarray  # flat indices of labelled voxels
    codes: np.ndarray  # region position (0..n-1) of each of those voxels
    sizes: np.ndarray  # voxels per region position


_FLAT_LABELS: weakref.WeakKeyDictionary[Atlas, _FlatLabels] = (
    weakref.WeakKeyDictionary()
)


def check_map(
    img: nib.spatialimages.SpatialImage, atlas: Atlas, *, path: str, kind: str
) -> None:
    """Check that a map is one 3D volume on the atlas grid.

    A 4D image whose trailing dimensions are 1 counts as 3D.

    Parameters
    ----------
    img : nibabel image
        The loaded map.
    atlas : Atlas
        From :func:`features.atlas.load_atlas`.
    path : str
        File the map came from, for messages.
    kind : {"FA", "MD", "AD", "RD", "QSM"}
        Map kind, for messages.

    Raises
    ------
    ValueError
        If ``kind`` is unknown.
    ImageMismatchError
        If the map is not 3D, or its shape or affine (beyond
        :data:`AFFINE_TOLERANCE_MM`) differs from the atlas's.

    Examples
    --------
    >>> check_map(nib.load("sub-01_FA.nii.gz"), atlas, path="sub-01_FA.nii.gz",
    ...           kind="FA")  # doctest: +SKIP
    """
    _check_kind(kind)
    _shape_3d(img, path=path, kind=kind)
    problem = _grid_problem(img, atlas)
    if problem:
        raise ImageMismatchError(f"{path}: {kind} map {problem}. {_RESAMPLE_FIX}")


def region_stats(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    atlas: Atlas,
    *,
    kind: str,
    resample: bool = False,
) -> pd.DataFrame:
    """Mean, size and missing fraction of a map in every atlas region.

    Parameters
    ----------
    img_or_path : str, path-like or nibabel image
        The map (NIfTI file or loaded image).
    atlas : Atlas
        From :func:`features.atlas.load_atlas`.
    kind : {"FA", "MD", "AD", "RD", "QSM"}
        Map kind, for messages.
    resample : bool, default False
        When the map is not on the atlas grid, resample it with continuous
        interpolation (out-of-field voxels become NaN) and warn, instead of raising.

    Returns
    -------
    pandas.DataFrame
        Indexed by region key in atlas order, with columns ``mean`` (over finite
        voxels; NaN when there are none), ``n_voxels`` (region size) and
        ``missing_fraction`` (fraction of voxels that are non-finite or exactly 0).

    Raises
    ------
    ImageMismatchError
        If the file is not a readable image, or fails :func:`check_map` (without
        ``resample``, or when it is not 3D).

    Warns
    -----
    UserWarning
        When the map is resampled, and when a region has no finite voxel.
    """
    return _region_stats(img_or_path, atlas, kind=kind, resample=resample)


def _region_stats(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    atlas: Atlas,
    *,
    kind: str,
    resample: bool,
) -> pd.DataFrame:
    """Worker of :func:`region_stats`; warnings point at the public caller's caller."""
    path = _describe(img_or_path)
    _check_kind(kind)
    img = _load(img_or_path, path=path, kind=kind)
    shape = _shape_3d(img, path=path, kind=kind)
    problem = _grid_problem(img, atlas)
    if problem and not resample:
        raise ImageMismatchError(f"{path}: {kind} map {problem}. {_RESAMPLE_FIX}")
    data = np.asarray(img.dataobj).reshape(shape)
    if problem:
        data = _resample(data, img.affine, atlas)
        warnings.warn(
            f"{path}: {kind} map {problem}; resampled it to the atlas grid with "
            "continuous interpolation. Resample upstream to silence this.",
            stacklevel=3,
        )

    flat = _flat_labels(atlas)
    values = data.reshape(-1)[flat.voxels].astype(np.float64)
    finite = np.isfinite(values)
    n = len(flat.sizes)
    sums = np.bincount(flat.codes, weights=np.where(finite, values, 0.0), minlength=n)
    n_finite = np.bincount(flat.codes, weights=finite, minlength=n)
    n_missing = np.bincount(flat.codes, weights=~finite | (values == 0), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(n_finite > 0, sums / n_finite, np.nan)
        missing = n_missing / flat.sizes
    stats = pd.DataFrame(
        {"mean": means, "n_voxels": flat.sizes, "missing_fraction": missing},
        index=pd.Index(list(atlas.regions), name="region"),
    )
    empty = stats.index[n_finite == 0].tolist()
    if empty:
        warnings.warn(
            f"{path}: {kind} map has no finite voxel in regions {empty}; their means "
            "are NaN. Check the map's brain mask and field of view.",
            stacklevel=3,
        )
    return stats


def region_means(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    atlas: Atlas,
    *,
    kind: str,
    resample: bool = False,
) -> pd.Series:
    """Mean of a map over every atlas region, ignoring non-finite voxels.

    Parameters and errors are those of :func:`region_stats`.

    Returns
    -------
    pandas.Series
        Float means indexed by region key, named ``kind``.

    Examples
    --------
    >>> from features.atlas import load_atlas
    >>> atlas = load_atlas()  # doctest: +SKIP
    >>> means = region_means("sub-01_FA.nii.gz", atlas, kind="FA")  # doctest: +SKIP
    >>> means["cst_l"]  # doctest: +SKIP
    0.52
    """
    stats = _region_stats(img_or_path, atlas, kind=kind, resample=resample)
    return stats["mean"].rename(kind)


def region_qc(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    atlas: Atlas,
    *,
    kind: str,
    resample: bool = False,
) -> pd.Series:
    """Fraction of each region's voxels that are non-finite or exactly zero.

    Parameters and errors are those of :func:`region_stats`.

    Returns
    -------
    pandas.Series
        Fractions in ``[0, 1]`` indexed by region key, named ``kind``; 0 is full
        coverage.
    """
    stats = _region_stats(img_or_path, atlas, kind=kind, resample=resample)
    return stats["missing_fraction"].rename(kind)


def _check_kind(kind: str) -> None:
    """Raise if ``kind`` is not a known map kind."""
    if kind not in KINDS:
        raise ValueError(
            f"kind = {kind!r} is not a known map kind; use one of {KINDS}."
        )


def _describe(img_or_path: object) -> str:
    """The file name to quote in messages."""
    if isinstance(img_or_path, str | os.PathLike):
        return os.fspath(img_or_path)
    name = getattr(img_or_path, "get_filename", lambda: None)()
    return name or "<in-memory image>"


def _load(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    *,
    path: str,
    kind: str,
) -> nib.spatialimages.SpatialImage:
    """Load a path with nibabel; pass an image through."""
    if not isinstance(img_or_path, str | os.PathLike):
        return img_or_path
    try:
        return nib.load(img_or_path)
    except ImageFileError as err:
        raise ImageMismatchError(
            f"{path}: cannot read the {kind} map as a NIfTI image ({err}). Pass a "
            ".nii or .nii.gz file."
        ) from err


def _shape_3d(
    img: nib.spatialimages.SpatialImage, *, path: str, kind: str
) -> tuple[int, ...]:
    """The map's shape without trailing singleton dimensions; raise if not 3D."""
    shape = tuple(int(n) for n in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise ImageMismatchError(
            f"{path}: {kind} map has shape {shape}; expected one 3D volume. Pass a "
            "single volume (e.g. nilearn.image.index_img(img, 0)) or the mean map."
        )
    return shape


def _grid_problem(img: nib.spatialimages.SpatialImage, atlas: Atlas) -> str:
    """Describe how the map's grid differs from the atlas's, or return ''."""
    shape = tuple(int(n) for n in img.shape[:3])
    if shape != atlas.shape:
        return (
            f"has shape {shape} and affine {_fmt(img.affine)}, but the atlas "
            f"(MNI152 2 mm) has shape {atlas.shape} and affine {_fmt(atlas.affine)}"
        )
    if not np.allclose(img.affine, atlas.affine, rtol=0, atol=AFFINE_TOLERANCE_MM):
        return (
            f"has affine {_fmt(img.affine)}, but the atlas (MNI152 2 mm) has affine "
            f"{_fmt(atlas.affine)} (tolerance {AFFINE_TOLERANCE_MM:g} mm; shape "
            f"{atlas.shape} matches)"
        )
    return ""


def _fmt(affine: np.ndarray) -> str:
    """Affine as a compact one-line list of its top three rows."""
    return str(np.round(np.asarray(affine)[:3], 3).tolist())


def _resample(data: np.ndarray, affine: np.ndarray, atlas: Atlas) -> np.ndarray:
    """Resample a 3D array onto the atlas grid; out-of-field voxels are NaN."""
    from nilearn.image import resample_to_img

    img = nib.Nifti1Image(data.astype(np.float32), affine)
    out = resample_to_img(
        img,
        atlas.labels_img,
        interpolation="continuous",
        fill_value=np.nan,
        force_resample=True,
        copy_header=True,
    )
    return np.asarray(out.dataobj)


def _flat_labels(atlas: Atlas) -> _FlatLabels:
    """Flattened labelled voxels and their region positions, cached per atlas."""
    cached = _FLAT_LABELS.get(atlas)
    if cached is None:
        labels = np.asarray(atlas.labels_img.dataobj).reshape(-1).astype(np.int64)
        values = np.fromiter(atlas.regions.values(), dtype=np.int64)
        lookup = np.full(max(labels.max(), values.max()) + 1, -1, dtype=np.int64)
        lookup[values] = np.arange(len(values))
        voxels = np.flatnonzero(lookup[np.clip(labels, 0, None)] >= 0)
        codes = lookup[labels[voxels]]
        sizes = np.bincount(codes, minlength=len(values))
        cached = _FlatLabels(voxels=voxels, codes=codes, sizes=sizes)
        _FLAT_LABELS[atlas] = cached
    return cached
