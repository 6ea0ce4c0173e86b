"""Tests for features.simulate.cohort: the simulated cohort and its round trip.

One small cohort (n = 30, seed 2) is simulated once per module and shared; tests that
damage a cohort work on a copy (``shutil.copytree``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from features.cohort.participants import CohortPaths
from features.errors import CohortFormatError, ImageMismatchError
from features.extract import extract_features
from features.simulate import spec
from features.simulate.cohort import simulate_cohort

P_COLUMNS = [f"p_{c}" for c in spec.CLASSES]
TABLES = (
    "participants.tsv",
    "clinical.tsv",
    "serum.tsv",
    "nerve_conduction.tsv",
    "peripheral_mri.tsv",
)
# Column -> precision it is written with in the cohort's tables (half of it is the
# largest allowed difference after the round trip).
TABLE_PRECISION = {
    "nfl_pg_ml": 0.1,
    "fs_precentral_l_mm3": 1.0,
    "fs_thalamus_l_mm3": 0.1,
    "fs_pulvinar_r_mm3": 0.1,  # from the thalamic-nuclei stats files
    "fs_mean_thickness_l_mm": 1e-5,
    "alsfrs_r": 1.0,
    "penn_umn": 1.0,
}
# Region means of NIfTI maps: the painted noise is zero-mean, float32 storage.
NIFTI_COLUMNS = (
    "dti_cst_l_fa",
    "dti_cst_r_md",
    "qsm_substantia_nigra_l",
    "qsm_thalamus_r",
)
MRS_COLUMNS = ("mrs_naa", "mrs_glu")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("simulated") / "cohort"
    return simulate_cohort(out, n=30, seed=2, n_jobs=1)


@pytest.fixture(scope="module")
def observed(cohort) -> pd.DataFrame:
    return pd.read_csv(
        cohort / "simulation" / "observed_values.tsv",
        sep="\t",
        index_col="participant_id",
    )


@pytest.fixture(scope="module")
def extraction(cohort):
    return extract_features(cohort, n_jobs=1)


@pytest.fixture(scope="module")
def table(extraction) -> pd.DataFrame:
    return extraction.table.set_index("participant_id")


def _copy(cohort: Path, dst: Path) -> Path:
    """A full copy of the cohort without the ground truth."""
    return Path(
        shutil.copytree(cohort, dst, ignore=shutil.ignore_patterns("simulation"))
    )


# --- layout -----------------------------------------------------------------------


def test_cohort_has_tables_readme_and_truth(cohort):
    for name in TABLES:
        assert (cohort / name).is_file(), name
    assert "SIMULATED" in (cohort / "README.txt").read_text()
    truth = pd.read_csv(cohort / "simulation" / "truth.tsv", sep="\t")
    participants = pd.read_csv(cohort / "participants.tsv", sep="\t")
    assert len(truth) == len(participants) == 30
    assert truth["participant_id"].tolist() == participants["participant_id"].tolist()
    assert truth["diagnosis"].tolist() == participants["diagnosis"].tolist()
    p = truth[P_COLUMNS].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)  # written as %.6g


def test_derivatives_exist_exactly_where_acquired(cohort, observed):
    for modality in ("freesurfer", "dti", "lcmodel", "qsm"):
        assert (cohort / "derivatives" / modality).is_dir(), modality
    for pid, row in observed.iterrows():
        paths = CohortPaths(cohort, pid)
        files = {
            "freesurfer": [
                paths.freesurfer_stats_dir / name
                for name in ("aseg.stats", "lh.aparc.stats", "rh.aparc.stats")
            ],
            "dti": [paths.dti_map(m) for m in ("FA", "MD", "AD", "RD")],
            "mrs": [paths.lcmodel_dir / f"{pid}_voi-SMA_lcmodel.table"],
            "qsm": [paths.qsm_map],
        }
        for modality, expected in files.items():
            for path in expected:
                assert path.is_file() == bool(row[f"avail_{modality}"]), (pid, path)


def test_tables_list_exactly_the_subjects_acquired(cohort, observed):
    for name, modality in (("serum.tsv", "serum"), ("clinical.tsv", "clinical")):
        ids = pd.read_csv(cohort / name, sep="\t")["participant_id"]
        assert sorted(ids) == sorted(observed.index[observed[f"avail_{modality}"]])
    ncs = pd.read_csv(cohort / "nerve_conduction.tsv", sep="\t")["participant_id"]
    assert set(ncs) == set(observed.index[observed["avail_ncs"]])


# --- arguments ------------------------------------------------------------------


def test_refuses_to_overwrite(cohort):
    before = (cohort / "participants.tsv").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        simulate_cohort(cohort, n=12, seed=0, n_jobs=1)
    assert (cohort / "participants.tsv").read_bytes() == before


def test_rejects_fewer_than_ten_subjects(tmp_path):
    out = tmp_path / "tiny"
    with pytest.raises(ValueError, match=r"n = 9: simulate at least 10"):
        simulate_cohort(out, n=9, seed=0, n_jobs=1)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no half-built temporary directory


# --- determinism ----------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path):
    a = simulate_cohort(tmp_path / "a", n=12, seed=4, n_jobs=1)
    b = simulate_cohort(tmp_path / "b", n=12, seed=4, n_jobs=2)  # any worker count

    def listing(root: Path) -> list[Path]:
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())

    assert listing(a) == listing(b)
    for rel in ("participants.tsv", "serum.tsv", "simulation/truth.tsv"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    niftis = sorted((a / "derivatives").rglob("*.nii.gz"))
    assert niftis
    rel = niftis[0].relative_to(a)
    first = np.asarray(nib.load(a / rel).dataobj)
    second = np.asarray(nib.load(b / rel).dataobj)
    np.testing.assert_array_equal(first, second)
    assert np.unique(first).size > 100  # a painted map, not an empty volume


# --- round trip through the extractor ---------------------------------------------


def test_extraction_has_no_issues(extraction, observed):
    assert extraction.issues == []
    assert sorted(extraction.table["participant_id"]) == sorted(observed.index)


@pytest.mark.parametrize("column", sorted(TABLE_PRECISION))
def test_round_trip_tables(table, observed, column):
    got = table[column].to_numpy(dtype=float)
    want = observed.loc[table.index, column].to_numpy(dtype=float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert (~np.isnan(want)).sum() > 5
    np.testing.assert_allclose(got, want, rtol=0, atol=TABLE_PRECISION[column] / 2)


@pytest.mark.parametrize("column", NIFTI_COLUMNS)
def test_round_trip_nifti_region_means(table, observed, column):
    got = table[column].to_numpy(dtype=float)
    want = observed.loc[table.index, column].to_numpy(dtype=float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert (~np.isnan(want)).sum() > 3
    np.testing.assert_allclose(got, want, rtol=1e-3)


@pytest.mark.parametrize("column", MRS_COLUMNS)
def test_round_trip_mrs_with_crlb_rejection(table, observed, column):
    obs = observed.loc[table.index]
    acquired = obs["avail_mrs"].to_numpy()
    assert acquired.sum() > 3
    # The extractor rejects a fit whose %SD exceeds 20 (refs#mrs).
    expected_rejected = obs[f"{column}_sd_pct"].to_numpy()[acquired] > 20
    rejected = table[f"{column}_rejected"].to_numpy()[acquired] == 1
    np.testing.assert_array_equal(rejected, expected_rejected)
    got = table[column].to_numpy(dtype=float)[acquired]
    want = obs[column].to_numpy(dtype=float)[acquired]
    assert np.isnan(got[rejected]).all()
    np.testing.assert_allclose(got[~rejected], want[~rejected], rtol=0, atol=5e-4)
    assert np.isnan(table[column].to_numpy(dtype=float)[~acquired]).all()


@pytest.mark.parametrize("modality", ["mrs", "qsm", "dti", "freesurfer", "serum"])
def test_has_columns_match_availability(table, observed, modality):
    has = table[f"has_{modality}"].to_numpy()
    avail = observed.loc[table.index, f"avail_{modality}"].to_numpy(dtype=float)
    np.testing.assert_array_equal(has, avail)


def test_axial_and_radial_diffusivity_carry_their_own_information(table, observed):
    """AD = AD of the cylinder (FA, MD) x exp(excess); RD keeps MD = (AD + 2 RD) / 3;
    so RD is not a function of FA and MD (the residual of RD on them is the excess)."""
    t = table.dropna(subset=["dti_cst_l_ad"])
    np.testing.assert_allclose(
        t["dti_cst_l_md"], (t["dti_cst_l_ad"] + 2 * t["dti_cst_l_rd"]) / 3, rtol=2e-3
    )
    X = np.column_stack([np.ones(len(t)), t["dti_cst_l_fa"], t["dti_cst_l_md"]])
    beta, *_ = np.linalg.lstsq(X, t["dti_cst_l_rd"], rcond=None)
    resid = t["dti_cst_l_rd"] - X @ beta
    excess = observed.loc[t.index, "dti_cst_l_ad_excess"]
    assert np.corrcoef(resid, excess)[0, 1] < -0.8  # more AD, less RD


def test_nerve_conduction_has_cmap_durations(cohort, table):
    ncs = pd.read_csv(cohort / "nerve_conduction.tsv", sep="\t")
    motor = ncs["cmap_amplitude_mv"].notna()
    assert ncs.loc[motor, "cmap_duration_ms"].between(2, 20).all()
    graded = table["qc_ncs_no_duration"].dropna()
    assert len(graded) > 5 and (graded == 0).all()
    assert table["ncs_median_left_dispersion_pct"].dropna().median() > 0


def test_m1_precuneus_ratio(table, observed):
    fs = table[table["has_freesurfer"] == 1]
    assert len(fs) > 5
    want = (fs["fs_precentral_l_mm3"] + fs["fs_precentral_r_mm3"]) / (
        fs["fs_precuneus_l_mm3"] + fs["fs_precuneus_r_mm3"]
    )
    np.testing.assert_allclose(fs["fs_m1_precuneus_ratio"], want, rtol=1e-12)
    obs = observed.loc[fs.index]
    truth = (obs["fs_precentral_l_mm3"] + obs["fs_precentral_r_mm3"]) / (
        obs["fs_precuneus_l_mm3"] + obs["fs_precuneus_r_mm3"]
    )
    np.testing.assert_allclose(fs["fs_m1_precuneus_ratio"], truth, rtol=1e-9)


def test_extraction_never_reads_the_ground_truth(cohort, extraction, tmp_path):
    blind = _copy(cohort, tmp_path / "blind")
    assert not (blind / "simulation").exists()
    again = extract_features(blind, n_jobs=1)
    assert again.issues == []
    assert_frame_equal(again.table, extraction.table)


# --- errors from the extractor --------------------------------------------------


def test_missing_participants_tsv(cohort, tmp_path):
    broken = tmp_path / "no_participants"
    broken.mkdir()
    for name in TABLES[1:]:
        shutil.copy(cohort / name, broken / name)
    with pytest.raises(CohortFormatError, match="participants.tsv"):
        extract_features(broken, n_jobs=1)


def test_unknown_diagnosis_label(cohort, tmp_path):
    broken = _copy(cohort, tmp_path / "cidp")
    participants = pd.read_csv(broken / "participants.tsv", sep="\t")
    pid = participants.loc[0, "participant_id"]
    participants.loc[0, "diagnosis"] = "CIDP"
    participants.to_csv(broken / "participants.tsv", sep="\t", index=False)
    with pytest.raises(
        CohortFormatError, match=rf"row 2 \({pid}\): diagnosis = 'CIDP'"
    ):
        extract_features(broken, n_jobs=1)


@pytest.fixture
def bad_fa(cohort, observed, tmp_path) -> tuple[Path, str, Path]:
    """A copy of the cohort where one subject's FA map is a 10x10x10 volume."""
    broken = _copy(cohort, tmp_path / "bad_fa")
    pid = observed.index[observed["avail_dti"]][0]
    path = CohortPaths(broken, pid).dti_map("FA")
    nib.save(nib.Nifti1Image(np.full((10, 10, 10), 0.5, np.float32), np.eye(4)), path)
    return broken, pid, path


def test_wrong_shape_map_strict_raises(bad_fa):
    broken, _, path = bad_fa
    with pytest.raises(ImageMismatchError, match=rf"{re.escape(path.name)}.*shape"):
        extract_features(broken, strict=True, n_jobs=2)


def test_wrong_shape_map_lenient_drops_the_modality(bad_fa, extraction):
    broken, pid, path = bad_fa
    result = extract_features(broken, strict=False, n_jobs=1)
    out = result.table.set_index("participant_id")
    dti = [c for c in out.columns if c.startswith(("dti_", "qc_dti_"))]
    assert dti
    assert out.loc[pid, dti].isna().all()
    assert out.loc[pid, "has_dti"] == 0
    assert len(result.issues) == 1
    issue = result.issues[0]
    assert issue.participant_id == pid
    assert pid in issue.message and path.name in issue.message
    # Every other subject, and the subject's other modalities, are unaffected.
    ref = extraction.table.set_index("participant_id")
    others = ref.index != pid
    assert_frame_equal(out[others], ref[others])
    keep = [c for c in ref.columns if c not in dti + ["has_dti", "source_dti"]]
    assert_frame_equal(out.loc[[pid], keep], ref.loc[[pid], keep])


def test_a_relative_cohort_path_works_with_workers_started_elsewhere(
    tmp_path, monkeypatch
):
    """joblib reuses worker processes: ones started in another directory must still
    write (and read) a relative-path cohort's images where the caller means."""
    from joblib import Parallel, delayed

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    Parallel(n_jobs=2)(delayed(abs)(i) for i in range(4))  # start the workers here
    monkeypatch.chdir(tmp_path / "b")
    cohort = simulate_cohort(Path("rel") / "c", n=12, seed=4, n_jobs=2)
    assert (tmp_path / "b" / "rel" / "c" / "derivatives").is_dir()
    assert not (tmp_path / "a" / "rel").exists()
    table = extract_features(cohort, n_jobs=2).table
    assert table["has_dti"].sum() > 0 and table["has_freesurfer"].sum() > 0
