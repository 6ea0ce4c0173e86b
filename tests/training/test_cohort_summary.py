"""training.cohort_summary (univariate table, group summaries, severity
correlations) and training.modalities (leak check, modality subsets), on hand-built
frames and one simulated cohort shared by both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold

from features.dictionary import modality_of
from features.extract import extract_features, feature_columns
from training.cohort_summary import (
    DEFAULT_CONTRASTS,
    group_summary,
    severity_correlations,
    univariate_table,
)
from training.modalities import missingness_leak, modality_subsets

CLASSES = ["ALS", "HC", "MMN", "MS", "NMO"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> pd.DataFrame:
    """The extracted features table of a 120-subject simulated cohort."""
    from features.simulate.cohort import simulate_cohort

    path = simulate_cohort(tmp_path_factory.mktemp("analyses") / "c", n=120, seed=1)
    return extract_features(path).table


@pytest.fixture
def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "diagnosis": ["ALS"] * 4 + ["HC"] * 4 + ["MS"] * 2,
            "nfl": [90.0, 60.0, 70.0, np.nan, 9.0, 12.0, 10.0, 11.0, 30.0, 20.0],
            "ratio": [1.2, 1.3, 1.1, 1.25, 1.5, 1.6, 1.55, 1.45, 1.5, 1.5],
            "label_text": ["x"] * 10,
        }
    )


def test_univariate_literature_anchors_on_a_simulated_cohort(cohort):
    feats = ["nfl_pg_ml", "chi3l1_ng_ml", "fs_m1_precuneus_ratio"]
    table = univariate_table(cohort, feats, n_boot=300)
    assert set(table["contrast"]) == {c[0] for c in DEFAULT_CONTRASTS}
    row = table.set_index(["contrast", "feature"]).loc["ALS vs HC"]
    nfl, chi, ratio = (row.loc[f] for f in feats)
    # refs#perf: NfL ALS vs controls sens 0.91 / spec 0.89; CHI3L1 ~0.55
    assert nfl["auc"] > 0.85 and nfl["direction"] == "higher"
    assert nfl["ci_low"] <= nfl["auc"] <= nfl["ci_high"]
    assert 0.5 <= chi["auc"] < 0.75
    # M1/precuneus ratio: lower in ALS, sens 0.42 at spec 0.90 (Sako 2023)
    assert ratio["direction"] == "lower"
    assert 0.2 < ratio["sensitivity_at_specificity"] < 0.75
    assert ratio["specificity_at_threshold"] >= 0.9
    has = cohort["nfl_pg_ml"].notna()
    assert nfl["n_pos"] == (has & (cohort["diagnosis"] == "ALS")).sum()
    assert nfl["n_neg"] == (has & (cohort["diagnosis"] == "HC")).sum()


def test_univariate_orients_and_reads_the_operating_point(small):
    contrast = [("ALS vs HC", ["ALS"], ["HC"])]
    out = univariate_table(small, ["nfl", "ratio"], contrast, n_boot=50)
    nfl, ratio = out.iloc[0], out.iloc[1]
    assert (nfl["n_pos"], nfl["n_neg"], nfl["auc"]) == (3, 4, 1.0)
    assert ratio["direction"] == "lower" and ratio["auc"] == 1.0
    assert ratio["threshold"] == 1.3  # positive when <= 1.3
    assert ratio["sensitivity_at_specificity"] == 1.0
    # a row's bootstrap depends only on seed, contrast and feature
    alone = univariate_table(small, ["ratio"], contrast, n_boot=50)
    pd.testing.assert_series_equal(
        alone.iloc[0], ratio, check_names=False, check_exact=True
    )


def test_univariate_default_contrasts_keep_the_classes_present(small):
    out = univariate_table(small, ["nfl"], n_boot=20)
    assert out["contrast"].tolist() == ["ALS vs HC", "ALS vs mimics"]
    assert out.loc[1, "n_neg"] == 2  # mimics = MS only here


def test_univariate_errors_name_the_fix(small):
    with pytest.raises(ValueError, match=r"\['MMN'\] do not occur"):
        univariate_table(small, ["nfl"], [("ALS vs MMN", ["ALS"], ["MMN"])])
    with pytest.raises(ValueError, match=r"\['ALS'\] are on both sides"):
        univariate_table(small, ["nfl"], [("bad", "ALS", ["ALS", "HC"])])
    with pytest.raises(ValueError, match=r"feature column\(s\) \['nfl_pg_ml'\] not"):
        univariate_table(small, ["nfl_pg_ml"])
    with pytest.raises(ValueError, match="not numeric.*'x'"):
        univariate_table(small, ["label_text"])
    with pytest.raises(ValueError, match=r"label column\(s\) \['dx'\] not in"):
        univariate_table(small, ["nfl"], label="dx")


def test_group_summary_medians_iqr_and_missingness(small):
    out = group_summary(small, ["nfl"], ["ALS", "MS"]).set_index("class")
    assert out.loc["ALS", ["n_class", "n"]].tolist() == [4, 3]
    assert out.loc["ALS", "median"] == 70.0
    assert out.loc["ALS", ["q1", "q3"]].tolist() == [65.0, 80.0]
    assert out.loc["ALS", "missing_fraction"] == 0.25
    assert out.loc["MS", "median"] == 25.0
    with pytest.raises(ValueError, match=r"group_summary: class\(es\) \['NMO'\]"):
        group_summary(small, ["nfl"], ["NMO"])


def test_severity_correlations_fdr_on_a_simulated_cohort(cohort):
    imaging = [c for c in feature_columns(cohort) if c.startswith(("fs_", "dti_"))]
    out = severity_correlations(cohort, imaging, within="ALS")
    tested = out.dropna(subset=["p"]).sort_values("p")
    assert len(tested) > 50
    assert (tested["q"] >= tested["p"] - 1e-12).all()
    assert tested["q"].is_monotonic_increasing
    assert (tested["n"] <= (cohort["diagnosis"] == "ALS").sum()).all()
    assert (out["significant"] == (out["q"] < 0.05)).all()


def test_severity_correlations_find_a_real_link_and_skip_tiny_samples():
    rng = np.random.default_rng(0)
    fa = rng.normal(0.5, 0.05, 40)
    table = pd.DataFrame(
        {
            "diagnosis": ["ALS"] * 30 + ["HC"] * 10,
            "dti_cst_l_fa": fa,
            "fvc_pct": 100 * fa + rng.normal(0, 1, 40),
            "noise": rng.normal(size=40),
            "edss": [1.0, 2.0, 3.0, 4.0] + [np.nan] * 36,
        }
    )
    out = severity_correlations(
        table, ["dti_cst_l_fa", "noise"], ["fvc_pct", "edss"], within=["ALS"]
    ).set_index(["feature", "severity"])
    link = out.loc[("dti_cst_l_fa", "fvc_pct")]
    assert link["n"] == 30 and link["rho"] > 0.9 and link["significant"]
    assert not out.loc[("noise", "fvc_pct"), "significant"]
    assert np.isnan(out.loc[("dti_cst_l_fa", "edss"), "p"])  # n = 4 < min_n
    with pytest.raises(ValueError, match=r"within: class\(es\) \['PMA'\]"):
        severity_correlations(table, ["noise"], ["fvc_pct"], within="PMA")
    with pytest.raises(ValueError, match=r"\['mrc_sum'\] not in the table"):
        severity_correlations(table, ["noise"], ["mrc_sum"])


def _availability(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(CLASSES, 24)
    modalities = ("ncs", "mrs", "dti", "serum")
    table = pd.DataFrame(
        {f"has_{m}": rng.integers(0, 2, len(y)).astype(float) for m in modalities}
    )
    return table, y


def test_missingness_leak_flags_availability_that_names_the_class():
    table, y = _availability(0)
    chance = missingness_leak(table, y, seed=0)
    assert not chance["leaks"] and abs(chance["macro_auc"] - 0.5) < 0.1
    assert chance["chance_balanced_accuracy"] == 0.2
    leaky = table.assign(has_ncs=(y == "ALS").astype(float))
    out = missingness_leak(leaky, y, seed=0)
    assert out["leaks"] and out["per_class_auc"]["ALS"] > 0.95
    assert out["macro_auc_ci"][0] > 0.55
    assert out["availability_by_class"]["has_ncs"]["ALS"] == 1.0
    assert "PREDICTS" in out["summary"] and "has_ncs" in out["summary"]
    groups = np.arange(len(y)) // 2  # repeated visits stay in one fold
    grouped = missingness_leak(leaky, y, cv=GroupKFold(4), groups=groups)
    assert grouped["leaks"]
    assert missingness_leak(leaky, y, groups=groups)["leaks"]


def test_missingness_leak_errors_name_the_fix():
    table, y = _availability(1)
    with pytest.raises(ValueError, match=r"no has_\* availability columns and no"):
        missingness_leak(pd.DataFrame(index=table.index), y)
    with pytest.raises(ValueError, match="one label per row"):
        missingness_leak(table, y[:10])
    with pytest.raises(ValueError, match="single class"):
        missingness_leak(table, np.full(len(y), "ALS"))
    with pytest.raises(ValueError, match=r"availability column\(s\) \['has_qsm'\]"):
        missingness_leak(table, y, ["has_qsm"])


def test_missingness_leak_derives_availability_without_has_columns():
    y = np.repeat(["ALS", "HC"], 30)
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "nfl_pg_ml": rng.normal(50, 5, 60),
            "ALSFRS-R": np.where(y == "ALS", 40.0, np.nan),  # patients only
            "cst_fa_7t": rng.normal(0.5, 0.02, 60),
        }
    )
    found = missingness_leak(table, y, seed=0)
    assert found["columns"] == ["has_serum", "has_ALSFRS-R", "has_cst_fa_7t"]
    assert found["leaks"] and "has_ALSFRS-R" in found["summary"]


def test_modality_subsets_partition_the_columns(cohort):
    columns = feature_columns(cohort)  # age and male among them
    subsets = modality_subsets(columns)
    demo = {"age", "male"}
    assert {"only_serum", "without_mrs", "only_ncs"} <= set(subsets)
    assert "only_availability" not in subsets and "only_demographics" not in subsets
    for key, only in subsets.items():
        if not key.startswith("only_"):
            continue
        m = key.removeprefix("only_")
        own, rest = set(only) - demo, set(subsets[f"without_{m}"])
        assert own and not own & rest and own | rest == set(columns)
        assert demo <= set(only) and f"has_{m}" in own
        assert all(modality_of(c) in (m, "availability") for c in own)
    assert "nfl_pg_ml" in subsets["only_serum"]
    assert "oligoclonal_bands" in subsets["only_serum"]
    assert "peripheral_mri_any" in subsets["only_peripheral_mri"]
    assert "penn_umn" in subsets["only_clinical"]
    with pytest.raises(ValueError, match=r"\['age'\] are listed more than once"):
        modality_subsets(["age", "age", "nfl_pg_ml"])


@pytest.mark.parametrize(
    ("column", "modality"),
    [
        ("fs_m1_precuneus_ratio", "freesurfer"),
        ("dti_cst_l_fa", "dti"),
        ("qsm_thalamus_l", "qsm"),
        ("mrs_glu_naa", "mrs"),
        ("vbm_putamen_l_ml", "vbm"),
        ("ncs_any_cb", "ncs"),
        ("anti_gm1_igm_titre", "serum"),
        ("aqp4_igg", "serum"),
        ("chi3l1_ng_ml", "serum"),
        ("plexus_t2_hyperintensity_asymmetric", "peripheral_mri"),
        ("has_ncs", "availability"),
        ("male", "demographics"),
        ("alsfrs_r", "clinical"),
    ],
)
def test_modality_of(column, modality):
    assert modality_of(column) == modality
