"""Region statistics of diffusion, susceptibility and grey-matter maps over the atlas.

A map (FA, MD, AD, RD, QSM or a modulated GM segment) must already be in MNI152 2 mm
space, on the grid of :func:`features.imaging.atlas.load_atlas` (checked by
:mod:`features.imaging.map_checks`), or ``resample=True`` resamples it instead (with a
warning); ``check=True`` also checks its values there.

Each image is read once, as float32, and reduced in one pass: the atlas's labelled
voxels are flattened once per atlas, grouped by region and cached (also across
copies of the same atlas, e.g. in joblib workers), so a region sum is one
:func:`numpy.add.reduceat`.

Non-finite voxels (NaN, +-inf) are left out of a region's mean. Exact zeros are kept
in the mean (they are valid QSM values), but both count as missing in the QC
fraction, since a zero in an FA/MD map usually marks a voxel outside the subject's
brain mask. In a GM map a zero means "no grey matter", so only non-finite voxels count
as missing there.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import weakref
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd

from features.errors import ImageMismatchError
from features.imaging.atlas import Atlas
from features.imaging.map_checks import (
    RESAMPLE_FIX,
    check_brain_values,
    check_kind,
    grid_problem,
    load_map,
    map_source,
    shape_3d,
)

__all__ = [
    "CHECK_SAMPLE_SIZE",
    "region_means",
    "region_qc",
    "region_stats",
]

#: :func:`region_stats` checks values on every k-th brain voxel, k chosen to keep at
#: least this many (the checks are robust statistics; a full brain is ~235,000).
CHECK_SAMPLE_SIZE = 30_000


@dataclass(frozen=True)
class _FlatLabels:
    """Atlas labels and brain mask flattened (Fortran order) for fast reductions."""

    voxels: np.ndarray  # flat indices of labelled voxels, grouped by region position
    sizes: np.ndarray  # voxels per region position
    nonempty: np.ndarray  # region positions with at least one voxel
    starts: np.ndarray  # offset of each non-empty region's group in ``voxels``
    brain: np.ndarray  # flat indices of evenly spaced brain voxels (value checks)
    index: pd.Index  # region keys, the index of region_stats


_FLAT_LABELS: weakref.WeakKeyDictionary[Atlas, _FlatLabels] = (
    weakref.WeakKeyDictionary()
)

_FLAT_BY_CONTENT: dict[tuple[object, ...], _FlatLabels] = {}

_MAX_CACHED_ATLASES = 4


def region_stats(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    atlas: Atlas,
    *,
    kind: str,
    resample: bool = False,
    check: bool = False,
) -> pd.DataFrame:
    """Mean, size and missing fraction of a map in every atlas region.

    Parameters
    ----------
    img_or_path : str, path-like or nibabel image
        The map (NIfTI file or loaded image).
    atlas : Atlas
        From :func:`features.imaging.atlas.load_atlas`.
    kind : {"FA", "MD", "AD", "RD", "QSM", "GM"}
        Map kind, for messages and the value check.
    resample : bool, default False
        When the map is not on the atlas grid, resample it with continuous
        interpolation (out-of-field voxels become NaN) and warn, instead of raising.
    check : bool, default False
        Also run :func:`~features.imaging.map_checks.check_values` on the map's brain
        voxels (same read; on every k-th brain voxel, keeping at least
        :data:`CHECK_SAMPLE_SIZE`).

    Returns
    -------
    pandas.DataFrame
        Indexed by region key in atlas order, with columns ``mean`` (over finite
        voxels; NaN when there are none), ``n_voxels`` (region size) and
        ``missing_fraction`` (fraction of voxels that are non-finite or exactly 0;
        for ``kind="GM"`` only non-finite).

    Raises
    ------
    ImageMismatchError
        If the file is not a readable image, fails
        :func:`~features.imaging.map_checks.check_map` (without ``resample``, or when it
        is not 3D), or, with ``check``, fails
        :func:`~features.imaging.map_checks.check_values`.

    Warns
    -----
    UserWarning
        When the map is resampled, and when a region has no finite voxel.
    """
    return _region_stats(img_or_path, atlas, kind=kind, resample=resample, check=check)


def _region_stats(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    atlas: Atlas,
    *,
    kind: str,
    resample: bool,
    check: bool,
) -> pd.DataFrame:
    """Worker of :func:`region_stats`; warnings point at the public caller's caller."""
    path = map_source(img_or_path)
    check_kind(kind)
    img = load_map(img_or_path, path=path, kind=kind)
    shape = shape_3d(img, path=path, kind=kind)
    problem = grid_problem(img, atlas)
    if problem and not resample:
        raise ImageMismatchError(f"{path}: {kind} map {problem}. {RESAMPLE_FIX}")
    data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    if problem:
        # The atlas goes to the map's grid (nearest neighbour, once per grid and
        # cached), not the map to the atlas's: no interpolation of the values, and
        # a cohort of maps on one grid pays for one resampling.
        flat = _flat_labels_on(atlas, shape, img.affine)
        voxel_mm3 = round(abs(float(np.linalg.det(img.affine[:3, :3]))), 6)
        warnings.warn(
            f"{path}: {kind} map {problem}; averaged it over the atlas resampled to "
            "the map's grid (nearest neighbour). Resample upstream to silence this.",
            stacklevel=3,
        )
    else:
        flat = _flat_labels(atlas)
        voxel_mm3 = round(abs(float(np.linalg.det(atlas.affine[:3, :3]))), 6)
    vector = data.ravel(order="F")  # a view: nibabel returns Fortran-ordered arrays
    if check:
        check_brain_values(vector[flat.brain], kind=kind, path=path)
    values = vector[flat.voxels]
    finite = np.isfinite(values)
    missing = ~finite if kind == "GM" else ~finite | (values == 0)
    sums = _region_sums(np.where(finite, values, 0), flat)
    n_finite = _region_sums(finite, flat)
    n_missing = _region_sums(missing, flat)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(n_finite > 0, sums / n_finite, np.nan)
        # A region with no voxel on the map's grid (outside its field of view) is
        # wholly missing.
        missing_fraction = np.where(flat.sizes > 0, n_missing / flat.sizes, 1.0)
    stats = pd.DataFrame(
        {
            "mean": means,
            "n_voxels": flat.sizes,
            "missing_fraction": missing_fraction,
            "voxel_mm3": voxel_mm3,
        },
        index=flat.index,
    )
    if (n_finite == 0).any():
        empty = stats.index[n_finite == 0].tolist()
        warnings.warn(
            f"{path}: {kind} map has no finite voxel in regions {empty}; their means "
            "are NaN. Check the map's brain mask and field of view.",
            stacklevel=3,
        )
    return stats


def _region_sums(values: np.ndarray, flat: _FlatLabels) -> np.ndarray:
    """Float64 sum of per-voxel ``values`` (in ``flat.voxels`` order) per region."""
    sums = np.zeros(len(flat.sizes))
    if len(values):
        sums[flat.nonempty] = np.add.reduceat(values, flat.starts, dtype=np.float64)
    return sums


def region_means(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    atlas: Atlas,
    *,
    kind: str,
    resample: bool = False,
    check: bool = False,
) -> pd.Series:
    """Mean of a map over every atlas region, ignoring non-finite voxels.

    Parameters and errors are those of :func:`region_stats`.

    Returns
    -------
    pandas.Series
        Float means indexed by region key, named ``kind``.

    Examples
    --------
    >>> from features.imaging.atlas import load_atlas
    >>> atlas = load_atlas()  # doctest: +SKIP
    >>> means = region_means("sub-01_FA.nii.gz", atlas, kind="FA")  # doctest: +SKIP
    >>> means["cst_l"]  # doctest: +SKIP
    0.52
    """
    stats = _region_stats(img_or_path, atlas, kind=kind, resample=resample, check=check)
    return stats["mean"].rename(kind)


def region_qc(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    atlas: Atlas,
    *,
    kind: str,
    resample: bool = False,
    check: bool = False,
) -> pd.Series:
    """Fraction of each region's voxels that are non-finite or exactly zero.

    For ``kind="GM"`` only non-finite voxels count (zero grey matter is a value).

    Parameters and errors are those of :func:`region_stats`.

    Returns
    -------
    pandas.Series
        Fractions in ``[0, 1]`` indexed by region key, named ``kind``; 0 is full
        coverage.
    """
    stats = _region_stats(img_or_path, atlas, kind=kind, resample=resample, check=check)
    return stats["missing_fraction"].rename(kind)


def _flat_labels_on(
    atlas: Atlas, shape: tuple[int, ...], affine: np.ndarray
) -> _FlatLabels:
    """:func:`_flat_labels` of the atlas resampled (nearest) onto another grid."""
    from nilearn.image import resample_img

    base = _flat_labels(atlas)  # ensures the atlas's own entry and content key
    key = (id(base), tuple(shape), tuple(np.round(affine, 4).ravel()))
    cached = _FLAT_BY_CONTENT.get(key)
    if cached is None:

        def onto(img: nib.Nifti1Image) -> np.ndarray:
            out = resample_img(
                img,
                target_affine=affine,
                target_shape=shape,
                interpolation="nearest",
                force_resample=True,
                copy_header=True,
            )
            return np.asarray(out.dataobj)

        cached = _flatten(
            onto(atlas.labels_img), onto(atlas.brain_mask_img), dict(atlas.regions)
        )
        while len(_FLAT_BY_CONTENT) >= _MAX_CACHED_ATLASES:
            del _FLAT_BY_CONTENT[next(iter(_FLAT_BY_CONTENT))]
        _FLAT_BY_CONTENT[key] = cached
    return cached


def _flat_labels(atlas: Atlas) -> _FlatLabels:
    """Flattened labelled voxels, region positions and brain voxels of an atlas.

    Cached per atlas object and, through a digest of the label and mask images, per
    atlas content, so that the copies joblib unpickles in its workers share one entry.
    """
    cached = _FLAT_LABELS.get(atlas)
    if cached is None:
        labels = np.asarray(atlas.labels_img.dataobj)
        brain = np.asarray(atlas.brain_mask_img.dataobj)
        key = (tuple(atlas.regions.items()), _digest(labels), _digest(brain))
        cached = _FLAT_BY_CONTENT.get(key)
        if cached is None:
            cached = _flatten(labels, brain, atlas.regions)
            while len(_FLAT_BY_CONTENT) >= _MAX_CACHED_ATLASES:
                del _FLAT_BY_CONTENT[next(iter(_FLAT_BY_CONTENT))]
            _FLAT_BY_CONTENT[key] = cached
        _FLAT_LABELS[atlas] = cached
    return cached


def _digest(array: np.ndarray) -> tuple[object, ...]:
    """Shape, dtype and a hash of the values of an array."""
    data = np.asfortranarray(array)
    hashed = hashlib.blake2b(data.T.data, digest_size=16).hexdigest()
    return data.shape, data.dtype.str, hashed


def _flatten(
    labels: np.ndarray, brain: np.ndarray, regions: dict[str, int]
) -> _FlatLabels:
    """Fortran-order flat indices of the labelled and brain voxels."""
    flat = labels.ravel(order="F").astype(np.int64)
    values = np.fromiter(regions.values(), dtype=np.int64)
    lookup = np.full(max(flat.max(), values.max()) + 1, -1, dtype=np.int64)
    lookup[values] = np.arange(len(values))
    voxels = np.flatnonzero(lookup[np.clip(flat, 0, None)] >= 0)
    codes = lookup[flat[voxels]]
    voxels = voxels[np.argsort(codes, kind="stable")]  # grouped by region
    sizes = np.bincount(codes, minlength=len(values))
    in_brain = np.flatnonzero(brain.ravel(order="F") > 0)
    step = max(1, len(in_brain) // CHECK_SAMPLE_SIZE)
    return _FlatLabels(
        voxels=voxels,
        sizes=sizes,
        nonempty=np.flatnonzero(sizes > 0),
        starts=(np.cumsum(sizes) - sizes)[sizes > 0],
        brain=in_brain[::step],
        index=pd.Index(list(regions), name="region"),
    )
