"""Group ICA with dual regression (features.group_ica) on simulated BOLD runs whose
SMN coupling is known."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy.stats import spearmanr

from features.fmri import load_bold
from features.group_ica import MIN_RUNS, GroupICA
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
