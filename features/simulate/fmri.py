"""Simulated resting-state fMRI: XCP-D-style parcellated outputs and small 4D BOLD.

Written for every second participant (even number) among visits with FreeSurfer,
so availability does not depend on the class. The signal depends on the class
only through the visit's observed M1/precuneus grey-matter ratio (FreeSurfer
precentral over precuneus volume), so the oracle posterior of ``truth.tsv`` stays
exact: given the FreeSurfer values, the fMRI adds no information about the class.

Model (refs#fmri; magnitudes UE, directions from the sources): each region's
signal mixes a shared network signal (band-limited 0.01-0.08 Hz) with its own
band-limited and white noise. The sensorimotor network (M1, SMA, S1) shares one
signal with coupling ``c = 0.45 - 0.08 z + N(0, 0.1)`` (``z`` = the M1/precuneus
ratio in control SDs from the control mean, 1.52 +- 0.09 in this simulator), clipped to
[0.1, 0.85] (the noise: between-person variation the ratio does not explain):
more atrophy, more SMN coupling (source study 3; Agosta 2011 for the
direction). SMA couples a further ``0.05 (-z)`` (its "hyperactivity"). Precuneus
and calcarine cortex follow their own networks (c = 0.4). TR 2 s, 180 volumes;
framewise displacement |N(0.12, 0.05)| mm with 3 % spikes of 0.5-1.2 mm (UE);
volumes over 0.5 mm are censored as XCP-D's linc mode does (rows removed).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.signal import butter, sosfiltfilt

from features.fmri.smn_atlas import ATLAS_LABEL, SMN_REGIONS

TR = 2.0
N_VOLUMES = 180
_RATIO_HC = (1.52, 0.09)  # control mean and SD of the simulator's ratio
_NETWORK = {"m1": "smn", "sma": "smn", "s1": "smn"}
_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def has_fmri(r: dict) -> bool:
    """Whether the simulator writes rs-fMRI for this visit row."""
    return bool(r["avail_freesurfer"]) and int(r["participant_id"][4:]) % 2 == 0


def _band(rng: np.random.Generator, n: int, k: int = 1) -> np.ndarray:
    sos = butter(2, [0.01, 0.08], btype="band", fs=1 / TR, output="sos")
    x = sosfiltfilt(sos, rng.standard_normal((k, n + 100)), axis=1)[:, 50:-50]
    return x / x.std(axis=1, keepdims=True)


def region_signals(ratio: float, rng: np.random.Generator) -> pd.DataFrame:
    """Region mean signals (volumes x :data:`SMN_REGIONS`) for one visit."""
    z = (ratio - _RATIO_HC[0]) / _RATIO_HC[1] if np.isfinite(ratio) else 0.0
    c_smn = float(np.clip(0.45 - 0.08 * z + rng.normal(0, 0.1), 0.1, 0.85))
    shared = {net: _band(rng, N_VOLUMES)[0] for net in ("smn", "dmn", "visual")}
    out = {}
    for region in SMN_REGIONS:
        stem = region.rsplit("_", 1)[0]
        net = _NETWORK.get(stem, "dmn" if stem == "precuneus" else "visual")
        c = c_smn if net == "smn" else 0.4
        if stem == "sma":
            c = float(np.clip(c - 0.05 * z, 0.1, 0.9))
        own = 0.8 * _band(rng, N_VOLUMES)[0] + 0.6 * rng.standard_normal(N_VOLUMES)
        out[region] = np.sqrt(c) * shared[net] + np.sqrt(1 - c) * own
    return pd.DataFrame(out)


def motion(rng: np.random.Generator) -> pd.DataFrame:
    """fMRIPrep/XCP-D motion columns: six parameters and framewise displacement."""
    fd = np.abs(rng.normal(0.12, 0.05, N_VOLUMES))
    spikes = rng.random(N_VOLUMES) < 0.03
    fd[spikes] = rng.uniform(0.5, 1.2, spikes.sum())
    fd[0] = 0.0
    params = np.cumsum(rng.normal(0, 0.02, (N_VOLUMES, 6)), axis=0)
    table = pd.DataFrame(params, columns=list(_MOTION))
    table["framewise_displacement"] = fd
    return table


def _visit(r: dict, seed: int, k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The region signals and motion of one visit (the same for both outputs)."""
    rng = np.random.default_rng([seed, int(r["participant_id"][4:]), k, 7])
    ratio = (r["fs_precentral_l_mm3"] + r["fs_precentral_r_mm3"]) / (
        r["fs_precuneus_l_mm3"] + r["fs_precuneus_r_mm3"]
    )
    return region_signals(float(ratio), rng) * 50.0, motion(rng)


def _source(r: dict) -> tuple[str, str]:
    pid, ses = r["participant_id"], r.get("session", "")
    return pid, (f"{pid}_{ses}_task-rest" if ses else f"{pid}_task-rest")


def write_xcpd(r: dict, root: Path, seed: int, k: int) -> None:
    """XCP-D-style outputs of one visit under ``root/derivatives/xcp_d``."""
    signals, moves = _visit(r, seed, k)
    kept = moves["framewise_displacement"].to_numpy() <= 0.5
    pid, source = _source(r)
    folder = root / "derivatives" / "xcp_d" / pid / r.get("session", "") / "func"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{source}_space-MNI152NLin2009cAsym_atlas-{ATLAS_LABEL}"
    kept_signals = signals[kept].reset_index(drop=True)
    kept_signals.to_csv(
        folder / f"{stem}_stat-mean_timeseries.tsv",
        sep="\t",
        index=False,
        float_format="%.6g",
    )
    (folder / f"{stem}_stat-mean_timeseries.json").write_text(
        json.dumps({"RepetitionTime": TR, "SoftwareFilters": {}}, indent=1)
    )
    kept_signals.corr().to_csv(
        folder / f"{stem}_stat-pearsoncorrelation_relmat.tsv",
        sep="\t",
        index_label="Node",
        float_format="%.6g",
    )
    moves.to_csv(
        folder / f"{source}_motion.tsv", sep="\t", index=False, float_format="%.6g"
    )
    pd.DataFrame({"framewise_displacement": (~kept).astype(int)}).to_csv(
        folder / f"{source}_outliers.tsv", sep="\t", index=False
    )


def write_fmriprep(r: dict, root: Path, seed: int, k: int) -> None:
    """fMRIPrep-style BOLD of one visit under ``root/derivatives/fmriprep``: the
    visit's region signals (those of :func:`write_xcpd`) in the labelled voxels of
    :func:`bold_labels` plus voxel noise, its sidecar and confounds."""
    signals, moves = _visit(r, seed, k)
    pid, source = _source(r)
    folder = root / "derivatives" / "fmriprep" / pid / r.get("session", "") / "func"
    stem = f"{source}_space-MNI152NLin2009cAsym_desc-preproc_bold"
    rng = np.random.default_rng([seed, int(pid[4:]), k, 8])
    write_bold(folder / f"{stem}.nii.gz", signals, bold_labels(), rng)
    (folder / f"{stem}.json").write_text(json.dumps({"RepetitionTime": TR}))
    moves.to_csv(
        folder / f"{source}_desc-confounds_timeseries.tsv",
        sep="\t",
        index=False,
        float_format="%.6g",
    )


#: The simulated BOLD grid: MNI, 8 mm isotropic (real fMRIPrep output is 2 mm;
#: coarse here so that a cohort's BOLD stays a few MB).
BOLD_AFFINE = np.array(
    [[8.0, 0, 0, -96], [0, 8, 0, -132], [0, 0, 8, -72], [0, 0, 0, 1]]
)
BOLD_SHAPE = (25, 30, 24)


@functools.cache
def bold_labels() -> nib.Nifti1Image:
    """The SMN atlas on :data:`BOLD_AFFINE` (nearest neighbour)."""
    from nilearn.image import resample_to_img

    from features.fmri.smn_atlas import smn_atlas

    target = nib.Nifti1Image(np.zeros(BOLD_SHAPE, np.int8), BOLD_AFFINE)
    return resample_to_img(
        smn_atlas().labels_img,
        target,
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )


def write_bold(
    path: Path,
    signals: pd.DataFrame,
    labels_img: nib.Nifti1Image,
    rng: np.random.Generator,
    noise: float = 1.0,
) -> None:
    """A 4D BOLD image on the grid of ``labels_img``: each labelled voxel carries its
    region's signal (signal units: the region signals' SD is 1 before scaling) plus
    white noise, int16 around 1000; voxels outside the regions are 0 (as if
    masked), which keeps the files small."""
    labels = np.asarray(labels_img.dataobj).astype(int)
    n = len(signals)
    inside = labels > 0
    data = np.zeros((*labels.shape, n), np.float32)
    data[inside] = 1000 + 20 * rng.normal(0, noise, (int(inside.sum()), n))
    scale = 20 / signals.to_numpy(float).std()
    for region, value in SMN_REGIONS.items():
        data[labels == value] += scale * signals[region].to_numpy(np.float32)
    img = nib.Nifti1Image(np.round(data).astype(np.int16), labels_img.affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = TR
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
