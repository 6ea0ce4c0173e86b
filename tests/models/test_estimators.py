"""Our estimators follow the scikit-learn contract and fail with clear messages."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from models.estimators import (
    BalancedClassifier,
    ColumnChecker,
    FoldCalibratedClassifier,
    FoldFallbackWarning,
    SignedLog,
    prefixed_columns,
    reference_rows,
)


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


def test_balanced_xgboost_predicts_a_frame_as_float32_with_the_same_result():
    from xgboost import XGBClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    X.iloc[::7, 1] = np.nan
    y = np.where(X["a"] > 0, "ALS", "HC")
    clf = BalancedClassifier(XGBClassifier(n_estimators=10, n_jobs=1)).fit(X, y)
    proba = clf.predict_proba(X)
    # XGBoost's float32 answer, renormalised in float64: rows sum to one within
    # float64 rounding, so scikit-learn's metrics accept them without a warning
    np.testing.assert_allclose(proba, clf.estimator_.predict_proba(X), rtol=1e-6)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y, proba, labels=clf.classes_)


def test_column_checker_passes_the_site_through_as_strings():
    X = pd.DataFrame(
        {"site": [1, None, "siteB"], "a": [1, 2, 3], "extra": ["x", "y", "z"]}
    )
    out = ColumnChecker(["site", "a"]).fit(X).transform(X)
    assert list(out.columns) == ["site", "a"]
    assert out["site"].dtype == "string" and out["a"].dtype == float
    assert out["site"].tolist()[0] == "1" and out["site"].isna().tolist()[1]
    assert out["site"].tolist()[2] == "siteB"
    with pytest.raises(ValueError, match=r"missing 1 feature column.*\['site'\]"):
        ColumnChecker(["site", "a"]).fit(X).transform(X.drop(columns="site"))


def test_fold_calibrated_classifier_keeps_string_classes_and_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.array(["ALS"] * 40 + ["MMN"] * 15 + ["NMO"] * 5)
    X[y == "MMN", 0] += 2
    base = LogisticRegression(class_weight="balanced")
    clf = FoldCalibratedClassifier(base, cv=3).fit(X, y)
    assert list(clf.classes_) == ["ALS", "MMN", "NMO"] and clf.n_splits_ == 3
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    inner = clf.calibrated_.calibrated_classifiers_[0].estimator
    assert inner.class_weight == "balanced" and inner is not base
    y[-4:] = "ALS"  # NMO: 1 row, calibrated from 2 internal folds
    with pytest.warns(UserWarning, match="only 1 members"):
        clf = FoldCalibratedClassifier(base, cv=3).fit(X, y)
    assert clf.n_splits_ == 2 and clf.predict_proba(X).shape == (60, 3)
    # temperature scaling cannot average internal fits that saw other classes:
    # that fit is sigmoid-calibrated, and the fallback is said by name
    with pytest.warns(FoldFallbackWarning, match="NMO had a single training row"):
        clf = FoldCalibratedClassifier(base, method="temperature").fit(X, y)
    assert clf.method_ == "sigmoid"
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    y[-5] = "MMN"  # no singleton: temperature as asked
    clf = FoldCalibratedClassifier(base, method="temperature").fit(X, y)
    assert clf.method_ == "temperature"


def test_fold_calibrated_classifier_rejects_a_binary_singleton():
    X = np.arange(10.0).reshape(-1, 1)
    y = np.array(["ALS"] * 9 + ["MMN"])
    with pytest.raises(ValueError, match="class 'MMN' has 1 training row.*calibrate"):
        FoldCalibratedClassifier(LogisticRegression()).fit(X, y)


def test_prefixed_columns_skip_flags_site_and_text():
    X = pd.DataFrame(
        {
            "site": ["a", "b"],
            "fs_x": [1.5, 2.0],
            "fs_flag": [0.0, 1.0],
            "fs_text": ["u", "v"],
            "age": [50.0, 60.0],
        }
    )
    assert prefixed_columns(X, ("fs_", "age")) == ["fs_x", "age"]
    assert prefixed_columns(X, ("fs_", "age"), exclude=("age",)) == ["fs_x"]


def test_reference_rows_need_labels_of_the_right_length():
    np.testing.assert_array_equal(
        reference_rows(["HC", "ALS"], "HC", 2, "X"), [True, False]
    )
    assert reference_rows(None, None, 3, "X").all()
    with pytest.raises(ValueError, match=r"X\(reference='HC'\) needs the diagnosis"):
        reference_rows(None, "HC", 2, "X")
    with pytest.raises(ValueError, match=r"X: y has shape \(1,\) but X has 2 rows"):
        reference_rows(["HC"], "HC", 2, "X")
