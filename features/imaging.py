"""Per-subject features from the pipeline outputs under ``derivatives/``.

One function per pipeline; each returns a flat ``{feature: value}`` dict for one
subject and raises (with the file named) when a file exists but cannot be used. A
file that does not exist means the modality was not acquired: the function returns
an empty dict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from features.atlas import Atlas
from features.freesurfer import read_aparc_stats, read_aseg_stats
from features.lcmodel import apply_crlb_threshold, read_lcmodel_table
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
ASEG_STRUCTURES = ("Thalamus", "Caudate", "Putamen", "Pallidum")
MRS_METABOLITES = {
    "NAA": "mrs_naa",
    "Glu": "mrs_glu",
    "GABA": "mrs_gaba",
    "Cr+PCr": "mrs_cr",
}
MAX_CRLB_PCT = 20.0  # LCModel %SD above which a fit is rejected (lit §3)


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


def mrs_features(table: Path, max_crlb_pct: float = MAX_CRLB_PCT) -> dict[str, float]:
    """SMA concentrations with CRLB quality control, their ratios, FWHM and S/N."""
    if not table.exists():
        return {}
    result = read_lcmodel_table(table)
    conc, rejected = apply_crlb_threshold(result, max_sd_pct=max_crlb_pct)
    out: dict[str, float] = {}
    for metabolite, name in MRS_METABOLITES.items():
        out[name] = float(conc.get(metabolite, np.nan))
        out[f"{name}_rejected"] = float(rejected.get(metabolite, True))
    out["mrs_glu_naa"] = out["mrs_glu"] / out["mrs_naa"]
    out["mrs_glu_gaba"] = out["mrs_glu"] / out["mrs_gaba"]
    out["mrs_naa_cr"] = out["mrs_naa"] / out["mrs_cr"]
    out["mrs_fwhm_ppm"] = np.nan if result.fwhm_ppm is None else result.fwhm_ppm
    out["mrs_snr"] = np.nan if result.snr is None else result.snr
    return out


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
