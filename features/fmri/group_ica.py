"""Group ICA of resting-state BOLD with dual regression: the sensorimotor network's
loading per region and subject (the KAKENHI report's analysis, refs#fmri).

:class:`GroupICA` is a scikit-learn-style estimator over
:class:`features.fmri.bold.BoldRun`
objects (:func:`features.fmri.bold.load_bold`):

- ``fit``: nilearn's ``CanICA`` (Varoquaux et al. 2010) on the runs' kept volumes
  (FD censoring of :mod:`features.fmri.bold`; detrended, the six motion parameters
  regressed out and each voxel standardised by nilearn's masker), its mask computed
  from the runs (``mask_strategy="epi"``). The sensorimotor network (SMN) component
  is the one whose map is most concentrated on M1, SMA and S1 of
  :mod:`features.fmri.smn_atlas`: the largest mean loading there in units of the map's
  SD, sign-flipped so that the SMN is positive.
- ``transform``: dual regression (Beckmann et al. 2009; Nickerson et al. 2017) of
  each run on the group maps: stage 1, the group maps regressed on each volume give
  the components' time courses (scaled to unit variance); stage 2, those time
  courses regressed on each voxel's series give the subject's own maps. The
  subject's SMN map averaged over a region is its loading: how strongly the
  region's signal follows the network's (``ica_smn_sma``, ``ica_smn_m1``,
  ``ica_smn_s1``, ``ica_smn_precuneus``).

Used by analysis plans (``[ica]``, :mod:`training.analysis.run`). Values derived from it
do not feed the classifier; were they to, ``fit`` would run inside each CV fold on
that fold's training runs, as every other fitted step does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from features.fmri.bold import BoldRun
from features.fmri.smn_atlas import SMN_REGIONS

__all__ = ["GroupICA", "LOADING_REGIONS", "MIN_RUNS", "cohort_loadings"]

#: Regions whose SMN loading ``transform`` returns (left and right pooled).
LOADING_REGIONS = ("sma", "m1", "s1", "precuneus")
#: Fewer runs than this give unstable group components (uncited estimate).
MIN_RUNS = 10
_SMN = ("m1", "sma", "s1")


class GroupICA(BaseEstimator):
    """CanICA group decomposition and dual regression (see the module docstring).

    Parameters
    ----------
    n_components : int
        Independent components (CanICA's ``n_components``).
    smoothing_fwhm : float or None
        Spatial smoothing (mm) before the decomposition and dual regression; nilearn's
        default is 6 mm for 2-3 mm data.
    random_state : int
        Seed of CanICA's initialisations.
    n_init : int
        CanICA's restarts (the best of them is kept).

    Attributes
    ----------
    canica_ : nilearn.decomposition.CanICA
        The fitted decomposition; ``canica_.components_img_`` the group maps.
    smn_component_ : int
        Index of the SMN component.
    smn_score_ : float
        Its mean loading over M1, SMA and S1 in SDs of the map.
    n_runs_ : int
        Runs decomposed.
    sign_ : float
        +1 or -1: the SMN map is ``sign_ * components_[smn_component_]``.
    region_voxels_ : dict of str to numpy.ndarray
        Mask-space indices of each region of :data:`LOADING_REGIONS`.
    """

    def __init__(
        self,
        n_components: int = 10,
        smoothing_fwhm: float | None = 6.0,
        random_state: int = 0,
        n_init: int = 10,
    ):
        self.n_components = n_components
        self.smoothing_fwhm = smoothing_fwhm
        self.random_state = random_state
        self.n_init = n_init

    def fit(self, runs: list[BoldRun], y=None) -> GroupICA:
        from nilearn.decomposition import CanICA
        from nilearn.masking import apply_mask

        _check_runs(runs, self.n_components)
        self.canica_ = CanICA(
            n_components=self.n_components,
            smoothing_fwhm=self.smoothing_fwhm,
            random_state=self.random_state,
            n_init=self.n_init,
            standardize="zscore_sample",
            detrend=True,
            mask_strategy="epi",
        )
        imgs, confounds = zip(*(_kept(r) for r in runs), strict=True)
        with warnings.catch_warnings():
            # nilearn's notices about its own defaults, not about the data
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            self.canica_.fit(list(imgs), confounds=list(confounds))
        labels = apply_mask(runs[0].labels, self.canica_.mask_img_).astype(int)
        self.region_voxels_ = {
            region: np.flatnonzero(
                np.isin(
                    labels, [SMN_REGIONS[f"{region}_l"], SMN_REGIONS[f"{region}_r"]]
                )
            )
            for region in LOADING_REGIONS
        }
        smn = np.concatenate([self.region_voxels_[r] for r in _SMN])
        if len(smn) == 0:
            raise ValueError(
                "group ICA: the mask computed from the BOLD runs covers none of M1, "
                "SMA and S1; the runs are not in MNI space or are cropped. Give "
                "fMRIPrep's space-MNI152* output."
            )
        maps = self.canica_.components_
        scores = maps[:, smn].mean(axis=1) / maps.std(axis=1)
        self.smn_component_ = int(np.argmax(np.abs(scores)))
        self.smn_score_ = float(abs(scores[self.smn_component_]))
        self.sign_ = float(np.sign(scores[self.smn_component_]) or 1.0)
        self.n_runs_ = len(runs)
        return self

    def describe(self) -> str:
        """One line: what was decomposed and which component is the SMN."""
        return (
            f"group ICA of {self.n_runs_} BOLD runs, {self.n_components} components; "
            f"SMN = component {self.smn_component_} (mean loading on M1/SMA/S1 "
            f"{self.smn_score_:.2f} SD of its map)"
        )

    def transform(self, runs: list[BoldRun]) -> pd.DataFrame:
        """Dual regression: one row per run (indexed by its path), the SMN
        loading of each of :data:`LOADING_REGIONS` (``ica_smn_<region>``)."""
        maps = self.canica_.components_.T  # voxels x components
        rows = {}
        for run in runs:
            img, confounds = _kept(run)
            data = self.canica_.masker_.transform([img], confounds=[confounds])
            data = np.asarray(data[0], float)
            courses = np.linalg.lstsq(maps, data.T, rcond=None)[0].T  # time x comps
            courses /= courses.std(axis=0, ddof=1)
            design = np.column_stack([courses, np.ones(len(courses))])
            own = np.linalg.lstsq(design, data, rcond=None)[0][:-1]  # comps x voxels
            smn = self.sign_ * own[self.smn_component_]
            rows[str(run.path)] = {
                f"ica_smn_{region}": float(smn[idx].mean()) if len(idx) else np.nan
                for region, idx in self.region_voxels_.items()
            }
        return pd.DataFrame.from_dict(rows, orient="index")


def _check_runs(runs: list[BoldRun], n_components: int) -> None:
    need = max(MIN_RUNS, n_components)
    if len(runs) < need:
        raise ValueError(
            f"group ICA needs at least {need} BOLD runs (n_components = "
            f"{n_components}); {len(runs)} given. Add subjects with fMRIPrep BOLD "
            "or lower n_components."
        )
    first = runs[0]
    for run in runs[1:]:
        if run.img.shape[:3] != first.img.shape[:3] or not np.allclose(
            run.img.affine, first.img.affine, atol=1e-3
        ):
            raise ValueError(
                f"group ICA needs every run on one grid: {run.path} is "
                f"{run.img.shape[:3]} with voxel size "
                f"{np.abs(np.diag(run.img.affine)[:3]).round(2)}, {first.path} is "
                f"{first.img.shape[:3]} with "
                f"{np.abs(np.diag(first.img.affine)[:3]).round(2)}. Run fMRIPrep "
                "with one --output-spaces resolution (e.g. MNI152NLin2009cAsym:res-2)."
            )


def _kept(run: BoldRun):
    """The run's kept volumes and their confounds (None without motion columns)."""
    from nilearn.image import index_img

    img = index_img(run.img, run.kept)
    confounds = run.confounds[run.kept] if run.confounds is not None else None
    return img, confounds


def cohort_loadings(
    cohort_dir, table: pd.DataFrame, settings: dict, subject: str = "participant_id"
) -> tuple[pd.DataFrame, GroupICA, list[str]]:
    """Group ICA over a cohort: each participant's first visit with fMRIPrep BOLD.

    Parameters
    ----------
    cohort_dir : path
        The cohort directory (``derivatives/fmriprep``, docs/cohort-format.md).
    table : pandas.DataFrame
        The extracted table (``subject`` and, with visits, ``session``; the first
        visit is the smallest ``months_since_baseline``, else the first session).
    settings : dict
        :class:`GroupICA` parameters (a plan's ``[ica]``; ``smoothing_fwhm`` 0 =
        none).

    Returns
    -------
    loadings : pandas.DataFrame
        ``ica_smn_<region>`` columns on ``table``'s index; missing on the rows not
        decomposed.
    fitted : GroupICA
    notes : list of str
        Each visit, run or participant left out, by name.
    """
    from pathlib import Path

    from features.errors import FmriInputError
    from features.fmri.bold import load_bold
    from features.fmri.inputs import find_bold

    cohort_dir = Path(cohort_dir)
    order = [c for c in ("months_since_baseline", "session") if c in table.columns]
    rows = table.sort_values(order, kind="stable") if order else table
    runs, where, notes, without = [], [], [], []
    for pid, visits in rows.groupby(subject, sort=True):
        any_bold = False
        for idx, visit in visits.iterrows():
            session = str(visit.get("session", "") or "")
            found = find_bold(cohort_dir, str(pid), session)
            if found is None:
                continue
            any_bold = True
            notes += [f"group ICA: {n}" for n in found[1]]
            try:
                runs.append(load_bold(found[0]))
            except FmriInputError as err:
                visit = f"{pid} {session}".strip()
                notes.append(f"group ICA: {visit} left out: {err}")
                continue
            where.append(idx)
            break
        if not any_bold:
            without.append(str(pid))
    smoothing = settings.get("smoothing_fwhm", 6.0) or None
    fitted = GroupICA(
        n_components=int(settings.get("n_components", 20)),
        smoothing_fwhm=smoothing,
        random_state=int(settings.get("seed", 0)),
        n_init=int(settings.get("n_init", 10)),
    ).fit(runs)
    values = fitted.transform(runs)
    loadings = pd.DataFrame(index=table.index, columns=values.columns, dtype=float)
    loadings.loc[where] = values.to_numpy()
    if without:
        shown = ", ".join(without[:5]) + (" ..." if len(without) > 5 else "")
        notes.append(
            f"group ICA: {len(without)} participants without fMRIPrep BOLD have no "
            f"ica_ values ({shown})"
        )
    return loadings, fitted, notes
