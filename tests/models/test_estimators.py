"""Our estimators follow the scikit-learn contract and fail with clear messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from models.estimators import BalancedClassifier, ColumnChecker, SignedLog
from models.pipelines import make_pipeline


def test_column_checker_reports_the_column_difference():
    checker = ColumnChecker().fit(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    with pytest.raises(ValueError, match=r"missing 1 feature column.*\['b'\]"):
        checker.transform(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(ValueError, match="must be numeric.*'x'"):
        checker.transform(pd.DataFrame({"a": [1.0], "b": ["x"]}))
    with pytest.raises(TypeError, match="pandas DataFrame"):
        ColumnChecker().fit(np.zeros((2, 2)))


def test_signed_log_only_touches_named_columns():
    X = pd.DataFrame({"nfl": [0.0, np.e - 1], "other": [5.0, 6.0]})
    out = SignedLog(("nfl",)).fit_transform(X)
    np.testing.assert_allclose(out["nfl"], [0.0, 1.0])
    np.testing.assert_allclose(out["other"], [5.0, 6.0])


def test_balanced_classifier_keeps_string_classes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = np.array(["ALS"] * 30 + ["MMN"] * 10)
    clf = BalancedClassifier(LogisticRegression()).fit(X, y)
    assert list(clf.classes_) == ["ALS", "MMN"]
    assert set(clf.predict(X)) <= {"ALS", "MMN"}


@pytest.mark.parametrize("family", ["logreg", "xgboost"])
def test_pipelines_handle_missing_values(family):
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["nfl_pg_ml", "b", "c"])
    X.iloc[::4, 1] = np.nan
    y = np.repeat(["ALS", "HC", "MS"], 20)
    params = (
        {"C": 1.0, "l1_ratio": 0.5}
        if family == "logreg"
        else {
            "n_estimators": 20,
            "max_depth": 2,
            "learning_rate": 0.3,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "min_child_weight": 1.0,
            "reg_lambda": 1.0,
        }
    )
    pipe = make_pipeline(family, params, list(X.columns)).fit(X, y)
    proba = pipe.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match="unknown model family 'svm'"):
        make_pipeline("svm", {}, ["a"])
