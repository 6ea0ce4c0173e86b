"""Normative z-scores are 0 at the controls' age- and sex-matched prediction, carry no
age trend among controls, and fall back (with a warning) when controls are few."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.normative import NormativeZ


def _cohort(n=120, seed=0) -> tuple[pd.DataFrame, np.ndarray]:
    """Controls and ALS; thickness thins with age, NfL rises, both worse in ALS."""
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 3 == 0, "ALS", "HC")
    age = rng.uniform(30, 85, n)
    male = rng.integers(0, 2, n).astype(float)
    als = (y == "ALS").astype(float)
    X = pd.DataFrame(
        {
            "age": age,
            "male": male,
            "fs_thickness_mm": 3.2
            - 0.01 * age
            + 0.05 * male
            - 0.3 * als
            + rng.normal(0, 0.08, n),
            "nfl_pg_ml": np.exp(1.5 + 0.02 * age + 1.2 * als + rng.normal(0, 0.3, n)),
            "mrs_naa_rejected": rng.integers(0, 2, n).astype(float),
            "alsfrs_r": rng.uniform(20, 48, n),
        }
    )
    return X, y


def _controls_ols(X, y, column, log=False):
    """Independent least-squares fit on the controls: (coefficients, residual SD)."""
    hc = y == "HC"
    v = X[column].to_numpy()[hc]
    v = np.log1p(v) if log else v
    D = np.column_stack([np.ones(hc.sum()), X["age"][hc], X["male"][hc]])
    coef, *_ = np.linalg.lstsq(D, v, rcond=None)
    resid = v - D @ coef
    return coef, np.sqrt(resid @ resid / (len(v) - 3))


@pytest.mark.parametrize(
    "column, log", [("fs_thickness_mm", False), ("nfl_pg_ml", True)]
)
def test_z_is_zero_at_the_controls_prediction(column, log):
    X, y = _cohort()
    norm = NormativeZ().fit(X, y)
    coef, sd = _controls_ols(X, y, column, log=log)
    new = pd.DataFrame({"age": [50.0, 70.0], "male": [1.0, 0.0]})
    predicted = coef[0] + coef[1] * new["age"] + coef[2] * new["male"]
    new[column] = predicted + np.array([0.0, sd])  # on the modelled scale
    if log:
        new[column] = np.expm1(new[column])
    for other in X.columns.difference(new.columns):
        new[other] = 1.0
    z = norm.transform(new[X.columns])
    np.testing.assert_allclose(z[column], [0.0, 1.0], atol=1e-9)


def test_age_trend_is_removed_among_controls():
    X, y = _cohort()
    z = NormativeZ().fit(X, y).transform(X)
    hc = y == "HC"
    for column in ("fs_thickness_mm", "nfl_pg_ml"):
        assert abs(np.corrcoef(X[column][hc], X["age"][hc])[0, 1]) > 0.5
        assert abs(np.corrcoef(z[column][hc], X["age"][hc])[0, 1]) < 1e-8
        assert z[column][hc].std() == pytest.approx(1.0, abs=0.05)
    assert z["fs_thickness_mm"][~hc].mean() < -2  # ALS thinning kept
    assert z["nfl_pg_ml"][~hc].mean() > 2
    pd.testing.assert_series_equal(z["alsfrs_r"], X["alsfrs_r"])  # not selected
    pd.testing.assert_series_equal(z["mrs_naa_rejected"], X["mrs_naa_rejected"])


def test_too_few_controls_fall_back_to_all_rows_with_a_warning():
    X, y = _cohort()
    X.loc[y == "HC", "nfl_pg_ml"] = np.nan
    X.loc[np.flatnonzero(y == "HC")[:3], "nfl_pg_ml"] = 10.0
    with pytest.warns(UserWarning, match=r"1 feature\(s\).*fewer than 5 'HC'.*nfl"):
        norm = NormativeZ().fit(X, y)
    assert norm.fallback_ == ["nfl_pg_ml"]
    values = np.log1p(X["nfl_pg_ml"])
    expected = (values - values.mean()) / values.std()
    z = norm.transform(X)
    np.testing.assert_allclose(z["nfl_pg_ml"], expected, atol=1e-12)
    assert z["nfl_pg_ml"].isna().equals(X["nfl_pg_ml"].isna())


def test_keep_raw_appends_z_columns():
    X, y = _cohort()
    norm = NormativeZ(keep_raw=True).fit(X, y)
    out = norm.transform(X)
    assert list(out.columns) == list(norm.get_feature_names_out())
    assert list(out.columns[-2:]) == ["z_fs_thickness_mm", "z_nfl_pg_ml"]
    pd.testing.assert_frame_equal(out[X.columns], X)
    replaced = NormativeZ().fit(X, y).transform(X)
    np.testing.assert_allclose(out["z_nfl_pg_ml"], replaced["nfl_pg_ml"])


def test_missing_covariates_are_filled_with_the_training_mean():
    X, y = _cohort()
    norm = NormativeZ().fit(X, y)
    new = X.iloc[:2].copy()
    new["age"] = np.nan
    filled = new.assign(age=X["age"].mean())
    pd.testing.assert_frame_equal(
        norm.transform(new).drop(columns="age"),
        norm.transform(filled).drop(columns="age"),
    )


def test_errors_say_what_to_do():
    X, y = _cohort()
    with pytest.raises(TypeError, match="pandas DataFrame.*after ColumnChecker"):
        NormativeZ().fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="needs the diagnosis labels y"):
        NormativeZ().fit(X)
    norm = NormativeZ().fit(X, y)
    with pytest.raises(ValueError, match=r"lacks 1 column.*nfl_pg_ml"):
        norm.transform(X.drop(columns="nfl_pg_ml"))
