"""The statistical tests of analysis plans, each returning tidy result rows.

Every function takes plain arrays or a DataFrame of complete cases and returns a
list of dicts with (a subset of) the columns of :data:`RESULT_COLUMNS`; the plan
runner (:mod:`training.analysis.run`) adds the plan, measure, stratum, family and the
multiplicity-adjusted p. The models and exact tests come from statsmodels (OLS,
logistic regression, F tests of linear hypotheses, VIF, Wilson intervals) and
scipy (Welch t, Mann-Whitney, Kruskal-Wallis, Fisher's exact test with the
conditional odds ratio and its exact interval); what neither offers is written
here: partial correlation by residualisation, the Fisher-z interval of a
correlation, a Hodges-Lehmann shift with a bootstrap interval, and the stratified
bootstrap interval of an AUC. Repeated visits are in
:mod:`training.analysis.longitudinal`.

Conventions: of two groups ``a`` is the reference (e.g. controls) and ``b`` the
comparison, so a difference is ``b - a``; intervals are 95 %.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from common.statistics import (
    LEVEL,
    marker_direction,
    oriented_auc,
    wilson,
)

#: Columns of the tidy results table, in order.
RESULT_COLUMNS: tuple[str, ...] = (
    "plan", "measure", "test", "variable", "term", "group_a", "group_b", "stratum",
    "n", "n_a", "n_b", "value_a", "value_b", "estimate", "estimate_name",
    "ci_low", "ci_high", "statistic", "statistic_name", "df", "p", "p_adjusted",
    "family", "effect_size", "effect_size_name", "r2", "vif", "covariates",
    "harmonized", "note",
)  # fmt: skip
_Z = stats.norm.ppf(0.5 + LEVEL / 2)


def _n(x) -> int:
    return int(np.size(x))


def _summary(a: np.ndarray, b: np.ndarray) -> dict:
    return {
        "n": _n(a) + _n(b),
        "n_a": _n(a),
        "n_b": _n(b),
        "value_a": float(np.mean(a)),
        "value_b": float(np.mean(b)),
    }


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference ``b - a`` with the small-sample correction.

    Examples
    --------
    >>> round(hedges_g(np.array([1.0, 2, 3]), np.array([3.0, 4, 5])), 3)
    1.6
    """
    na, nb = len(a), len(b)
    pooled = math.sqrt(
        ((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2)
    )
    if pooled == 0:
        return math.nan
    return float((np.mean(b) - np.mean(a)) / pooled * (1 - 3 / (4 * (na + nb) - 9)))


def welch(a: np.ndarray, b: np.ndarray) -> list[dict]:
    """Welch's t test of ``b - a``: the mean difference, its Welch-Satterthwaite
    interval, t, df and p, with Hedges' g."""
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(LEVEL)
    return [
        {
            **_summary(a, b),
            "term": "mean difference",
            "estimate": float(np.mean(b) - np.mean(a)),
            "estimate_name": "mean difference (b - a)",
            "ci_low": float(ci.low),
            "ci_high": float(ci.high),
            "statistic": float(res.statistic),
            "statistic_name": "t",
            "df": float(res.df),
            "p": float(res.pvalue),
            "effect_size": hedges_g(a, b),
            "effect_size_name": "Hedges g",
        }
    ]


def hodges_lehmann(a: np.ndarray, b: np.ndarray) -> float:
    """Median of all pairwise differences ``b_j - a_i`` (the Hodges-Lehmann shift).

    Examples
    --------
    >>> hodges_lehmann(np.array([1.0, 2.0]), np.array([4.0, 6.0]))
    3.5
    """
    return float(np.median(np.subtract.outer(b, a)))


def mann_whitney(
    a: np.ndarray, b: np.ndarray, n_boot: int, rng: np.random.Generator
) -> list[dict]:
    """Mann-Whitney U test: Hodges-Lehmann shift ``b - a`` with a bootstrap
    interval (groups resampled separately), U, p, and the rank-biserial
    correlation (2 P(b > a) - 1)."""
    res = stats.mannwhitneyu(b, a, alternative="two-sided")
    boot = [
        hodges_lehmann(rng.choice(a, len(a)), rng.choice(b, len(b)))
        for _ in range(n_boot)
    ]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return [
        {
            **_summary(a, b),
            "value_a": float(np.median(a)),
            "value_b": float(np.median(b)),
            "term": "location shift",
            "estimate": hodges_lehmann(a, b),
            "estimate_name": "Hodges-Lehmann shift (b - a); values are medians",
            "ci_low": float(lo),
            "ci_high": float(hi),
            "statistic": float(res.statistic),
            "statistic_name": "U",
            "p": float(res.pvalue),
            "effect_size": 2 * float(res.statistic) / (len(a) * len(b)) - 1,
            "effect_size_name": "rank-biserial r",
        }
    ]


def kruskal(
    values: dict[str, np.ndarray], n_boot: int, rng: np.random.Generator
) -> list[dict]:
    """Kruskal-Wallis H over all groups, then Mann-Whitney for each pair."""
    names = list(values)
    res = stats.kruskal(*values.values())
    n = sum(_n(v) for v in values.values())
    rows = [
        {
            "term": "group (omnibus)",
            "group_a": names[0],
            "group_b": " / ".join(names[1:]),
            "n": n,
            "statistic": float(res.statistic),
            "statistic_name": "H",
            "df": len(names) - 1,
            "p": float(res.pvalue),
            "effect_size": (float(res.statistic) - len(names) + 1) / (n - len(names)),
            "effect_size_name": "epsilon squared",
        }
    ]
    for i, ga in enumerate(names):
        for gb in names[i + 1 :]:
            (row,) = mann_whitney(values[ga], values[gb], n_boot, rng)
            rows.append({**row, "group_a": ga, "group_b": gb, "note": "post hoc pair"})
    return rows


def _design(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    import statsmodels.api as sm

    return sm.add_constant(frame[list(columns)].astype(float), has_constant="add")


def ancova(
    y: np.ndarray,
    group: np.ndarray,
    names: Sequence[str],
    covariates: pd.DataFrame,
) -> list[dict]:
    """Linear model ``y ~ group + covariates`` (ANCOVA; a one-way ANOVA without
    covariates) fitted by OLS.

    Two groups give one row: the covariate-adjusted difference ``b - a`` with its
    interval, t and p, and the adjusted standardised difference (difference / root
    mean squared error). Three or more give the omnibus F test of the group term
    and one row per pair, each a t test of the pair's contrast in the same model.
    """
    import statsmodels.api as sm

    X = pd.DataFrame({f"g{k}": (group == g).astype(float) for k, g in enumerate(names)})
    X = X.iloc[:, 1:]  # the first group is the reference
    X = pd.concat([X, covariates.reset_index(drop=True).astype(float)], axis=1)
    fit = sm.OLS(np.asarray(y, float), sm.add_constant(X, has_constant="add")).fit()
    rmse = math.sqrt(fit.mse_resid)
    means = {g: float(np.mean(y[group == g])) for g in names}
    counts = {g: int((group == g).sum()) for g in names}
    rows = []
    if len(names) > 2:
        R = np.zeros((len(names) - 1, len(fit.params)))
        R[:, 1 : len(names)] = np.eye(len(names) - 1)
        f = fit.f_test(R)
        rows.append(
            {
                "term": "group (omnibus)",
                "group_a": names[0],
                "group_b": " / ".join(names[1:]),
                "n": int(fit.nobs),
                "statistic": float(np.squeeze(f.fvalue)),
                "statistic_name": "F",
                "df": f"{int(f.df_num)}, {int(f.df_denom)}",
                "p": float(f.pvalue),
                "effect_size": float(
                    np.squeeze(f.fvalue)
                    * f.df_num
                    / (np.squeeze(f.fvalue) * f.df_num + f.df_denom)
                ),
                "effect_size_name": "partial eta squared",
                "r2": float(fit.rsquared),
            }
        )
    for i, ga in enumerate(names):
        for gb in names[i + 1 :]:
            c = np.zeros(len(fit.params))
            if i > 0:
                c[i] = -1.0
            c[names.index(gb)] = 1.0
            t = fit.t_test(c)
            lo, hi = np.asarray(t.conf_int(alpha=1 - LEVEL)).ravel()
            effect = float(np.squeeze(t.effect))
            rows.append(
                {
                    "term": f"group {gb} vs {ga}",
                    "group_a": ga,
                    "group_b": gb,
                    "n": int(fit.nobs),
                    "n_a": counts[ga],
                    "n_b": counts[gb],
                    "value_a": means[ga],
                    "value_b": means[gb],
                    "estimate": effect,
                    "estimate_name": "adjusted difference (b - a)",
                    "ci_low": float(lo),
                    "ci_high": float(hi),
                    "statistic": float(np.squeeze(t.tvalue)),
                    "statistic_name": "t",
                    "df": float(fit.df_resid),
                    "p": float(np.squeeze(t.pvalue)),
                    "effect_size": effect / rmse if rmse > 0 else math.nan,
                    "effect_size_name": "adjusted d (difference / RMSE)",
                    "r2": float(fit.rsquared),
                    "note": "post hoc pair" if len(names) > 2 else "",
                }
            )
    return rows


def _residuals(v: np.ndarray, covariates: pd.DataFrame) -> np.ndarray:
    import statsmodels.api as sm

    Z = sm.add_constant(covariates.astype(float).to_numpy(), has_constant="add")
    beta, *_ = np.linalg.lstsq(Z, v, rcond=None)
    return v - Z @ beta


def correlation(
    x: np.ndarray,
    y: np.ndarray,
    method: str = "pearson",
    covariates: pd.DataFrame | None = None,
) -> list[dict]:
    """Pearson or Spearman correlation, partial on ``covariates`` when given.

    The partial correlation correlates the residuals of ``x`` and ``y`` (their
    ranks, for Spearman) after a linear regression on the covariates; t = r
    sqrt(df / (1 - r^2)) with df = n - 2 - k (k covariates), which reproduces
    scipy's pearsonr and spearmanr p-values when k = 0; the interval is Fisher's
    z with standard error 1 / sqrt(n - 3 - k).
    """
    k = 0 if covariates is None else covariates.shape[1]
    if method == "spearman":
        x, y = stats.rankdata(x), stats.rankdata(y)
    x, y = np.asarray(x, float), np.asarray(y, float)
    if k:
        cov = covariates.copy()
        if method == "spearman":
            cov = cov.apply(stats.rankdata)
        x, y = _residuals(x, cov), _residuals(y, cov)
    n = len(x)
    r = float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 and np.std(y) > 0 else math.nan
    df = n - 2 - k
    row = {
        "n": n,
        "estimate": r,
        "estimate_name": ("partial " if k else "")
        + ("rho" if method == "spearman" else "r"),
        "statistic_name": "t",
        "df": float(df),
        "term": "correlation",
    }
    if math.isfinite(r) and df > 1 and abs(r) < 1:
        t = r * math.sqrt(df / (1 - r * r))
        z, se = math.atanh(r), 1 / math.sqrt(n - 3 - k)
        row.update(
            statistic=t,
            p=float(2 * stats.t.sf(abs(t), df)),
            ci_low=math.tanh(z - _Z * se),
            ci_high=math.tanh(z + _Z * se),
        )
    else:
        row["note"] = f"not computable: n = {n}, {k} covariate(s), r = {r:.3g}"
    return [row]


def vif(X: pd.DataFrame) -> dict[str, float]:
    """Variance inflation factor of each column of ``X`` (an intercept is added)."""
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    Z = _design(X, X.columns)
    return {
        c: float(variance_inflation_factor(Z.to_numpy(), i + 1))
        for i, c in enumerate(X.columns)
    }


def ols(y: np.ndarray, X: pd.DataFrame) -> list[dict]:
    """Multivariable linear regression of ``y`` on the columns of ``X``.

    One row for the model (R^2, its F test; adjusted R^2 as the effect size) and
    one per term: coefficient, interval, t, p and VIF.
    """
    import statsmodels.api as sm

    fit = sm.OLS(np.asarray(y, float), _design(X, X.columns)).fit()
    model = {
        "term": "model",
        "n": int(fit.nobs),
        "estimate": float(fit.rsquared),
        "estimate_name": "R^2",
        "statistic": float(fit.fvalue),
        "statistic_name": "F",
        "df": f"{int(fit.df_model)}, {int(fit.df_resid)}",
        "p": float(fit.f_pvalue),
        "effect_size": float(fit.rsquared_adj),
        "effect_size_name": "adjusted R^2",
        "r2": float(fit.rsquared),
    }
    terms = _terms(fit, X, float(fit.rsquared), "coefficient", "t", float(fit.df_resid))
    return [model, *terms]


def _terms(fit, X: pd.DataFrame, r2: float, name: str, stat: str, df) -> list[dict]:
    """One row per column of ``X`` from a fitted statsmodels model: the estimate
    (exponentiated for odds ratios), its interval, the test statistic, p, VIF."""
    scale = np.exp if name.startswith("odds ratio") else float
    ci = fit.conf_int(alpha=1 - LEVEL)
    inflation = vif(X) if X.shape[1] > 1 else dict.fromkeys(X.columns, 1.0)
    return [
        {
            "term": c,
            "n": int(fit.nobs),
            "estimate": float(scale(fit.params[c])),
            "estimate_name": name,
            "ci_low": float(scale(ci.loc[c, 0])),
            "ci_high": float(scale(ci.loc[c, 1])),
            "statistic": float(fit.tvalues[c]),
            "statistic_name": stat,
            "df": df,
            "p": float(fit.pvalues[c]),
            "r2": r2,
            "vif": inflation[c],
        }
        for c in X.columns
    ]


def logit(y: np.ndarray, X: pd.DataFrame) -> list[dict]:
    """Logistic regression of a 0/1 outcome on the columns of ``X``: odds ratio per
    unit of each term with its Wald interval, z and p, and McFadden's pseudo-R^2
    with the likelihood-ratio test for the model. Complete or quasi-complete
    separation is reported in the note, with no estimate."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    y = np.asarray(y, float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("error", ConvergenceWarning)
            fit = sm.Logit(y, _design(X, X.columns)).fit(disp=0, maxiter=200)
    except (
        PerfectSeparationError,
        PerfectSeparationWarning,
        ConvergenceWarning,
        np.linalg.LinAlgError,
    ) as exc:
        return [
            {
                "term": "model",
                "n": len(y),
                "note": f"not estimable: {type(exc).__name__} (the predictors "
                "separate the outcome perfectly or the fit did not converge); "
                "report an AUC or a Fisher test instead",
            }
        ]
    model = {
        "term": "model",
        "n": int(fit.nobs),
        "estimate": float(fit.prsquared),
        "estimate_name": "McFadden pseudo-R^2",
        "statistic": float(fit.llr),
        "statistic_name": "likelihood ratio chi2",
        "df": float(fit.df_model),
        "p": float(fit.llr_pvalue),
        "r2": float(fit.prsquared),
    }
    terms = _terms(fit, X, float(fit.prsquared), "odds ratio per unit", "z", None)
    return [model, *terms]


def roc_auc(
    negatives: np.ndarray,
    positives: np.ndarray,
    direction: str,
    cutoffs: Sequence[tuple[str, float]],
    n_boot: int,
    rng: np.random.Generator,
) -> list[dict]:
    """Single-marker AUC of ``positives`` (group b) against ``negatives`` (group a).

    ``direction`` is ``"higher"`` (b expected higher), ``"lower"`` or ``"auto"``
    (the side the data favour; the AUC is then >= 0.5 by construction and
    optimistic, which the note says). The interval is the percentile interval of a
    bootstrap that resamples the groups separately; p is the Mann-Whitney test's.
    Each cutoff ``(label, value)`` adds the sensitivity and the specificity of
    calling b when the marker is beyond it (>= for higher, <= for lower), with
    Wilson intervals.
    """
    note = ""
    if direction == "auto":
        direction = marker_direction(negatives, positives)
        note = f"direction chosen from the data ({direction}): the AUC is optimistic"
    value, lo, hi = oriented_auc(negatives, positives, direction, n_boot, rng)
    mw = stats.mannwhitneyu(positives, negatives, alternative="two-sided")
    base = {**_summary(negatives, positives)}
    rows = [
        {
            **base,
            "term": f"AUC ({direction} in b)",
            "estimate": value,
            "estimate_name": "AUC",
            "ci_low": float(lo),
            "ci_high": float(hi),
            "statistic": float(mw.statistic),
            "statistic_name": "U",
            "p": float(mw.pvalue),
            "note": note,
        }
    ]
    for label, cut in cutoffs:
        called_pos = positives >= cut if direction == "higher" else positives <= cut
        called_neg = negatives < cut if direction == "higher" else negatives > cut
        side = ">=" if direction == "higher" else "<="
        for what, hits, n in (
            ("sensitivity", int(called_pos.sum()), len(positives)),
            ("specificity", int(called_neg.sum()), len(negatives)),
        ):
            ci = wilson(hits, n)
            rows.append(
                {
                    **base,
                    "term": f"{what} at {label} ({side} {cut:.4g})",
                    "estimate": hits / n,
                    "estimate_name": what,
                    "ci_low": ci[0],
                    "ci_high": ci[1],
                    "note": f"{hits} of {n}",
                }
            )
    return rows


def fisher(a: np.ndarray, b: np.ndarray) -> list[dict]:
    """Fisher's exact test of a 0/1 finding in group b vs group a: each group's
    frequency, the conditional maximum-likelihood odds ratio (b vs a) with its
    exact interval, and the two-sided p."""
    from scipy.stats.contingency import odds_ratio

    ka, kb = int(np.sum(a == 1)), int(np.sum(b == 1))
    table = [[kb, len(b) - kb], [ka, len(a) - ka]]
    res = odds_ratio(table, kind="conditional")
    ci = res.confidence_interval(LEVEL)
    return [
        {
            **_summary(a, b),
            "term": "frequency",
            "estimate": float(res.statistic),
            "estimate_name": "odds ratio (b vs a); values are frequencies",
            "ci_low": float(ci.low),
            "ci_high": float(ci.high),
            "statistic_name": "Fisher exact",
            "p": float(stats.fisher_exact(table).pvalue),
            "effect_size": kb / len(b) - ka / len(a),
            "effect_size_name": "risk difference (b - a)",
            "note": f"{kb}/{len(b)} vs {ka}/{len(a)}"
            + (
                "; a zero cell: the odds ratio is unbounded"
                if 0 in (ka, kb, len(a) - ka, len(b) - kb)
                else ""
            ),
        }
    ]
