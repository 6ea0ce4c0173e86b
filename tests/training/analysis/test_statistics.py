"""The analysis tests against hand computations and reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from training.analysis import statistics as st


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_ols_matches_the_normal_equations_by_hand(rng):
    n = 40
    X = pd.DataFrame({"zsum": rng.normal(0, 3, n), "penn": rng.integers(0, 20, n)})
    y = 0.55 + 0.004 * X["zsum"] - 0.002 * X["penn"] + rng.normal(0, 0.02, n)
    rows = {r["term"]: r for r in st.ols(y.to_numpy(), X)}

    Z = np.column_stack([np.ones(n), X.to_numpy(float)])
    inv = np.linalg.inv(Z.T @ Z)
    beta = inv @ Z.T @ y.to_numpy()
    resid = y.to_numpy() - Z @ beta
    s2 = resid @ resid / (n - 3)
    se = np.sqrt(np.diag(s2 * inv))
    tcrit = stats.t.ppf(0.975, n - 3)
    r2 = 1 - resid @ resid / np.sum((y - y.mean()) ** 2)
    for k, term in enumerate(["zsum", "penn"], start=1):
        row = rows[term]
        assert row["estimate"] == pytest.approx(beta[k], rel=1e-9)
        assert row["ci_low"] == pytest.approx(beta[k] - tcrit * se[k], rel=1e-9)
        assert row["ci_high"] == pytest.approx(beta[k] + tcrit * se[k], rel=1e-9)
        t = beta[k] / se[k]
        assert row["statistic"] == pytest.approx(t, rel=1e-9)
        assert row["p"] == pytest.approx(2 * stats.t.sf(abs(t), n - 3), rel=1e-9)
        assert row["r2"] == pytest.approx(r2, rel=1e-9)
    # VIF of two predictors = 1 / (1 - r^2) of their correlation
    r = np.corrcoef(X["zsum"], X["penn"])[0, 1]
    assert rows["zsum"]["vif"] == pytest.approx(1 / (1 - r**2), rel=1e-9)
    assert rows["model"]["estimate"] == pytest.approx(r2, rel=1e-9)


def test_ancova_matches_the_pooled_within_group_slope_by_hand(rng):
    """Two groups and one covariate: the adjusted difference is the raw difference
    minus the pooled within-group slope times the covariate difference."""
    n_a, n_b = 25, 30
    g = np.array(["HC"] * n_a + ["ALS"] * n_b, dtype=object)
    age = np.r_[rng.normal(55, 10, n_a), rng.normal(62, 10, n_b)]
    y = 28000 - 40 * age - 1500 * (g == "ALS") + rng.normal(0, 900, n_a + n_b)
    (row,) = st.ancova(y, g, ["HC", "ALS"], pd.DataFrame({"age": age}))

    a, b = g == "HC", g == "ALS"
    sxy = sum(np.sum((age[m] - age[m].mean()) * (y[m] - y[m].mean())) for m in (a, b))
    sxx = sum(np.sum((age[m] - age[m].mean()) ** 2) for m in (a, b))
    slope = sxy / sxx
    adjusted = (y[b].mean() - y[a].mean()) - slope * (age[b].mean() - age[a].mean())
    sse = sum(
        np.sum((y[m] - y[m].mean() - slope * (age[m] - age[m].mean())) ** 2)
        for m in (a, b)
    )
    s2 = sse / (n_a + n_b - 3)
    se = math.sqrt(
        s2 * (1 / n_a + 1 / n_b + (age[b].mean() - age[a].mean()) ** 2 / sxx)
    )
    assert row["estimate"] == pytest.approx(adjusted, rel=1e-9)
    assert row["statistic"] == pytest.approx(adjusted / se, rel=1e-9)
    tcrit = stats.t.ppf(0.975, n_a + n_b - 3)
    assert row["ci_low"] == pytest.approx(adjusted - tcrit * se, rel=1e-9)
    assert row["effect_size"] == pytest.approx(adjusted / math.sqrt(s2), rel=1e-9)
    assert (row["group_a"], row["group_b"], row["n_a"], row["n_b"]) == (
        "HC",
        "ALS",
        25,
        30,
    )


def test_three_group_anova_equals_scipy_and_has_every_pair(rng):
    g = np.repeat(np.array(["HC", "NMO", "MS"], dtype=object), [15, 12, 20])
    y = np.r_[rng.normal(0, 1, 15), rng.normal(0.8, 1, 12), rng.normal(-0.5, 1, 20)]
    rows = st.ancova(y, g, ["HC", "NMO", "MS"], pd.DataFrame(index=range(len(y))))
    omnibus = rows[0]
    ref = stats.f_oneway(y[g == "HC"], y[g == "NMO"], y[g == "MS"])
    assert omnibus["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert omnibus["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    ss = {k: np.sum((y[g == k] - y[g == k].mean()) ** 2) for k in ("HC", "NMO", "MS")}
    ss_total = np.sum((y - y.mean()) ** 2)
    eta2 = 1 - sum(ss.values()) / ss_total  # one way: partial eta^2 = eta^2
    assert omnibus["effect_size"] == pytest.approx(eta2, rel=1e-9)
    pairs = {(r["group_a"], r["group_b"]): r for r in rows[1:]}
    assert set(pairs) == {("HC", "NMO"), ("HC", "MS"), ("NMO", "MS")}
    diff = y[g == "MS"].mean() - y[g == "NMO"].mean()
    assert pairs["NMO", "MS"]["estimate"] == pytest.approx(diff, rel=1e-9)


def test_welch_mann_whitney_and_kruskal_equal_scipy(rng):
    a, b = rng.normal(0, 1, 20), rng.normal(1, 2, 25)
    (w,) = st.welch(a, b)
    va, vb = a.var(ddof=1) / 20, b.var(ddof=1) / 25
    df = (va + vb) ** 2 / (va**2 / 19 + vb**2 / 24)
    assert w["df"] == pytest.approx(df, rel=1e-9)
    assert w["statistic"] == pytest.approx((b.mean() - a.mean()) / math.sqrt(va + vb))
    assert w["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    (mw,) = st.mann_whitney(a, b, 200, rng)
    assert mw["p"] == pytest.approx(stats.mannwhitneyu(a, b).pvalue)
    assert mw["effect_size"] == pytest.approx(
        2 * roc_auc_score(np.r_[0 * a, 0 * b + 1], np.r_[a, b]) - 1
    )
    assert mw["ci_low"] < mw["estimate"] < mw["ci_high"]
    c = rng.normal(0.5, 1, 10)
    kw = st.kruskal({"a": a, "b": b, "c": c}, 50, rng)
    assert kw[0]["p"] == pytest.approx(stats.kruskal(a, b, c).pvalue)
    assert len(kw) == 4


def test_partial_correlation_matches_the_textbook_formula(rng):
    n = 60
    z = rng.normal(size=n)
    x = z + rng.normal(size=n)
    y = z + 0.5 * x + rng.normal(size=n)
    (row,) = st.correlation(x, y, "pearson", pd.DataFrame({"z": z}))
    r = np.corrcoef([x, y, z])
    expected = (r[0, 1] - r[0, 2] * r[1, 2]) / math.sqrt(
        (1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2)
    )
    assert row["estimate"] == pytest.approx(expected, rel=1e-9)
    assert row["df"] == n - 3
    (plain,) = st.correlation(x, y, "spearman")
    ref = stats.spearmanr(x, y)
    assert plain["estimate"] == pytest.approx(ref.statistic)
    assert plain["p"] == pytest.approx(ref.pvalue)
    assert plain["ci_low"] < plain["estimate"] < plain["ci_high"]


def test_auc_and_cutoffs_by_hand(rng):
    neg, pos = rng.normal(1.5, 0.1, 40), rng.normal(1.4, 0.1, 30)
    rows = st.roc_auc(neg, pos, "lower", [("fixed cutoff", 1.45)], 300, rng)
    auc = roc_auc_score(np.r_[np.zeros(40), np.ones(30)], -np.r_[neg, pos])
    assert rows[0]["estimate"] == pytest.approx(auc)
    assert rows[0]["ci_low"] < auc < rows[0]["ci_high"]
    sens, spec = rows[1], rows[2]
    assert sens["estimate"] == pytest.approx(np.mean(pos <= 1.45))
    assert spec["estimate"] == pytest.approx(np.mean(neg > 1.45))
    auto = st.roc_auc(neg, pos, "auto", [], 50, rng)[0]
    assert auto["estimate"] == pytest.approx(auc) and "optimistic" in auto["note"]


def test_fisher_reports_frequencies_odds_ratio_and_exact_p():
    a = np.array([1] * 2 + [0] * 6, float)  # MMN 2/8
    b = np.array([1] * 34 + [0] * 26, float)  # ALS 34/60
    (row,) = st.fisher(a, b)
    assert (row["value_a"], row["value_b"]) == (0.25, 34 / 60)
    assert row["p"] == pytest.approx(stats.fisher_exact([[34, 26], [2, 6]]).pvalue)
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    assert row["note"] == "34/60 vs 2/8"


def test_separation_is_reported_not_fitted():
    X = pd.DataFrame({"nfl": [1.0, 2, 3, 4, 10, 11, 12, 13]})
    rows = st.logit(np.array([0, 0, 0, 0, 1, 1, 1, 1.0]), X)
    assert len(rows) == 1 and rows[0]["note"].startswith("not estimable")


def test_logit_odds_ratios_match_statsmodels_by_formula(rng):
    n = 200
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + 1.2 * x)))).astype(float)
    rows = {r["term"]: r for r in st.logit(y, pd.DataFrame({"x": x}))}
    import statsmodels.formula.api as smf

    fit = smf.logit("y ~ x", pd.DataFrame({"x": x, "y": y})).fit(disp=0)
    assert rows["x"]["estimate"] == pytest.approx(math.exp(fit.params["x"]))
    assert rows["x"]["p"] == pytest.approx(fit.pvalues["x"])
