"""Atlas-region features from NIfTI maps in MNI space: diffusion, QSM, grey matter.

Each map is read once (:func:`features.imaging.region_stats.region_stats` with
``check=True``):
its values are checked for the map kind (units, range, empty map), and each region
gives its mean and the fraction of its voxels that are missing. Besides the value
columns, every reader returns one QC column per map and region,
``qc_<modality>[_<map>]_<region>_missing``, in ``[0, 1]``. A region with more than
:data:`MAX_MISSING_FRACTION` of its voxels missing is too poorly covered to
summarise: its value is NaN, with a warning naming the file and the region.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from features.imaging.atlas import Atlas
from features.imaging.region_stats import region_stats

__all__ = [
    "DTI_MAPS",
    "DTI_REGIONS",
    "GM_REGIONS",
    "MAX_MISSING_FRACTION",
    "QSM_REGIONS",
    "dti_features",
    "gm_features",
    "qsm_features",
]

DTI_MAPS = ("FA", "MD", "AD", "RD")
DTI_REGIONS = (
    "cst_l",
    "cst_r",
    "optic_radiation_l",
    "optic_radiation_r",
    "callosal_body",
)
QSM_REGIONS = tuple(
    f"{r}_{s}"
    for r in (
        "substantia_nigra",
        "thalamus",
        "putamen",
        "pallidum",
        "caudate",
        "precentral",
    )
    for s in ("l", "r")
)
GM_REGIONS = tuple(
    f"{r}_{s}"
    for r in ("precentral", "thalamus", "caudate", "putamen", "pallidum")
    for s in ("l", "r")
)

#: A region with a larger fraction of missing voxels gets NaN as its value.
MAX_MISSING_FRACTION = 0.5


def dti_features(
    paths: dict[str, Path], atlas: Atlas, *, resample: bool = False
) -> dict[str, float]:
    """Tract means of FA and of MD/AD/RD in 10^-3 mm^2/s (maps are in mm^2/s).

    Parameters
    ----------
    paths : dict of str to Path
        Map kind (``"FA"``, ``"MD"``, ``"AD"``, ``"RD"``) -> NIfTI file; files that
        do not exist are skipped.
    atlas : Atlas
        From :func:`features.imaging.atlas.load_atlas`.
    resample : bool, default False
        Resample maps that are not on the atlas grid (with a warning) instead of
        raising.

    Returns
    -------
    dict of str to float
        ``dti_<region>_<map>`` (``map`` lower case; FA unitless, MD/AD/RD in
        10^-3 mm^2/s) and ``qc_dti_<map>_<region>_missing`` for every region of
        :data:`DTI_REGIONS`; empty when no file exists.

    Raises
    ------
    ImageMismatchError
        If a map is unreadable, not on the atlas grid (without ``resample``), or its
        values are implausible (see :func:`features.imaging.region_stats.check_values`).

    Warns
    -----
    UserWarning
        When a map is resampled or a region is too poorly covered.

    Examples
    --------
    >>> from features.cohort.participants import CohortPaths
    >>> paths = CohortPaths(Path("cohort"), "sub-01")  # doctest: +SKIP
    >>> dti_features({m: paths.dti_map(m) for m in DTI_MAPS}, atlas)  # doctest: +SKIP
    {'dti_cst_l_fa': 0.55, ..., 'qc_dti_fa_cst_l_missing': 0.0, ...}
    """
    out: dict[str, float] = {}
    for kind, path in paths.items():
        if not path.exists():
            continue
        stats = region_stats(path, atlas, kind=kind, resample=resample, check=True)
        means, missing = _covered(stats, DTI_REGIONS, path=path, kind=kind)
        scale = 1.0 if kind == "FA" else 1e3
        name = kind.lower()
        for region in DTI_REGIONS:
            out[f"dti_{region}_{name}"] = means[region] * scale
        for region in DTI_REGIONS:
            out[f"qc_dti_{name}_{region}_missing"] = missing[region]
    return out


def qsm_features(
    path: Path, atlas: Atlas, *, resample: bool = False
) -> dict[str, float]:
    """Deep grey-matter and motor-cortex susceptibility (ppb).

    Parameters are those of :func:`dti_features`, with one QSM file ``path``.

    Returns
    -------
    dict of str to float
        ``qsm_<region>`` (ppb) and ``qc_qsm_<region>_missing`` for every region of
        :data:`QSM_REGIONS`; empty when the file does not exist.
    """
    if not path.exists():
        return {}
    stats = region_stats(path, atlas, kind="QSM", resample=resample, check=True)
    means, missing = _covered(stats, QSM_REGIONS, path=path, kind="QSM")
    out = {f"qsm_{region}": means[region] for region in QSM_REGIONS}
    for region in QSM_REGIONS:
        out[f"qc_qsm_{region}_missing"] = missing[region]
    return out


def gm_features(
    path: Path, atlas: Atlas, *, resample: bool = False
) -> dict[str, float]:
    """Grey-matter volumes (mL) from a modulated GM map (VBM), an optional input.

    The volume of a region is the sum of the modulated GM values (GM fraction times
    the Jacobian of the warp to MNI) over its voxels times the voxel volume of the
    grid the map was averaged on (8 mm^3 on the atlas grid), / 1000. NaN voxels
    are filled with the region's mean, so a partly covered region is not
    under-counted.

    Parameters are those of :func:`dti_features`, with one file ``path``, e.g.
    :attr:`features.cohort.participants.CohortPaths.gm_map`.

    Returns
    -------
    dict of str to float
        ``vbm_<region>_ml`` and ``qc_vbm_<region>_missing`` (fraction of NaN voxels)
        for every region of :data:`GM_REGIONS`; empty when the file does not exist.
    """
    if not path.exists():
        return {}
    stats = region_stats(path, atlas, kind="GM", resample=resample, check=True)
    means, missing = _covered(stats, GM_REGIONS, path=path, kind="GM")
    sizes = stats["n_voxels"].to_dict()
    voxel_ml = float(stats["voxel_mm3"].iloc[0]) / 1000.0  # the grid averaged on
    out = {
        f"vbm_{region}_ml": means[region] * sizes[region] * voxel_ml
        for region in GM_REGIONS
    }
    for region in GM_REGIONS:
        out[f"qc_vbm_{region}_missing"] = missing[region]
    return out


def _covered(
    stats: pd.DataFrame, regions: tuple[str, ...], *, path: Path, kind: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Region means (NaN where too much is missing, with a warning) and missing
    fractions, as dicts keyed by region."""
    all_means, all_missing = (
        stats["mean"].to_dict(),
        stats["missing_fraction"].to_dict(),
    )
    means = {key: float(all_means[key]) for key in regions}
    missing = {key: float(all_missing[key]) for key in regions}
    poor = {
        key: share for key, share in missing.items() if share > MAX_MISSING_FRACTION
    }
    if poor:
        listed = ", ".join(
            f"{key} ({share:.0%} missing)" for key, share in poor.items()
        )
        what = "NaN" if kind == "GM" else "NaN or zero"
        warnings.warn(
            f"{path}: {kind} map covers too little of regions {listed}; more than "
            f"{MAX_MISSING_FRACTION:.0%} of their voxels are {what}, so their values "
            "are set to NaN. Check the map's brain mask and field of view.",
            stacklevel=3,
        )
        means.update(dict.fromkeys(poor, float("nan")))
    return means, missing
