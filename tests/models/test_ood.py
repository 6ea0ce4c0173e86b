"""The out-of-distribution detector: calibrated on cross-fitted training scores,
flags rows unlike every class, copes with missing features."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models.ood import NearestClassDistance


def _classes(n=300, d=12, seed=0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three Gaussian classes with correlated features, plus a flag column."""
    rng = np.random.default_rng(seed)
    y = np.array(["ALS", "MMN", "HC"])[np.arange(n) % 3]
    shift = {"ALS": 1.5, "MMN": -1.5, "HC": 0.0}
    latent = rng.normal(size=(n, 1))
    X = (
        latent
        + 0.6 * rng.normal(size=(n, d))
        + np.array([shift[c] for c in y])[:, None]
    )
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(d)])
    frame["nfl_pg_ml"] = np.exp(2.5 + (y == "ALS") + rng.normal(0, 0.3, n))
    frame["has_dti"] = 1.0
    frame["site"] = pd.array(["A"] * n, dtype="string")
    return frame, y


def test_flags_about_the_target_rate_of_new_in_distribution_rows():
    X, y = _classes(seed=0)
    det = NearestClassDistance().fit(X, y)
    assert det.threshold_ == 1.0
    assert det.training_flag_rate_ == pytest.approx(0.01, abs=0.01)
    new, _ = _classes(n=3000, seed=1)
    assert det.is_outlier(new).mean() < 0.05
    assert list(det.features_) == [f"f{j}" for j in range(12)] + ["nfl_pg_ml"]


def test_flags_a_row_unlike_every_class():
    X, y = _classes()
    det = NearestClassDistance().fit(X, y)
    new, _ = _classes(n=30, seed=2)
    one_far = new.copy()
    one_far["f3"] = 15.0  # one value no class has (a unit mix-up)
    assert det.is_outlier(one_far).all()
    pattern = new.copy()  # each value plausible, the combination is not
    pattern[[f"f{j}" for j in range(6)]] = 3.0
    pattern[[f"f{j}" for j in range(6, 12)]] = -3.0
    assert det.is_outlier(pattern).mean() > 0.9
    assert np.all(det.score_samples(pattern) > det.score_samples(new).max())


def test_missing_features_use_the_observed_ones_and_all_missing_is_nan():
    X, y = _classes()
    det = NearestClassDistance().fit(X, y)
    new, _ = _classes(n=40, seed=3)
    new.loc[:19, ["f0", "f1", "f2", "f3"]] = np.nan  # a modality not acquired
    scores = det.score_samples(new)
    assert np.isfinite(scores).all()
    assert det.is_outlier(new).mean() < 0.1
    empty = new.head(2).copy()
    empty[list(det.features_)] = np.nan
    assert np.isnan(det.score_samples(empty)).all()
    assert not det.is_outlier(empty).any()


def test_availability_flags_site_and_discrete_columns_are_left_out():
    X, y = _classes()
    X["ncs_any_cb"] = (np.arange(len(X)) % 7 == 0).astype(float)
    det = NearestClassDistance().fit(X, y)
    assert not {"has_dti", "site", "ncs_any_cb"} & set(det.features_)


def test_the_cache_of_precisions_is_not_persisted():
    X, y = _classes()
    det = NearestClassDistance().fit(X, y)
    det.score_samples(X)
    assert "_precisions" in det.__dict__
    copy = pickle.loads(pickle.dumps(det))
    assert "_precisions" not in copy.__dict__
    np.testing.assert_allclose(copy.score_samples(X), det.score_samples(X))


def test_bad_quantile_raises():
    X, y = _classes()
    with pytest.raises(ValueError, match=r"quantile = 1.2; it must lie in \[0.5, 1\)"):
        NearestClassDistance(quantile=1.2).fit(X, y)


def test_label_count_mismatch_raises():
    X, y = _classes()
    with pytest.raises(ValueError, match="y has 10 labels for 300 rows"):
        NearestClassDistance().fit(X, y[:10])


def test_no_varying_column_raises():
    X = pd.DataFrame({"a": np.ones(20), "has_x": np.ones(20)})
    with pytest.raises(ValueError, match="no column varies"):
        NearestClassDistance().fit(X, np.repeat(["x", "y"], 10))


def test_missing_column_at_scoring_raises():
    X, y = _classes()
    det = NearestClassDistance().fit(X, y)
    with pytest.raises(ValueError, match=r"lacks 1 column.*'f5'.*empty columns"):
        det.score_samples(X.drop(columns=["f5"]))
