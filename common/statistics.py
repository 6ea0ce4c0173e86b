"""The statistics every stage shares, each written once: the rank AUC, the
direction of a single marker and its AUC with a bootstrap interval, the ROC curve,
Benjamini-Hochberg FDR, Wilson intervals, and per-subject slopes over visits.

The analysis plans' tests (:mod:`training.analysis.statistics`), the training
report (:mod:`training.cohort_summary`, :mod:`training.evaluation`) and monitoring
(:mod:`serve.monitor`) all call these; none keeps a copy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "LEVEL",
    "auc",
    "fdr",
    "marker_direction",
    "oriented_auc",
    "roc_points",
    "subject_slopes",
    "wilson",
]

#: The confidence level of every interval the project reports.
LEVEL = 0.95


def auc(values, positive) -> float | np.ndarray:
    """Mann-Whitney AUC of a binary outcome (ties count 1/2), computed for each row
    of ``values`` when it is 2-D (e.g. bootstrap resamples); NaN without both
    outcomes. The one unweighted AUC of the project; :func:`evaluate` uses its
    weighted form for bootstrap weights.

    Examples
    --------
    >>> auc([0.9, 0.1, 0.5], [True, False, True])
    1.0
    >>> auc([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]], [True, False, True]).tolist()
    [1.0, 0.0]
    """
    values = np.asarray(values, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.full(values.shape[:-1], np.nan) if values.ndim > 1 else np.nan
    ranks = stats.rankdata(values, axis=-1)
    u = ranks[..., positive].sum(axis=-1) - n_pos * (n_pos + 1) / 2
    out = u / (n_pos * n_neg)
    return float(out) if out.ndim == 0 else out


def _flags(negatives: np.ndarray, positives: np.ndarray) -> np.ndarray:
    return np.r_[np.zeros(len(negatives), bool), np.ones(len(positives), bool)]


def marker_direction(negatives: np.ndarray, positives: np.ndarray) -> str:
    """``"higher"`` when the positives' values tend higher (AUC >= 0.5), else
    ``"lower"``: the side the data favour. An AUC computed after choosing the side
    this way is >= 0.5 by construction, hence optimistic; say so where it is shown.

    >>> marker_direction(np.array([1.0, 2.0]), np.array([0.5, 0.7]))
    'lower'
    """
    return (
        "higher"
        if auc(np.r_[negatives, positives], _flags(negatives, positives)) >= 0.5
        else "lower"
    )


def oriented_auc(
    negatives: np.ndarray,
    positives: np.ndarray,
    direction: str,
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """The AUC of calling the positives when the marker is ``direction``
    (``"higher"`` or ``"lower"``), with the percentile interval of a bootstrap that
    resamples each group separately (negatives drawn first).

    >>> rng = np.random.default_rng(0)
    >>> value, lo, hi = oriented_auc(np.array([1.0, 2, 3]), np.array([4.0, 5, 6]),
    ...                              "higher", 200, rng)
    >>> value, lo <= value <= hi
    (1.0, True)
    """
    sign = 1.0 if direction == "higher" else -1.0
    flags = _flags(negatives, positives)
    value = float(auc(sign * np.r_[negatives, positives], flags))
    boot = np.concatenate(
        [
            rng.choice(sign * negatives, (n_boot, len(negatives))),
            rng.choice(sign * positives, (n_boot, len(positives))),
        ],
        axis=1,
    )
    lo, hi = np.percentile(auc(boot, flags), [2.5, 97.5])
    return value, float(lo), float(hi)


def roc_points(
    negatives: np.ndarray, positives: np.ndarray, direction: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empirical ROC curve of calling the positives when the marker is
    ``direction``: false and true positive rates, and the cutoff of each point
    (in the marker's own units; the first point, nothing called, at +-inf).

    >>> fpr, tpr, cut = roc_points(np.array([1.0, 2]), np.array([3.0, 4]), "higher")
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0, 1.0])
    """
    sign = 1.0 if direction == "higher" else -1.0
    s = sign * np.r_[negatives, positives]
    is_pos = _flags(negatives, positives)
    cuts = np.r_[np.inf, np.sort(np.unique(s))[::-1]]
    tpr = np.array([(s[is_pos] >= c).mean() for c in cuts])
    fpr = np.array([(s[~is_pos] >= c).mean() for c in cuts])
    return fpr, tpr, sign * cuts


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson score 95 % interval of the proportion ``k / n``."""
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=1 - LEVEL, method="wilson")
    return float(lo), float(hi)


def fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN.

    Examples
    --------
    >>> fdr(np.array([0.01, np.nan, 0.04, 0.03])).round(3).tolist()
    [0.03, nan, 0.04, 0.04]
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def subject_slopes(
    y: np.ndarray, time: np.ndarray, subject: np.ndarray, per_year: float = 12.0
) -> pd.DataFrame:
    """Each subject's own least-squares slope over its visits, per year.

    Columns: ``subject``, ``visits``, ``years`` (first to last visit),
    ``slope_per_year`` with its t interval (``ci_low``, ``ci_high``; from 3 visits:
    two visits give the slope and no interval) and ``note``.

    Examples
    --------
    >>> f = subject_slopes(np.array([1.0, 2, 3]), np.array([0.0, 12, 24]),
    ...                    np.array(["a", "a", "a"]))
    >>> float(f.loc[0, "slope_per_year"]), float(f.loc[0, "ci_low"])
    (1.0, 1.0)
    """
    frame = pd.DataFrame({"y": y, "t": np.asarray(time, float) / per_year})
    rows = []
    for who, d in frame.groupby(np.asarray(subject), sort=True):
        row = {"subject": who, "visits": len(d), "years": d["t"].max() - d["t"].min()}
        if d["t"].nunique() < 2:
            rows.append({**row, "note": "one visit time: no slope"})
            continue
        fit = stats.linregress(d["t"], d["y"])
        row["slope_per_year"] = float(fit.slope)
        if len(d) >= 3:
            half = stats.t.ppf(0.5 + LEVEL / 2, len(d) - 2) * fit.stderr
            row.update(ci_low=fit.slope - half, ci_high=fit.slope + half)
        else:
            row["note"] = "two visits: slope without an interval"
        rows.append(row)
    columns = ["subject", "visits", "years", "slope_per_year", "ci_low", "ci_high"]
    return pd.DataFrame(rows).reindex(columns=[*columns, "note"])
