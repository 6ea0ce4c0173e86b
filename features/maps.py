"""Atlas-region features from NIfTI maps in MNI space (diffusion and QSM)."""

from __future__ import annotations

from pathlib import Path

from features.atlas import Atlas
from features.regions import region_means

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


def dti_features(paths: dict[str, Path], atlas: Atlas) -> dict[str, float]:
    """Tract means of FA and of MD/AD/RD in 10^-3 mm^2/s (maps are in mm^2/s)."""
    out: dict[str, float] = {}
    for kind, path in paths.items():
        if not path.exists():
            continue
        means = region_means(path, atlas, kind=kind)
        scale = 1.0 if kind == "FA" else 1e3
        for region in DTI_REGIONS:
            out[f"dti_{region}_{kind.lower()}"] = float(means[region]) * scale
    return out


def qsm_features(path: Path, atlas: Atlas) -> dict[str, float]:
    """Deep grey-matter and motor-cortex susceptibility (ppb)."""
    if not path.exists():
        return {}
    means = region_means(path, atlas, kind="QSM")
    return {f"qsm_{region}": float(means[region]) for region in QSM_REGIONS}
