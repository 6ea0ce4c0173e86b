"""The statistics of repeated visits in analysis plans: the linear mixed model
(random intercept and slope per subject, group x time), first-to-last change with
its annual rate and standardised response mean, and trial sizes from it.

Each function returns tidy result rows with the columns of
:data:`training.analysis.statistics.RESULT_COLUMNS`; intervals are 95 %.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from common.statistics import LEVEL


def mixed_model(
    y: np.ndarray,
    time: np.ndarray,
    subject: np.ndarray,
    group: np.ndarray,
    names: Sequence[str],
    covariates: pd.DataFrame,
) -> list[dict]:
    """Linear mixed model ``y ~ time * group + covariates`` with a random
    intercept and a random slope of time per subject (statsmodels MixedLM, REML).

    Rows: the mean slope of each group with its Wald interval, z and p (the first
    group's slope is the time coefficient, the others add their interaction), and
    for each other group the slope difference from the first (the group x time
    interaction). A fit that did not converge keeps its estimates and says so.
    The outcome is centred and scaled to unit SD for the optimiser (estimates and
    intervals are reported in its own units); the optimisers are tried in turn
    (L-BFGS, then BFGS, CG and Powell) until one converges. A variance component
    estimated at zero ("on the boundary") is a converged fit, noted.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    y = np.asarray(y, float)
    centre, scale = float(np.mean(y)), float(np.std(y)) or 1.0
    time = np.asarray(time, float)
    X = pd.DataFrame({"const": 1.0, "time": time})
    for g in names[1:]:
        X[f"group {g}"] = (group == g) * 1.0
        X[f"time x {g}"] = time * (group == g)
    X = pd.concat([X, covariates.reset_index(drop=True).astype(float)], axis=1)
    Z = np.column_stack([np.ones(len(time)), time])
    model = sm.MixedLM((y - centre) / scale, X, groups=subject, exog_re=Z)
    for method in ("lbfgs", "bfgs", "cg", "powell"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            fit = model.fit(reml=True, method=method)
        trouble = [str(w.message) for w in caught if w.category is ConvergenceWarning]
        # "on the boundary": a variance component estimated at zero is a fit.
        if fit.converged and all("boundary" in t for t in trouble):
            break
    if trouble and fit.converged and all("boundary" in t for t in trouble):
        note = "a random-effect variance is estimated at zero (on the boundary)"
    else:
        note = f"did not converge cleanly: {trouble[0]}" if trouble else ""
    k = len(fit.fe_params)
    subjects = {g: len(set(subject[group == g])) for g in names}
    rows = []
    for g in names:
        c = np.zeros(k)
        c[1] = 1.0
        if g != names[0]:
            c[list(X.columns).index(f"time x {g}")] = 1.0
        rows.append(_contrast(fit, c, f"slope in {g}", "slope per time unit", scale))
        rows[-1].update(group_a=g, n=int((group == g).sum()), n_a=subjects[g])
    for g in names[1:]:
        c = np.zeros(k)
        c[list(X.columns).index(f"time x {g}")] = 1.0
        rows.append(
            _contrast(
                fit,
                c,
                f"time x group {g} vs {names[0]}",
                "slope difference (b - a)",
                scale,
            )
        )
        rows[-1].update(group_a=names[0], group_b=g, n=int(fit.nobs))
    for r in rows:
        r["note"] = note
    return rows


def _contrast(fit, c: np.ndarray, term: str, name: str, scale: float = 1.0) -> dict:
    t = fit.t_test(c[None, :])  # over the fixed effects
    lo, hi = np.asarray(t.conf_int(alpha=1 - LEVEL)).ravel() * scale
    return {
        "term": term,
        "estimate": float(np.squeeze(t.effect)) * scale,
        "estimate_name": name,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "statistic": float(np.squeeze(t.tvalue)),
        "statistic_name": "z",
        "p": float(np.squeeze(t.pvalue)),
    }


def trial_size(srm: float, slowing: float, alpha: float = 0.05, power: float = 0.8):
    """Participants per arm to detect ``slowing`` (e.g. 0.25) of a mean change whose
    standardised response mean is ``srm``: two-sample normal approximation,
    n = 2 (z_{1-alpha/2} + z_{power})^2 / (slowing x SRM)^2, rounded up.

    Examples
    --------
    >>> trial_size(1.0, 0.5)
    63
    """
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(2 * z**2 / (slowing * srm) ** 2)


def change(baseline: np.ndarray, follow: np.ndarray, years: np.ndarray) -> list[dict]:
    """Baseline vs follow-up of the same subjects.

    Rows: the mean change (follow-up - baseline) with its paired-t interval and p
    (effect size: the standardised response mean, mean / SD of the change); the
    median change with the Wilcoxon signed-rank p; the annual rate (change / years
    between the visits) with its SRM; and the participants per arm a two-arm trial
    needs (80 % power, two-sided 5 %) to detect a 25 % and a 50 % slowing of that
    rate.
    """
    d = np.asarray(follow, float) - np.asarray(baseline, float)
    n = len(d)
    res = stats.ttest_rel(follow, baseline)
    ci = res.confidence_interval(LEVEL)
    sd = float(np.std(d, ddof=1))
    base = {
        "n": n,
        "value_a": float(np.mean(baseline)),
        "value_b": float(np.mean(follow)),
    }
    rows = [
        {
            **base,
            "term": "mean change",
            "estimate": float(np.mean(d)),
            "estimate_name": "mean change (follow-up - baseline)",
            "ci_low": float(ci.low),
            "ci_high": float(ci.high),
            "statistic": float(res.statistic),
            "statistic_name": "paired t",
            "df": float(n - 1),
            "p": float(res.pvalue),
            "effect_size": float(np.mean(d)) / sd if sd > 0 else math.nan,
            "effect_size_name": "standardised response mean",
        }
    ]
    if np.any(d != 0):
        w = stats.wilcoxon(follow, baseline)
        rows.append(
            {
                **base,
                "term": "median change",
                "estimate": float(np.median(d)),
                "estimate_name": "median change",
                "statistic": float(w.statistic),
                "statistic_name": "Wilcoxon W",
                "p": float(w.pvalue),
            }
        )
    rate = d / np.asarray(years, float)
    srm = float(np.mean(rate) / np.std(rate, ddof=1)) if n > 1 else math.nan
    lo, hi = stats.t.interval(LEVEL, n - 1, np.mean(rate), stats.sem(rate))
    rows.append(
        {
            **base,
            "term": "annual rate",
            "estimate": float(np.mean(rate)),
            "estimate_name": "change per year",
            "ci_low": float(lo),
            "ci_high": float(hi),
            "effect_size": srm,
            "effect_size_name": "standardised response mean",
        }
    )
    for slowing in (0.25, 0.5):
        rows.append(
            {
                **base,
                "term": f"participants per arm, {slowing:.0%} slowing",
                "estimate": float(trial_size(abs(srm), slowing)) if srm else math.nan,
                "estimate_name": "n per arm (80 % power, two-sided 5 %)",
                "effect_size": srm,
                "effect_size_name": "standardised response mean of the rate",
            }
        )
    return rows
