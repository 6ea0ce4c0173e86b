"""Scoring and explaining a cohort with the trained champion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.extract import extract_features
from serve import predict
from serve.__main__ import main
from serve.bundle import load_bundle


@pytest.fixture(scope="module")
def bundle(trained):
    result, cfg = trained
    return load_bundle(result.model_uri, cfg.tracking_uri)


@pytest.fixture(scope="module")
def table(small_cohort):
    return extract_features(small_cohort, n_jobs=1).table


def test_predict_gives_probabilities_and_flags(bundle, table):
    out = predict(bundle, table)
    assert out["prediction_set"].str.match(r"^\{.*\}$").all()
    probs = out[[f"p_{c}" for c in bundle.classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (out["predicted_class"] == np.asarray(bundle.classes)[probs.argmax(1)]).all()
    assert not out["unseen_site"].any()
    assert out["model"].str.startswith("als-mimics-dx v").all()
    new_site = table.assign(site="siteZ")
    assert predict(bundle, new_site)["unseen_site"].all()


def test_predict_names_missing_columns(bundle, table):
    with pytest.raises(ValueError, match="missing 1 feature column.*nfl_pg_ml"):
        predict(bundle, table.drop(columns=["nfl_pg_ml"]), source="my.csv")


def test_cli_score_matches_python_and_refuses_overwrite(
    bundle, trained, table, tmp_path
):
    _, cfg = trained
    features = tmp_path / "features.parquet"
    table.to_parquet(features)
    out = tmp_path / "pred.csv"
    args = [
        "score",
        "--model",
        bundle.uri,
        "--tracking-uri",
        cfg.tracking_uri,
        "--features",
        str(features),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    cli = pd.read_csv(out)
    np.testing.assert_allclose(cli["p_ALS"], predict(bundle, table)["p_ALS"])
    assert main(args) == 2  # exists: not overwritten without --overwrite
    assert main([*args, "--overwrite"]) == 0


def test_explain_writes_self_contained_report(bundle, table, tmp_path):
    from serve.explain import shap_values, write_report

    sub = table.head(8).reset_index(drop=True)
    exp = shap_values(bundle, sub)
    explained = [c for c in bundle.feature_columns if c != "site"]  # not a feature
    assert exp.values.shape == (8, len(explained), len(bundle.classes))
    # Efficiency: base value + sum of SHAP values = predicted probability.
    proba = predict(bundle, sub)[[f"p_{c}" for c in bundle.classes]].to_numpy()
    np.testing.assert_allclose(
        exp.base_values + exp.values.sum(axis=1), proba, atol=1e-6
    )
    out = write_report(bundle, sub, tmp_path / "report.html")
    page = out.read_text()
    assert page.count('src="data:image/png;base64,') >= 2 + len(sub)
    assert "http://" not in page and "https://" not in page
    assert "SIMULATED" in page
    with pytest.raises(FileExistsError, match="overwrite"):
        write_report(bundle, sub, out)
