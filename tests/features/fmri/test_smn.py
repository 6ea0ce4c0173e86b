"""rs-fMRI readers: XCP-D parcellated outputs (ours, Glasser, a mapped atlas), relmat
only, fMRIPrep 4D BOLD through nilearn, and every reader error."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from features.errors import FmriInputError
from features.fmri.inputs import MIN_VOLUMES, find_fmri, read_region_mapping
from features.fmri.smn import fmri_features
from features.fmri.smn_atlas import SMN_REGIONS, smn_atlas
from features.simulate import fmri as sim

PID = "sub-01"
SOURCE = f"{PID}_task-rest"


def _signals(n: int = 180, ratio: float = 1.40, seed: int = 0) -> pd.DataFrame:
    return sim.region_signals(ratio, np.random.default_rng(seed)).iloc[:n] * 50


def _xcpd(
    root: Path,
    signals: pd.DataFrame,
    atlas: str = "alsdx",
    entity="atlas",
    sidecar: dict | None = None,
) -> Path:
    folder = root / "derivatives" / "xcp_d" / PID / "func"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{SOURCE}_space-MNI152NLin2009cAsym_{entity}-{atlas}_stat-mean"
    path = folder / f"{stem}_timeseries.tsv"
    signals.to_csv(path, sep="\t", index=False)
    meta = {"RepetitionTime": 2.0} if sidecar is None else sidecar
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def _z(a: pd.Series, b: pd.Series) -> float:
    return float(np.arctanh(np.corrcoef(a, b)[0, 1]))


def _features(root: Path, session: str = ""):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values, source = fmri_features(root, PID, session, read_region_mapping(root))
    return values, source, [str(w.message) for w in caught]


def test_no_input_gives_nothing(tmp_path):
    assert find_fmri(tmp_path, PID, "") is None
    assert fmri_features(tmp_path, PID, "") == ({}, None)


def test_our_atlas_time_series_give_the_correlations_by_hand(tmp_path):
    signals = _signals()
    path = _xcpd(tmp_path, signals)
    values, source, notes = _features(tmp_path)
    assert source == path
    assert values["fmri_m1_interhemispheric_z"] == pytest.approx(
        _z(signals["m1_l"], signals["m1_r"])
    )
    pairs = [(s, m) for s in ("sma_l", "sma_r") for m in ("m1_l", "m1_r")]
    assert values["fmri_sma_m1_z"] == pytest.approx(
        np.mean([_z(signals[a], signals[b]) for a, b in pairs])
    )
    assert 0 < values["fmri_falff_sma"] < 1 and values["qc_fmri_volumes"] == 180
    # no motion or outliers file: said, and the QC values are missing, not 0
    assert np.isnan(values["qc_fmri_mean_fd"])
    assert any("outliers.tsv" in n for n in notes)
    assert any("motion.tsv" in n for n in notes)


def test_falff_is_the_low_band_share_of_amplitude(tmp_path):
    t = np.arange(200) * 2.0
    slow = pd.DataFrame(
        {r: np.sin(2 * np.pi * 0.04 * t + i) for i, r in enumerate(SMN_REGIONS)}
    )
    fast = pd.DataFrame(
        {r: np.sin(2 * np.pi * 0.2 * t + i) for i, r in enumerate(SMN_REGIONS)}
    )
    _xcpd(tmp_path / "slow", slow)
    _xcpd(tmp_path / "fast", fast)
    assert _features(tmp_path / "slow")[0]["fmri_falff_m1"] > 0.8
    assert _features(tmp_path / "fast")[0]["fmri_falff_m1"] < 0.2


def test_censored_volumes_and_motion_give_the_qc_columns(tmp_path):
    signals = _signals()
    flags = np.zeros(180, int)
    flags[[5, 6, 50]] = 1
    _xcpd(tmp_path, signals[flags == 0])  # linc mode: censored rows removed
    folder = tmp_path / "derivatives" / "xcp_d" / PID / "func"
    pd.DataFrame({"framewise_displacement": flags}).to_csv(
        folder / f"{SOURCE}_outliers.tsv", sep="\t", index=False
    )
    pd.DataFrame({"framewise_displacement": np.full(180, 0.2)}).to_csv(
        folder / f"{SOURCE}_motion.tsv", sep="\t", index=False
    )
    values, _, notes = _features(tmp_path)
    assert values["qc_fmri_volumes"] == 177
    assert values["qc_fmri_censored_fraction"] == pytest.approx(3 / 180)
    assert values["qc_fmri_mean_fd"] == pytest.approx(0.2)
    assert notes == []


def test_outliers_of_another_run_are_refused(tmp_path):
    _xcpd(tmp_path, _signals())
    folder = tmp_path / "derivatives" / "xcp_d" / PID / "func"
    pd.DataFrame({"framewise_displacement": np.zeros(200, int)}).to_csv(
        folder / f"{SOURCE}_outliers.tsv", sep="\t", index=False
    )
    with pytest.raises(FmriInputError, match="180 rows, but .*outliers.tsv has 200"):
        fmri_features(tmp_path, PID, "")


def test_glasser_columns_in_xcpd_0_8_seg_naming(tmp_path):
    """A lab's XCP-D run on the HCP-MMP1 atlas: columns L_4_ROI..., ``seg-``."""
    ours = _signals()
    areas = {"m1": ["4"], "sma": ["6ma", "6mp", "SCEF"], "s1": ["3a", "3b", "1", "2"]}
    table = {}
    for region, names in areas.items():
        for side in "LR":
            for name in names:
                table[f"{side}_{name}_ROI"] = ours[f"{region}_{side.lower()}"]
    table["L_V1_ROI"] = ours["calcarine_l"]
    _xcpd(tmp_path, pd.DataFrame(table), atlas="Glasser", entity="seg")
    values, _, _ = _features(tmp_path)
    assert values["fmri_m1_interhemispheric_z"] == pytest.approx(
        _z(ours["m1_l"], ours["m1_r"])
    )


def test_an_unknown_atlas_is_refused_and_a_mapping_file_fixes_it(tmp_path):
    ours = _signals()
    names = {
        "m1_l": "LH_SomMot_1",
        "m1_r": "RH_SomMot_1",
        "sma_l": "LH_SomMot_2",
        "sma_r": "RH_SomMot_2",
        "s1_l": "LH_SomMot_3",
        "s1_r": "RH_SomMot_3",
    }
    _xcpd(
        tmp_path, ours.rename(columns=names)[list(names.values())], atlas="Schaefer100"
    )
    with pytest.raises(FmriInputError, match=r"Schaefer100.*fmri_regions.tsv"):
        fmri_features(tmp_path, PID, "")
    pd.DataFrame(
        {"atlas": "Schaefer100", "column": list(names.values()), "region": list(names)}
    ).to_csv(tmp_path / "fmri_regions.tsv", sep="\t", index=False)
    values, _, _ = _features(tmp_path)
    assert values["fmri_m1_interhemispheric_z"] == pytest.approx(
        _z(ours["m1_l"], ours["m1_r"])
    )


def test_a_series_without_region_columns_is_refused(tmp_path):
    _xcpd(tmp_path, _signals().add_prefix("roi_"))
    with pytest.raises(FmriInputError, match=r"none of its columns \(roi_m1_l"):
        fmri_features(tmp_path, PID, "")


def test_a_mapping_to_an_unknown_region_is_refused(tmp_path):
    pd.DataFrame({"atlas": ["A"], "column": ["c"], "region": ["M1"]}).to_csv(
        tmp_path / "fmri_regions.tsv", sep="\t", index=False
    )
    with pytest.raises(FmriInputError, match=r"row 2: region = 'M1'"):
        read_region_mapping(tmp_path)


def test_relmat_only_gives_connectivity_and_says_falff_is_missing(tmp_path):
    signals = _signals()
    folder = tmp_path / "derivatives" / "xcp_d" / PID / "func"
    folder.mkdir(parents=True)
    signals.corr().to_csv(
        folder / f"{SOURCE}_space-MNI_atlas-alsdx_stat-pearsoncorrelation_relmat.tsv",
        sep="\t",
        index_label="Node",
    )
    values, _, notes = _features(tmp_path)
    assert values["fmri_m1_interhemispheric_z"] == pytest.approx(
        _z(signals["m1_l"], signals["m1_r"]), abs=1e-6
    )
    assert np.isnan(values["fmri_falff_m1"]) and np.isnan(values["qc_fmri_volumes"])
    assert any("correlation matrix only" in n for n in notes)


def test_a_relmat_that_is_not_square_is_refused(tmp_path):
    folder = tmp_path / "derivatives" / "xcp_d" / PID / "func"
    folder.mkdir(parents=True)
    _signals().corr().iloc[:4].to_csv(
        folder / f"{SOURCE}_atlas-alsdx_stat-pearsoncorrelation_relmat.tsv",
        sep="\t",
        index_label="Node",
    )
    with pytest.raises(FmriInputError, match="square and symmetric"):
        fmri_features(tmp_path, PID, "")


@pytest.mark.parametrize(
    ("sidecar", "note"),
    [
        ({}, "RepetitionTime missing"),
        (
            {"RepetitionTime": 2.0, "SoftwareFilters": {"Bandpass filter": {}}},
            "band-pass filtered",
        ),
    ],
)
def test_falff_not_computable_is_said(tmp_path, sidecar, note):
    _xcpd(tmp_path, _signals(), sidecar=sidecar)
    values, _, notes = _features(tmp_path)
    assert np.isnan(values["fmri_falff_sma"]) and np.isfinite(values["fmri_sma_m1_z"])
    assert any(note in n for n in notes)


def test_a_non_numeric_cell_names_row_and_column(tmp_path):
    signals = _signals().astype(object)
    signals.loc[3, "sma_l"] = "1,5"
    _xcpd(tmp_path, signals)
    with pytest.raises(FmriInputError, match=r"row 5, column 'sma_l': value '1,5'"):
        fmri_features(tmp_path, PID, "")


def test_too_few_volumes_are_refused(tmp_path):
    _xcpd(tmp_path, _signals(n=MIN_VOLUMES - 1))
    with pytest.raises(FmriInputError, match=f"{MIN_VOLUMES - 1} kept volumes"):
        fmri_features(tmp_path, PID, "")


def test_sessions_live_in_ses_folders(tmp_path):
    folder = tmp_path / "derivatives" / "xcp_d" / PID / "ses-2" / "func"
    folder.mkdir(parents=True)
    _signals().to_csv(
        folder / f"{PID}_ses-2_task-rest_atlas-alsdx_stat-mean_timeseries.tsv",
        sep="\t",
        index=False,
    )
    assert find_fmri(tmp_path, PID, "ses-2").path.parent == folder
    assert find_fmri(tmp_path, PID, "") is None


# --- fMRIPrep BOLD --------------------------------------------------------------

GRID, SHAPE = sim.BOLD_AFFINE, sim.BOLD_SHAPE


@pytest.fixture(scope="module")
def labels8():
    return sim.bold_labels()


def _bold(root: Path, labels, signals, name="space-MNI152NLin2009cAsym", tr=2.0):
    folder = root / "derivatives" / "fmriprep" / PID / "func"
    path = folder / f"{SOURCE}_{name}_desc-preproc_bold.nii.gz"
    sim.write_bold(path, signals, labels, np.random.default_rng(1))
    if tr is not None:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(
            json.dumps({"RepetitionTime": tr})
        )
    return path


def test_bold_reduced_by_the_masker_matches_its_region_signals(tmp_path, labels8):
    signals = _signals(seed=3)
    path = _bold(tmp_path, labels8, signals)
    moves = sim.motion(np.random.default_rng(2))
    moves.loc[[10, 11], "framewise_displacement"] = 0.9
    moves.to_csv(
        path.parent / f"{SOURCE}_desc-confounds_timeseries.tsv",
        sep="\t",
        index=False,
        na_rep="n/a",
    )
    values, source, notes = _features(tmp_path)
    assert source == path and notes == []
    kept = moves["framewise_displacement"] <= 0.5
    assert values["qc_fmri_volumes"] == kept.sum()
    assert values["qc_fmri_censored_fraction"] == pytest.approx(1 - kept.mean())
    # voxel noise averages out over a region: the correlation of the true signals
    expected = _z(signals["m1_l"][kept], signals["m1_r"][kept])
    assert values["fmri_m1_interhemispheric_z"] == pytest.approx(expected, abs=0.1)


def test_xcpd_outputs_win_over_bold(tmp_path, labels8):
    _bold(tmp_path, labels8, _signals())
    path = _xcpd(tmp_path, _signals())
    assert find_fmri(tmp_path, PID, "").path == path


def test_a_3d_image_is_refused(tmp_path, labels8):
    path = _bold(tmp_path, labels8, _signals())
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.int16), GRID), path)
    with pytest.raises(FmriInputError, match=r"a 3D image .* resting-state BOLD is 4D"):
        fmri_features(tmp_path, PID, "")


def test_a_native_space_grid_is_refused(tmp_path, labels8):
    path = _bold(tmp_path, labels8, _signals())
    img = nib.load(path)
    shifted = GRID.copy()
    shifted[:3, 3] += 150  # the field of view no longer covers the motor cortex
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), shifted, img.header), path)
    with pytest.raises(
        FmriInputError, match=r"m1_l falls inside the image.*not on an MNI"
    ):
        fmri_features(tmp_path, PID, "")


def test_a_non_mni_space_entity_is_refused(tmp_path, labels8):
    _bold(tmp_path, labels8, _signals(), name="space-T1w")
    with pytest.raises(FmriInputError, match="space-T1w is not MNI"):
        fmri_features(tmp_path, PID, "")


def test_bold_without_repetition_time_is_refused(tmp_path, labels8):
    path = _bold(tmp_path, labels8, _signals(), tr=None)
    img = nib.load(path)
    img.header.set_xyzt_units("mm", "unknown")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header), path)
    with pytest.raises(FmriInputError, match="repetition time missing"):
        fmri_features(tmp_path, PID, "")


def test_bold_with_too_few_volumes_is_refused(tmp_path, labels8):
    _bold(tmp_path, labels8, _signals(n=30))
    with pytest.raises(
        FmriInputError, match=f"30 of 30 volumes kept.*at least {MIN_VOLUMES}"
    ):
        fmri_features(tmp_path, PID, "")


def test_the_smn_atlas_has_every_region_on_its_side():
    atlas = smn_atlas()
    counts = atlas.voxel_counts()
    assert set(counts) == set(SMN_REGIONS) and min(counts.values()) > 100
    labels = np.asarray(atlas.labels_img.dataobj)
    x = np.argwhere(labels == SMN_REGIONS["sma_l"])[:, 0] * 2 - 98
    assert (x < 0).all()


def test_the_simulated_cohort_has_xcpd_outputs_where_it_says(small_cohort):
    from features.extract import extract_features

    extraction = extract_features(small_cohort, n_jobs=1)
    table = extraction.table.reset_index()
    even = table["participant_id"].str[4:].astype(int) % 2 == 0
    expected = even & (table["has_freesurfer"] == 1)
    assert expected.any()
    assert (table["has_fmri"] == 1).tolist() == expected.tolist()
    assert table.loc[expected, "source_fmri"].str.startswith("derivatives/xcp_d/").all()
    assert table.loc[expected, "fmri_falff_sma"].notna().all()
    assert not [i for i in extraction.issues if "fmri" in i.message]


def test_reduce_bold_equals_nilearns_labels_masker(tmp_path, labels8):
    from nilearn.maskers import NiftiLabelsMasker

    from features.fmri.bold import reduce_bold

    path = _bold(tmp_path, labels8, _signals(seed=4))
    img = nib.load(path)
    moves = sim.motion(np.random.default_rng(5))
    confounds = moves[list(sim._MOTION)].to_numpy()
    kept = np.flatnonzero(np.arange(180) % 7 != 0)
    ours = reduce_bold(img, labels8, 2.0, confounds, kept)
    masker = NiftiLabelsMasker(labels8, detrend=True, standardize=None, t_r=2.0)
    theirs = masker.fit_transform(img, confounds=confounds, sample_mask=kept)
    names = {v: k for k, v in SMN_REGIONS.items()}
    ids = [v for k, v in masker.region_ids_.items() if k != "background"]
    assert list(ours.columns) == [names[int(v)] for v in ids]
    np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=1e-5, atol=1e-4)


def test_a_truncated_bold_file_is_refused(tmp_path, labels8):
    path = _bold(tmp_path, labels8, _signals())
    whole = path.read_bytes()
    path.write_bytes(whole[:40])  # the header cut
    with pytest.raises(FmriInputError, match="not a readable NIfTI"):
        fmri_features(tmp_path, PID, "")
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FmriInputError, match="image data truncated or corrupt"):
        fmri_features(tmp_path, PID, "")
