"""Scoring: probabilities, conformal sets and flags, and rows that cannot be scored
reported while the others are scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serve import predict
from tests.serve.conftest import cidp_like


def test_probabilities_sets_and_flags_of_the_training_cohort(champion, cohort_table):
    out = predict(champion, cohort_table, source="t")
    classes = champion.classes
    probs = out[[f"p_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (out["predicted_class"] == np.asarray(classes)[probs.argmax(1)]).all()
    assert out["participant_id"].tolist() == cohort_table["participant_id"].tolist()
    assert (out["error"] == "").all()
    assert out["prediction_set"].str.fullmatch(r"\{[A-Z, ]*\}").all()
    assert not out["unseen_site"].any()
    assert out["ood"].mean() < 0.1  # its own training subjects are not unusual
    assert out["model"].str.startswith("als-mimics-dx v").all()
    assert out["modalities_used"].str.contains("serum").any()


def test_conformal_set_holds_each_class_within_its_threshold(champion, cohort_table):
    out = predict(champion, cohort_table)
    thresholds = champion.metadata["conformal"]["thresholds"]
    for _, row in out.iterrows():
        expected = [c for c in champion.classes if 1 - row[f"p_{c}"] <= thresholds[c]]
        assert row["prediction_set"] == "{" + ", ".join(expected) + "}"


def test_a_new_site_is_flagged(champion, cohort_table):
    out = predict(champion, cohort_table.assign(site="scanner-new"))
    assert out["unseen_site"].all()
    assert (out["error"] == "").all()
    assert predict(champion, cohort_table.drop(columns="site"))["unseen_site"].all()


def test_a_cidp_like_profile_is_out_of_distribution(champion, cohort_table):
    usual = predict(champion, cohort_table)
    odd = predict(champion, cidp_like(cohort_table))
    assert odd["ood"].mean() > 0.9
    assert (odd["ood_score"] > usual["ood_score"]).mean() > 0.9
    assert (odd["ood_score"][odd["ood"]] > 1.0).all()


def test_a_cohort_missing_modalities_is_scored_with_what_it_has(champion, cohort_table):
    gone = [
        c
        for c in cohort_table.columns
        if c.startswith(("qsm_", "dti_", "mrs_", "has_qsm", "has_dti", "has_mrs"))
    ]
    with pytest.warns(UserWarning, match="no dti columns: dti treated as not acq"):
        out = predict(champion, cohort_table.drop(columns=gone))
    assert (out["error"] == "").all()
    assert not out["modalities_used"].str.contains("dti|qsm|mrs").any()
    np.testing.assert_allclose(
        out[[f"p_{c}" for c in champion.classes]].sum(axis=1), 1.0, atol=1e-6
    )


def test_bad_rows_are_reported_and_the_others_scored(champion, cohort_table):
    table = cohort_table.head(6).copy()
    table["nfl_pg_ml"] = table["nfl_pg_ml"].astype(object)
    table.loc[1, "nfl_pg_ml"] = "n/a (haemolysed)"
    table.loc[2, "alsfrs_r"] = 52.0
    table.loc[3, "fvc_pct"] = np.inf
    measured = [
        c for c in champion.feature_columns if c != "site" and not c.startswith("has_")
    ]
    table.loc[4, measured] = np.nan
    table.loc[4, "sex"] = None  # else male is derived from it again
    out = predict(champion, table, source="new.csv", first_row=100)
    errors = out["error"].tolist()
    pid = table["participant_id"].tolist()
    assert errors[0] == errors[5] == ""
    assert errors[1] == (
        f"new.csv, row 102 ({pid[1]}): nfl_pg_ml = 'n/a (haemolysed)' is not a "
        "number; write it in pg/mL or leave the cell empty"
    )
    assert "alsfrs_r = 52 is outside [0, 48] (points (0-48))" in errors[2]
    assert "fvc_pct = inf is not finite" in errors[3]
    assert "no value in any of the model's" in errors[4]
    bad = out["error"] != ""
    assert out.loc[bad, "p_ALS"].isna().all() and out.loc[bad, "ood"].isna().all()
    assert out.loc[bad, "predicted_class"].isna().all()
    assert out.loc[~bad, "p_ALS"].notna().all()
    # the good rows score as they would alone
    alone = predict(champion, cohort_table.head(6).iloc[[0, 5]])
    np.testing.assert_allclose(out.loc[[0, 5], "p_ALS"], alone["p_ALS"])


def test_predict_loads_a_model_uri(trained, cohort_table):
    result, cfg = trained
    out = predict(result.model_uri, cohort_table.head(3), tracking_uri=cfg.tracking_uri)
    assert len(out) == 3


def test_a_table_missing_columns_of_a_present_modality_is_refused(
    champion, cohort_table
):
    with pytest.raises(ValueError, match=r"my.csv: missing 1 column.*nfl_pg_ml"):
        predict(champion, cohort_table.drop(columns=["nfl_pg_ml"]), source="my.csv")


def test_the_output_table_has_the_documented_columns(champion, cohort_table):
    out = predict(champion, pd.concat([cohort_table.head(2)]))
    probs = [f"p_{c}" for c in champion.classes]
    assert out.columns.tolist() == [
        "participant_id",
        "session",
        *probs,
        "predicted_class",
        "p_als_vs_mimics",
        "prediction_set",
        "ood_score",
        "ood",
        "unseen_site",
        "modalities_used",
        "model",
        "error",
    ]


def test_served_als_vs_mimics_follows_the_mimics_training_used(
    small_cohort, tmp_path, cohort_table
):
    """Trained with --mimics MMN NMO, the card says so and the served
    p_als_vs_mimics ranks ALS against MMN and NMO only, as the metric does."""
    from common.statistics import auc
    from serve.bundle import load_bundle
    from training.__main__ import main
    from training.evaluation import score

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [
        "--cohort", str(small_cohort), "--mimics", "MMN", "NMO", "--models", "logreg",
        "--outer-folds", "3", "--inner-folds", "2", "--trials", "1", "--repeats", "1",
        "--permutations", "0", "--bootstrap", "20", "--jobs", "1",
        "--tracking-uri", uri, "--optuna-storage", f"sqlite:///{tmp_path / 'o.db'}",
        "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    assert main(argv) == 0
    bundle = load_bundle("models:/als-mimics-dx@champion", uri)
    assert bundle.mimics == ["MMN", "NMO"]
    out = predict(bundle, cohort_table)
    y = cohort_table["diagnosis"].astype(str).to_numpy()
    proba = out[[f"p_{c}" for c in bundle.classes]].to_numpy()
    metric = score(y, proba, bundle.classes, bundle.mimics)["als_vs_mimics_auc"]
    rows = np.isin(y, ["ALS", "MMN", "NMO"])
    served = auc(out["p_als_vs_mimics"].to_numpy()[rows], y[rows] == "ALS")
    assert served == pytest.approx(metric)
    p = dict(zip(bundle.classes, proba.T, strict=True))
    expected = p["ALS"] / (p["ALS"] + p["MMN"] + p["NMO"])  # MS is not a mimic here
    np.testing.assert_allclose(out["p_als_vs_mimics"], expected)


def test_values_in_a_wrong_unit_make_their_rows_unscorable(champion, cohort_table):
    """NfL in ng/mL for 12 subjects and FA in percent for 3: named per row, the
    other rows scored as before."""
    table = cohort_table.copy()
    nfl = table.index[table["nfl_pg_ml"].notna()][:12]
    table.loc[nfl, "nfl_pg_ml"] /= 1000
    fa = [c for c in table.columns if c.endswith("_fa")][0]
    pct = table.index[table[fa].notna()].difference(nfl)[:3]
    table.loc[pct, fa] *= 100
    out = predict(champion, table, source="lab.csv")
    before = predict(champion, cohort_table)
    assert (
        out.loc[nfl, "error"].str.contains("looks like ng/mL; multiply by 1000").all()
    )
    assert out.loc[pct, "error"].str.contains("looks like percent; divide by 100").all()
    assert out.loc[nfl.union(pct), "p_ALS"].isna().all()
    rest = table.index.difference(nfl.union(pct))
    assert (out.loc[rest, "error"] == "").all()
    np.testing.assert_allclose(out.loc[rest, "p_ALS"], before.loc[rest, "p_ALS"])


def test_a_cohort_in_another_unit_is_caught_against_the_training_cohort(
    champion, cohort_table
):
    """QSM exported in ppm: every value is a possible number, the cohort's typical
    value is 1000 times the training cohort's smaller."""
    table = cohort_table.copy()
    qsm = [c for c in table.columns if c.startswith("qsm_")]
    table[qsm] = table[qsm] / 1000
    out = predict(champion, table)
    has_qsm = table[qsm].notna().any(axis=1)
    assert has_qsm.sum() > 5
    assert out.loc[has_qsm, "error"].str.contains("look like ppm, not ppb").all()
    assert (out.loc[~has_qsm, "error"] == "").all()
