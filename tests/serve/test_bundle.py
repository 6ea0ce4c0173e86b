"""Loading a locked model and checking that it, and its input, are compatible."""

from __future__ import annotations

import json
from importlib.metadata import version

import mlflow
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from models.locked import BUNDLE_FORMAT
from serve.bundle import check_versions, load_bundle


def test_the_champion_carries_its_model_card(champion):
    assert champion.classes == ["ALS", "MMN", "NMO", "MS", "HC"]
    assert champion.version.startswith("als-mimics-dx v")
    assert champion.schema["nfl_pg_ml"]["unit"] == "pg/mL"
    assert champion.schema["site"]["dtype"] == "string"
    assert 0 < champion.alpha < 1
    assert champion.sites  # the training sites
    meta = champion.metadata
    assert meta["bundle_format"] == BUNDLE_FORMAT
    assert meta["reference"]["nfl_pg_ml"]["controls_n"] > 0
    assert meta["packages"]["scikit-learn"] == version("scikit-learn")
    assert meta["ood"]["threshold"] == 1.0
    assert set(meta["calibration"]) == set(champion.classes)
    card = champion.describe()
    json.dumps(card, allow_nan=False)  # JSON-ready
    assert "background" not in card and card["version"] == champion.version


def _save(path, metadata):
    X = np.arange(20.0).reshape(-1, 2)
    model = LogisticRegression().fit(X, np.arange(10) % 2)
    mlflow.sklearn.save_model(model, path, metadata=metadata)
    return str(path)


def test_an_unknown_model_says_where_it_looked(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ValueError, match="cannot find model 'models:/nope@champion'"):
        load_bundle("models:/nope@champion", uri)


def test_a_model_without_a_card_is_refused(tmp_path):
    path = _save(tmp_path / "plain", None)
    with pytest.raises(ValueError, match=r"lacks \['bundle_format'.*Retrain"):
        load_bundle(path)


def test_another_bundle_format_is_refused(champion, tmp_path):
    meta = {**champion.metadata, "bundle_format": 1}
    path = _save(tmp_path / "old", meta)
    with pytest.raises(ValueError, match="bundle format 1; this version of serve"):
        load_bundle(path)


def test_a_model_that_is_not_a_locked_model_is_refused(champion, tmp_path):
    path = _save(tmp_path / "bare", champion.metadata)
    with pytest.raises(ValueError, match="holds a LogisticRegression, not a Locked"):
        load_bundle(path)


def test_another_major_version_is_refused_and_a_minor_one_warns():
    installed = version("scikit-learn")
    major, minor = (int(p) for p in installed.split(".")[:2])
    with pytest.raises(
        ValueError, match=r"trained with scikit-learn 0\.24\.2.*install"
    ):
        check_versions("m", {"scikit-learn": "0.24.2"})
    with pytest.warns(UserWarning, match=f"scikit-learn {major}.{minor + 1}.0"):
        check_versions("m", {"scikit-learn": f"{major}.{minor + 1}.0"})
    check_versions("m", {"scikit-learn": installed})  # same version: silent


def test_an_absent_modality_is_filled_as_not_acquired(champion, cohort_table):
    qsm = [c for c in cohort_table.columns if c.startswith("qsm_") or c == "has_qsm"]
    frame, notes = champion.conform(cohort_table.drop(columns=qsm), "t.csv")
    assert frame.columns.tolist() == champion.feature_columns
    assert (frame["has_qsm"] == 0).all()
    assert frame["qsm_putamen_l"].isna().all()
    assert notes == [
        "t.csv: no qsm columns: qsm treated as not acquired for every subject."
    ]


def test_a_missing_availability_flag_is_derived_from_the_values(champion, cohort_table):
    frame, _ = champion.conform(cohort_table.drop(columns=["has_serum"]), "t")
    expected = cohort_table["nfl_pg_ml"].notna() | cohort_table["aqp4_igg"].notna()
    assert (frame["has_serum"] == 1).sum() >= expected.sum()


def test_a_partly_missing_modality_is_an_error(champion, cohort_table):
    with pytest.raises(ValueError, match=r"t.csv: missing 1 column.*dti_cst_l_fa.*"):
        champion.conform(cohort_table.drop(columns=["dti_cst_l_fa"]), "t.csv")


def test_a_column_holding_no_number_is_of_the_wrong_type(champion, cohort_table):
    bad = cohort_table.assign(nfl_pg_ml="high")
    with pytest.raises(ValueError, match=r"'nfl_pg_ml' is of the wrong type.*pg/mL"):
        champion.conform(bad, "t.csv")


def test_a_table_with_none_of_the_columns_is_refused(champion):
    import pandas as pd

    with pytest.raises(ValueError, match="none of the model's .* input columns"):
        champion.conform(pd.DataFrame({"x": [1.0]}), "t.csv")
