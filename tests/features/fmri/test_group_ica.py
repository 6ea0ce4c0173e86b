"""Group ICA with dual regression (features.fmri.group_ica) on simulated BOLD runs whose
SMN coupling is known."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy.stats import spearmanr

from features.fmri.bold import load_bold
from features.fmri.group_ica import MIN_RUNS, GroupICA
from features.simulate import fmri as sim

RATIOS = np.linspace(1.25, 1.75, 14)  # M1/precuneus ratio: atrophy to none


def _run(folder, k: int, ratio: float, labels=None):
    rng = np.random.default_rng(k)
    path = (
        folder
        / f"sub-{k:02d}_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    )
    signals = sim.region_signals(ratio, rng) * 50
    sim.write_bold(path, signals, labels or sim.bold_labels(), rng)
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(
        '{"RepetitionTime": 2.0}'
    )
    return load_bold(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bold")
    return [_run(folder, k, ratio) for k, ratio in enumerate(RATIOS)]


def test_the_smn_component_and_its_sma_loading_follow_atrophy(runs):
    ica = GroupICA(n_components=3, smoothing_fwhm=None).fit(runs)
    assert ica.smn_score_ > 1.0  # the map sits on M1/SMA/S1
    assert all(len(v) for v in ica.region_voxels_.values())
    loadings = ica.transform(runs)
    assert list(loadings.index) == [str(r.path) for r in runs]
    # SMN regions load on the SMN component, the precuneus does not
    assert (loadings[["ica_smn_m1", "ica_smn_s1"]].mean() > 0.2).all()
    assert abs(loadings["ica_smn_precuneus"].mean()) < 0.05
    # simulated: more atrophy (a lower ratio), more SMA coupling
    assert spearmanr(RATIOS, loadings["ica_smn_sma"]).statistic < -0.3
    # a second fit with the same seed gives the same loadings
    again = GroupICA(n_components=3, smoothing_fwhm=None).fit(runs).transform(runs)
    np.testing.assert_allclose(again.to_numpy(), loadings.to_numpy(), atol=1e-6)


def test_too_few_runs_and_mixed_grids_are_refused(runs, tmp_path):
    with pytest.raises(ValueError, match=f"at least {MIN_RUNS} BOLD runs.*3 given"):
        GroupICA(n_components=3).fit(runs[:3])
    with pytest.raises(ValueError, match="at least 20 BOLD runs .n_components = 20"):
        GroupICA(n_components=20).fit(runs)
    coarse = sim.bold_labels()
    affine = coarse.affine.copy()
    affine[:3, :3] *= 1.25  # 10 mm voxels
    other = nib.Nifti1Image(np.asarray(coarse.dataobj)[::1, ::1, ::1], affine)
    odd = _run(tmp_path, 99, 1.5, labels=other)
    with pytest.raises(
        ValueError, match=r"one grid: .*sub-99.* voxel size \[10\. 10\. 10\.\]"
    ):
        GroupICA(n_components=3).fit([*runs[:12], odd])


def test_a_cohort_run_names_each_participant_left_out_once(runs, tmp_path):
    """A participant whose BOLD cannot be read is named as left out, with the
    reason, and not also as a participant without BOLD (its later visit has none)."""
    import shutil

    import pandas as pd

    from features.fmri.group_ica import cohort_loadings

    pids = [f"sub-{k:02d}" for k in range(len(runs) + 2)]
    for pid, run in zip(pids, runs, strict=False):
        folder = tmp_path / "derivatives" / "fmriprep" / pid / "ses-1" / "func"
        folder.mkdir(parents=True)
        name = run.path.name.replace(run.path.name.split("_")[0], f"{pid}_ses-1")
        shutil.copy(run.path, folder / name)
        shutil.copy(run.path.with_name(run.path.name.replace(".nii.gz", ".json")),
                    folder / name.replace(".nii.gz", ".json"))  # fmt: skip
    bad = next((tmp_path / "derivatives" / "fmriprep" / pids[0]).rglob("*.nii.gz"))
    bad.write_bytes(bad.read_bytes()[:40])
    table = pd.DataFrame(
        {
            "participant_id": [*pids, pids[0]],
            "session": ["ses-1"] * len(pids) + ["ses-2"],
        }
    )
    settings = {"n_components": 3, "smoothing_fwhm": 0}
    loadings, fitted, notes = cohort_loadings(tmp_path, table, settings)
    assert fitted.n_runs_ == len(runs) - 1
    decomposed = loadings.notna().all(axis=1).tolist()
    assert decomposed == [False] + [True] * (len(runs) - 1) + [False] * 3
    assert any(n.startswith(f"group ICA: {pids[0]} ses-1 left out") for n in notes)
    without = [n for n in notes if "without fMRIPrep BOLD" in n]
    assert without == [
        f"group ICA: 2 participants without fMRIPrep BOLD have no ica_ values "
        f"({pids[-2]}, {pids[-1]})"
    ]
