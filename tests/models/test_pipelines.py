"""Every model family builds one leak-free pipeline: site harmonisation, normative
z-scores, imputation and calibration are all refit on the training fold alone."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from models.estimators import BalancedClassifier, ColumnChecker
from models.harmonize import ComBat
from models.normative import NormativeZ
from models.pipelines import (
    MODEL_FAMILIES,
    SEARCH_KEYS,
    SKOPS_TRUSTED_TYPES,
    build_pipeline,
    suggest,
)

CLASSES = ("ALS", "HC", "MS")
PARAMS = {
    "logreg": {"C": 1.0, "l1_ratio": 0.5},
    "svm": {"C": 1.0, "gamma": 0.1},
    "random_forest": {
        "n_estimators": 30,
        "max_depth": 4,
        "min_samples_leaf": 2,
        "max_features": 0.5,
    },
    "xgboost": {
        "n_estimators": 20,
        "max_depth": 2,
        "learning_rate": 0.3,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "min_child_weight": 1.0,
        "reg_lambda": 1.0,
    },
}


def _cohort(n=90, seed=0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three classes over three sites; NfL and a DTI tract carry the signal."""
    rng = np.random.default_rng(seed)
    y = np.array(CLASSES)[np.arange(n) % 3]
    site = np.array(["siteA", "siteB", "siteC"])[rng.integers(0, 3, n)]
    offset = pd.Series(site).map({"siteA": 0.0, "siteB": 0.03, "siteC": -0.02})
    X = pd.DataFrame(
        {
            "site": pd.array(site, dtype="string"),
            "age": rng.uniform(30, 80, n),
            "male": rng.integers(0, 2, n).astype(float),
            "nfl_pg_ml": np.exp(2.3 + 1.0 * (y == "ALS") + rng.normal(0, 0.4, n)),
            "dti_cst_l_fa": 0.55 - 0.05 * (y == "MS") + offset + rng.normal(0, 0.02, n),
            "fs_precentral_l_mm3": rng.normal(9000, 600, n),
            "has_dti": 1.0,
        }
    )
    X.loc[::5, "dti_cst_l_fa"] = np.nan
    X.loc[::5, "has_dti"] = 0.0
    X.loc[::7, "nfl_pg_ml"] = np.nan
    return X, y


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_every_family_fits_with_site_and_missing_values(family):
    X, y = _cohort()
    pipe = build_pipeline(family, PARAMS[family], list(X.columns), seed=1)
    names = [name for name, _ in pipe.steps]
    assert names[:3] == ["columns", "harmonize", "normative"]
    assert names[-1] == "classifier" and ("impute" in names) == (family != "xgboost")
    pipe.fit(X, y)
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert [str(c) for c in pipe.classes_] == list(CLASSES)
    assert all(isinstance(c, str) for c in pipe.classes_)
    assert set(pipe.predict(X)) <= set(CLASSES)
    assert (pipe.predict(X) == y).mean() > 0.6


@pytest.mark.parametrize("family", ["logreg", "xgboost"])
def test_old_signature_without_site_still_works(family):
    X, y = _cohort()
    X = X.drop(columns="site")
    pipe = build_pipeline(family, PARAMS[family], list(X.columns), seed=0).fit(X, y)
    assert "harmonize" not in pipe.named_steps
    np.testing.assert_allclose(pipe.predict_proba(X).sum(axis=1), 1.0, atol=1e-6)


def test_switches_drop_their_steps():
    X, y = _cohort()
    pipe = build_pipeline(
        "logreg",
        PARAMS["logreg"],
        list(X.columns),
        harmonize=False,
        normative=False,
        calibrate=None,
    ).fit(X, y)
    assert [n for n, _ in pipe.steps] == [
        "columns",
        "log",
        "impute",
        "scale",
        "classifier",
    ]
    assert isinstance(pipe[-1], LogisticRegression)
    assert "site" not in pipe[0].feature_names_in_
    assert "nfl_pg_ml" in pipe.named_steps["log"].columns
    params = {**PARAMS["logreg"], "normative": False}
    assert "normative" not in build_pipeline("logreg", params, ["a"]).named_steps
    svm = build_pipeline("svm", PARAMS["svm"], ["a"], calibrate="none")
    assert svm[-1].method == "sigmoid"  # an SVM has no probabilities otherwise


def test_z_scored_concentrations_are_not_logged_twice():
    pipe = build_pipeline("logreg", PARAMS["logreg"], ["site", "nfl_pg_ml"])
    logged = pipe.named_steps["log"].columns
    assert "nfl_pg_ml" not in logged and "t2_lesion_volume_ml" in logged


def test_calibration_keeps_class_weights_and_copes_with_rare_classes():
    X, y = _cohort()
    y = y.copy()
    y[np.flatnonzero(y == "MS")[2:]] = "ALS"  # MS: 2 rows, fewer than cv=3
    pipe = build_pipeline("xgboost", PARAMS["xgboost"], list(X.columns))
    pipe.fit(X, y)
    calibrated = pipe.named_steps["classifier"]
    assert calibrated.n_splits_ == 2
    for pair in calibrated.calibrated_.calibrated_classifiers_:
        assert isinstance(pair.estimator, BalancedClassifier)
        assert pair.estimator.balanced
    assert [str(c) for c in pipe.classes_] == list(CLASSES)
    np.testing.assert_allclose(pipe.predict_proba(X).sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_a_test_fold_shift_in_a_noise_feature_gains_nothing(family):
    X, y = _cohort(n=240, seed=3)
    rng = np.random.default_rng(4)
    test = np.arange(len(X)) >= 160
    X["fs_noise_mm3"] = rng.normal(0, 1, len(X)) + 3.0 * test  # all classes
    with_noise = list(X.columns)
    without = [c for c in with_noise if c != "fs_noise_mm3"]

    def accuracy(columns):
        pipe = build_pipeline(family, PARAMS[family], columns, seed=0)
        pipe.fit(X[~test][columns], y[~test])
        return (pipe.predict(X[test][columns]) == y[test]).mean()

    assert accuracy(with_noise) <= accuracy(without) + 0.05


def test_fitted_references_come_from_the_training_fold_alone():
    X, y = _cohort(n=150)
    train = np.arange(len(X)) < 100
    pipe = build_pipeline("logreg", PARAMS["logreg"], list(X.columns))
    pipe.fit(X[~train], y[~train])  # fitted on another fold first
    pipe.fit(X[train], y[train])
    frame = ColumnChecker(list(X.columns)).fit_transform(X[train])
    combat = ComBat().fit(frame, y[train])
    norm = NormativeZ().fit(combat.transform(frame), y[train])
    fitted_combat, fitted_norm = (
        pipe.named_steps["harmonize"],
        pipe.named_steps["normative"],
    )
    for name in ("gamma_", "delta_", "beta_", "grand_mean_", "var_pooled_"):
        np.testing.assert_array_equal(
            getattr(fitted_combat, name), getattr(combat, name)
        )
    np.testing.assert_array_equal(fitted_norm.coef_, norm.coef_)
    np.testing.assert_array_equal(fitted_norm.scale_, norm.scale_)
    fresh = clone(pipe).fit(X[train], y[train])
    np.testing.assert_array_equal(fresh.predict_proba(X), pipe.predict_proba(X))


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_search_spaces_feed_the_factory(family):
    trial = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0)).ask()
    params = suggest(family, trial)
    assert set(params) == set(SEARCH_KEYS[family])
    build_pipeline(family, params, ["site", "nfl_pg_ml"])


def test_bad_family_or_params_are_rejected():
    with pytest.raises(ValueError, match="unknown model family 'knn'"):
        build_pipeline("knn", {}, ["a"])
    with pytest.raises(ValueError, match=r"params for 'svm' lack \['gamma'\]"):
        build_pipeline("svm", {"C": 1.0}, ["a"])
    with pytest.raises(ValueError, match="calibrate='platt' is not a calibration"):
        build_pipeline("svm", PARAMS["svm"], ["a"], calibrate="platt")


@pytest.mark.parametrize("method", ["isotonic", "temperature"])
def test_other_calibration_methods_keep_string_classes(method):
    X, y = _cohort()
    pipe = build_pipeline("logreg", PARAMS["logreg"], list(X.columns), calibrate=method)
    pipe.fit(X, y)
    assert [str(c) for c in pipe.classes_] == list(CLASSES)
    np.testing.assert_allclose(pipe.predict_proba(X).sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_fitted_pipelines_round_trip_through_skops(family):
    sio = pytest.importorskip("skops.io")  # MLflow's sklearn serialisation
    X, y = _cohort()
    pipe = build_pipeline(family, PARAMS[family], list(X.columns)).fit(X, y)
    blob = sio.dumps(pipe)
    assert set(sio.get_untrusted_types(data=blob)) <= set(SKOPS_TRUSTED_TYPES)
    loaded = sio.loads(blob, trusted=list(SKOPS_TRUSTED_TYPES))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
