"""ComBat removes known site effects, learns them from training controls only,
flags unseen sites and never needs labels to transform."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

from models.harmonize import ComBat

FEATURES = [f"fs_region{k}_mm3" for k in range(6)]
SHIFT = {"siteA": 0.0, "siteB": 2.0, "siteC": -1.0}
SCALE = {"siteA": 1.0, "siteB": 2.0, "siteC": 0.5}


def _cohort(n_per_site=80, seed=0, als_shift=0.0) -> tuple:
    """Half controls, half ALS per site; features = 10 + age + sex + site effects."""
    rng = np.random.default_rng(seed)
    rows = []
    for site in SHIFT:
        for j in range(n_per_site):
            dx = "HC" if j % 2 == 0 else ("ALS" if site == "siteA" else "MS")
            rows.append((site, dx, rng.uniform(40, 80), float(rng.integers(0, 2))))
    X = pd.DataFrame(rows, columns=["site", "dx", "age", "male"])
    y = X.pop("dx").to_numpy()
    base = 10 + 0.05 * (X["age"].to_numpy() - 60) + 0.5 * X["male"].to_numpy()
    for f in FEATURES:
        eps = rng.normal(size=len(X))
        effect = als_shift * (y == "ALS")
        X[f] = (
            base
            + effect
            + X["site"].map(SHIFT).to_numpy()
            + X["site"].map(SCALE).to_numpy() * eps
        )
    X["nfl_pg_ml"] = rng.lognormal(2.5, 0.3, len(X))  # not imaging: untouched
    X["mrs_naa_rejected"] = rng.integers(0, 2, len(X)).astype(float)  # a flag
    return X, y


def _site_stats(values, site, y):
    """Mean and SD of the controls' ``values`` per site."""
    return values[y == "HC"].groupby(site[y == "HC"]).agg(["mean", "std"])


def test_known_site_effects_are_removed():
    X, y = _cohort(n_per_site=300)
    out = ComBat().fit(X, y).transform(X)
    for f in FEATURES:
        before = _site_stats(X[f], X["site"], y)
        after = _site_stats(out[f], X["site"], y)
        assert np.ptp(before["mean"]) > 2.5 and np.ptp(after["mean"]) < 0.35
        assert before["std"].max() / before["std"].min() > 2
        assert after["std"].max() / after["std"].min() < 1.3
    average = _site_stats(out[FEATURES].mean(axis=1), X["site"], y)
    assert np.ptp(average["mean"]) < 0.1
    pd.testing.assert_series_equal(out["nfl_pg_ml"], X["nfl_pg_ml"])
    pd.testing.assert_series_equal(out["mrs_naa_rejected"], X["mrs_naa_rejected"])
    assert "site" not in out and (out["site_unseen"] == 0).all()
    assert list(out.columns) == list(ComBat().fit(X, y).get_feature_names_out())


def test_without_shrinkage_reference_sites_match_exactly():
    X, y = _cohort()
    combat = ComBat(eb=False).fit(X, y)
    out = combat.transform(X)
    hc = y == "HC"
    resid = out[FEATURES].to_numpy() - combat.grand_mean_
    resid -= (X[["age", "male"]].to_numpy() - combat.covariate_means_) @ (
        combat.beta_.T
    )
    site_means = pd.DataFrame(resid[hc]).groupby(X["site"][hc].to_numpy()).mean()
    np.testing.assert_allclose(site_means.to_numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(combat.beta_[:, 0], 0.05, atol=0.03)  # age


def test_site_effects_come_from_controls_only():
    X, y = _cohort(als_shift=3.0)

    def effect_size(out, hc=y == "HC"):
        """ALS minus control mean, in control SDs, averaged over the features."""
        values = out[FEATURES]
        diff = values[y == "ALS"].mean() - values[hc].mean()
        return (diff / values[hc].std()).mean()

    raw = effect_size(X, hc=(y == "HC") & (X["site"] == "siteA"))  # ALS: siteA
    controls = effect_size(ComBat().fit(X, y).transform(X))
    everyone = effect_size(ComBat(reference=None).fit(X, y).transform(X))
    assert raw > 2.5
    assert controls == pytest.approx(raw, abs=0.3)  # disease effect kept
    assert everyone < raw / 2  # much of it mistaken for a scanner effect


def test_transform_needs_no_labels():
    assert list(inspect.signature(ComBat.transform).parameters) == ["self", "X"]
    X, y = _cohort()
    combat = ComBat().fit(X, y)
    pd.testing.assert_frame_equal(combat.transform(X), combat.transform(X.copy()))


def test_unseen_and_missing_sites_are_flagged_and_passed_through():
    X, y = _cohort()
    combat = ComBat().fit(X, y)
    new = X.iloc[:6].copy()
    new["site"] = ["siteZ", "siteZ", "siteA", None, "siteB", "siteZ"]
    with pytest.warns(UserWarning, match=r"4 row\(s\).*siteZ") as record:
        out = combat.transform(new)
    assert "<missing>" in str(record[0].message)
    unseen = np.array([1, 1, 0, 1, 0, 1], dtype=float)
    np.testing.assert_array_equal(out["site_unseen"], unseen)
    flagged = unseen == 1
    np.testing.assert_array_equal(
        out[FEATURES][flagged].to_numpy(), new[FEATURES][flagged].to_numpy()
    )
    assert not np.allclose(out[FEATURES][~flagged], new[FEATURES][~flagged])


def test_one_subject_site_and_missing_values_stay_finite():
    X, y = _cohort()
    X.loc[::7, FEATURES[0]] = np.nan
    lone = X.iloc[[1]].assign(site="siteD")
    X, y = pd.concat([X, lone], ignore_index=True), np.append(y, "ALS")
    with pytest.warns(UserWarning, match=r"siteD \(6 feature"):
        combat = ComBat().fit(X, y)
    assert list(combat.fallback_sites_) == ["siteD"]
    out = combat.transform(X)
    observed = X[FEATURES].notna().to_numpy()
    assert np.isfinite(out[FEATURES].to_numpy()[observed]).all()
    assert out[FEATURES].isna().equals(X[FEATURES].isna())
    assert list(combat.sites_) == ["siteA", "siteB", "siteC", "siteD"]
    assert np.isfinite(combat.gamma_[3]).all()
    assert (combat.delta_[3] == 1.0).all()  # location only


def test_site_without_training_values_of_a_feature_is_reported():
    X, y = _cohort()
    X.loc[X["site"] == "siteC", FEATURES[0]] = np.nan
    combat = ComBat().fit(X, y)
    assert np.isnan(combat.gamma_[2, 0]) and list(combat.features_) == FEATURES
    new = X[X["site"] == "siteC"].head(3).assign(**{FEATURES[0]: 1.0})
    with pytest.warns(UserWarning, match=r"siteC had no training values.*region0"):
        out = combat.transform(new)
    np.testing.assert_array_equal(out[FEATURES[0]], 1.0)


def test_parameters_are_learned_per_fit():
    X, y = _cohort()
    half = np.random.default_rng(1).random(len(X)) < 0.5
    a = ComBat().fit(X[half], y[half])
    b = ComBat().fit(X[~half], y[~half])
    assert not np.allclose(a.gamma_, b.gamma_)
    again = ComBat().fit(X[half], y[half])
    np.testing.assert_array_equal(a.gamma_, again.gamma_)


def test_errors_name_the_column_and_the_fix():
    X, y = _cohort()
    with pytest.raises(ValueError, match="column named 'site'.*Add the site column"):
        ComBat().fit(X.drop(columns="site"), y)
    combat = ComBat().fit(X, y)
    with pytest.raises(ValueError, match="column named 'site'"):
        combat.transform(X.drop(columns="site"))
    with pytest.raises(ValueError, match=r"lacks 1 harmonised column.*region2"):
        combat.transform(X.drop(columns=FEATURES[2]))
    with pytest.raises(
        ValueError, match="needs the diagnosis labels y.*reference=None"
    ):
        ComBat().fit(X)
    with pytest.raises(ValueError, match=r"y has shape \(3,\)"):
        ComBat().fit(X, y[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ComBat(reference=None).fit(X)  # no labels needed without a reference
