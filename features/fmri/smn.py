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
   time series by nilearn's ``NiftiLabelsMasker`` on :mod:`features.fmri.smn_atlas`
   (labels resampled to the BOLD grid, nearest neighbour; the masker's result computed
   faster, :func:`reduce_bold`), linearly detrended, the
   six motion parameters regressed out and volumes with FD > 0.5 mm censored
   (Power et al. 2012's threshold; refs#fmri).

XCP-D outputs win when both exist (they are the pipeline's own denoised signal);
``source_fmri`` names the file used.

Region columns: the project's own atlas (``atlas-alsdx``, columns named as
:data:`features.fmri.smn_atlas.SMN_REGIONS`), the HCP-MMP1 atlas (``atlas-Glasser``:
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
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import FmriInputError
from features.fmri.bold import bold_timeseries
from features.fmri.inputs import (
    MIN_VOLUMES,
    SMN_ORDER,
    FmriInput,
    find_fmri,
    framewise_displacement,
    qc_columns,
    read_tsv,
    regions_of,
    sidecar,
    source_name,
)

__all__ = ["fmri_features", "region_timeseries"]

LOW_BAND_HZ = (0.01, 0.08)


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
        return bold_timeseries(found.path)
    notes: list[str] = []
    path = found.path
    if path.name.endswith("_relmat.tsv"):
        return pd.DataFrame(), None, qc_columns(None, None, None), notes
    table = read_tsv(path)
    regions = regions_of(list(table.columns), found.atlas, mapping)
    if not regions:
        raise FmriInputError(
            f"{path}: none of its columns ({', '.join(map(str, table.columns[:6]))}"
            f"...) is a region of atlas {found.atlas}. Use the file XCP-D wrote, or "
            "map the columns in fmri_regions.tsv."
        )
    signals = pd.DataFrame({r: table[cols].mean(axis=1) for r, cols in regions.items()})
    meta = sidecar(path)
    tr = meta.get("RepetitionTime")
    source = path.with_name(source_name(path.name))
    fd = framewise_displacement(Path(f"{source}_motion.tsv"))
    outliers = Path(f"{source}_outliers.tsv")
    if outliers.exists():
        flags = read_tsv(outliers).iloc[:, 0].to_numpy(float) > 0
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
    return signals, times, qc_columns(len(signals), fd, total), notes


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
    missing = [r for r in SMN_ORDER if r not in z.index]
    if missing:
        notes.append(
            f"{found.path.name}: regions {missing} absent; features that need them "
            "are missing"
        )
    out = {
        "fmri_smn_within_z": _pair_mean(z, list(combinations(SMN_ORDER, 2))),
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
    table = read_tsv(path)
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
    regions = regions_of(list(table.columns), atlas, mapping)
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
