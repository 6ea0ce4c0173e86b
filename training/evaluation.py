"""Validation metrics of multi-class probabilities, with stratified bootstrap CIs.

Pure functions of arrays: the caller (``training/run.py``) decides what to log.
Discrimination (balanced accuracy, one-vs-rest AUCs), calibration (Brier score, log
loss, top-label and class-wise expected calibration error), per-class sensitivity /
specificity / PPV / NPV at the argmax operating point, the confusion matrix,
per-site metrics, a permutation test of a cross-validated score and a decision curve
(Vickers & Elkin 2006).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.schema import MIMICS, POSITIVE
from models.decision import als_vs_mimics, mimic_columns

_EPS = np.finfo(float).eps  # log-loss clip, as scikit-learn does
_SUM_TOL = 1e-2  # rows rounded in a CSV still pass; logits or column subsets do not
_PER_CLASS = ("sensitivity", "specificity", "ppv", "npv")


def check_proba(
    proba, classes: Sequence, y=None
) -> tuple[np.ndarray, list, np.ndarray | None]:
    """Validate probabilities (and labels) against ``classes``.

    Parameters
    ----------
    proba : array-like, shape (n_subjects, n_classes)
        Probabilities in ``[0, 1]``, rows summing to 1, columns in ``classes`` order.
    classes : sequence
        Column order of ``proba``; no duplicates.
    y : array-like of shape (n_subjects,), optional
        True labels; each must be one of ``classes``.

    Returns
    -------
    proba : ndarray of float
    classes : list
    y : ndarray or None

    Examples
    --------
    >>> p, c, y = check_proba([[0.7, 0.3]], ["ALS", "HC"], ["HC"])
    >>> p.shape, c
    ((1, 2), ['ALS', 'HC'])
    """
    classes = np.asarray(classes).tolist()
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes {classes} must be non-empty without duplicates.")
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(
            f"proba has shape {proba.shape}; expected (n_subjects, {len(classes)}) "
            f"with columns in the order of classes {classes}."
        )
    bad = ~np.isfinite(proba).all(axis=1) | ((proba < 0) | (proba > 1)).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"proba row {i} is {proba[i].tolist()}; probabilities must be finite and "
            "in [0, 1]. Predict every subject before evaluating."
        )
    sums = proba.sum(axis=1)
    if (np.abs(sums - 1) > _SUM_TOL).any():
        i = int(np.flatnonzero(np.abs(sums - 1) > _SUM_TOL)[0])
        raise ValueError(
            f"proba row {i} sums to {sums[i]:.4g}; each row must sum to 1. "
            "Renormalise with proba / proba.sum(axis=1, keepdims=True)."
        )
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(proba):
            raise ValueError(
                f"y has shape {y.shape} but proba has {len(proba)} rows; "
                "pass one label per row of proba."
            )
        unknown = sorted(set(y.tolist()) - set(classes), key=str)
        if unknown:
            raise ValueError(
                f"y holds labels {unknown} that are not in classes {classes}; "
                "add them to classes or drop those subjects."
            )
    return proba, classes, y


def _codes(y: np.ndarray, classes: list) -> np.ndarray:
    """Integer codes of labels in ``classes`` order."""
    lookup = {c: i for i, c in enumerate(classes)}
    return np.fromiter((lookup[v] for v in y.tolist()), dtype=int, count=len(y))


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b with NaN where b == 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index of each probability in equal-width bins ((i-1)/M, i/M]; 0 in bin 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.digitize(p, edges[1:-1], right=True)


def _names(classes: list, contrasts: list[str]) -> list[str]:
    names = ["balanced_accuracy", "macro_auc", *contrasts]
    names += ["brier", "log_loss", "ece", "classwise_ece"]
    names += [f"{m}_{c}" for c in classes for m in _PER_CLASS]
    return names


class _Cases:
    """Per-subject quantities computed once; metrics are then weighted sums.

    A bootstrap resample is a vector of integer weights (how often each subject is
    drawn), so no resample is ever sorted again.
    """

    def __init__(
        self,
        y: np.ndarray,
        proba: np.ndarray,
        pos: int | None = None,
        vs_mimics: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        n, self.k = proba.shape
        self.y = y
        self.pred = proba.argmax(axis=1)
        self.cell = y * self.k + self.pred
        p_true = proba[np.arange(n), y]
        self.brier = (proba**2).sum(axis=1) - 2 * p_true + 1
        self.log_loss = -np.log(np.clip(p_true, _EPS, 1.0))
        conf = proba.max(axis=1)
        self.ece_bin = _bins(conf, 10)
        self.ece_gap = (self.pred == y) - conf
        # class-wise ECE (Kull et al. 2019): every class's column binned on its own
        onehot = np.arange(self.k) == y[:, None]
        self.cw_bin = _bins(proba, 10) + 10 * np.arange(self.k)
        self.cw_gap = onehot - proba
        self.groups = [_ranks(proba[:, j]) for j in range(self.k)]
        # binary contrasts: (rank groups, positive mask, rows taking part)
        self.contrasts = []
        if pos is not None:
            self.contrasts.append((self.groups[pos], y == pos, np.ones(n)))
            if vs_mimics is not None:  # (ALS-vs-mimics probability, rows taking part)
                ratio, rows = vs_mimics
                self.contrasts.append((_ranks(ratio), y == pos, rows.astype(float)))

    def auc(self, j: int, w: np.ndarray) -> float:
        """Weighted AUC of class j vs rest by column j."""
        return _wauc(self.groups[j], self.y == j, w)

    def values(self, w: np.ndarray) -> list[float]:
        """All metrics under subject weights ``w``, in the order of :func:`_names`."""
        k = self.k
        n = w.sum()
        cm = np.bincount(self.cell, weights=w, minlength=k * k).reshape(k, k)
        tp = np.diag(cm)
        fn = cm.sum(axis=1) - tp
        fp = cm.sum(axis=0) - tp
        tn = n - tp - fn - fp
        present = (tp + fn) > 0
        sens = _div(tp, tp + fn)
        bal = float(sens[present].mean()) if present.any() else np.nan
        macro = np.nan
        if present.sum() >= 2:
            macro = float(np.mean([self.auc(j, w) for j in np.flatnonzero(present)]))
        out = [bal, macro]
        out += [_wauc(g, pos, w * rows) for g, pos, rows in self.contrasts]
        gap = np.bincount(self.ece_bin, weights=w * self.ece_gap, minlength=10)
        cw = np.bincount(
            self.cw_bin.ravel(),
            weights=(w[:, None] * self.cw_gap).ravel(),
            minlength=10 * k,
        )
        out += [
            float(w @ self.brier / n),
            float(w @ self.log_loss / n),
            float(np.abs(gap).sum() / n),
            float(np.abs(cw).sum() / (n * k)),
        ]
        per_class = np.column_stack(
            [sens, _div(tn, tn + fp), _div(tp, tp + fp), _div(tn, tn + fn)]
        )
        return out + per_class.ravel().tolist()


def _ranks(score: np.ndarray) -> np.ndarray:
    """Rank group of each score: tied scores share a group, groups ascend."""
    return np.unique(score, return_inverse=True)[1]


def _wauc(g: np.ndarray, pos: np.ndarray, w: np.ndarray) -> float:
    """Weighted Mann-Whitney AUC (ties count 1/2); NaN without both outcomes."""
    wp = np.bincount(g, weights=w * pos)
    wn = np.bincount(g, weights=w * ~pos)
    total = wp.sum() * wn.sum()
    if total == 0:
        return np.nan
    below = np.cumsum(wn) - wn  # negative weight strictly below each group
    return float((wp * (below + 0.5 * wn)).sum() / total)


@dataclass(frozen=True)
class Evaluation:
    """Metrics with bootstrap CIs, the confusion matrix and per-site metrics.

    Attributes
    ----------
    metrics : DataFrame
        Indexed by metric name; columns ``estimate``, ``ci_low``, ``ci_high``.
    confusion : DataFrame
        Counts; rows are true classes, columns predicted classes (argmax).
    per_site : DataFrame or None
        One row per site: ``n``, ``n_classes``, ``balanced_accuracy``, ``macro_auc``.
    """

    metrics: pd.DataFrame
    confusion: pd.DataFrame
    per_site: pd.DataFrame | None = None

    def flat(self) -> dict[str, float]:
        """``{name: estimate, name_ci_low: ..., name_ci_high: ...}`` for logging."""
        out = {}
        for name, row in self.metrics.iterrows():
            out[name] = float(row["estimate"])
            out[f"{name}_ci_low"] = float(row["ci_low"])
            out[f"{name}_ci_high"] = float(row["ci_high"])
        return out


def evaluate(
    y,
    proba,
    classes: Sequence,
    *,
    sites=None,
    mimics: Sequence[str] = MIMICS,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Evaluation:
    """Evaluate multi-class probabilities with stratified bootstrap percentile CIs.

    The operating point is the argmax class (ties go to the first class in
    ``classes``). Resamples are drawn with replacement within each true class, so
    every resample keeps the class counts. A metric that is undefined (a class absent
    from ``y``, a class never predicted) is NaN; its CI is taken over the resamples
    where it is defined. ``macro_auc`` averages the one-vs-rest AUCs (raw column
    ``p_c`` against all others) of the classes present in ``y``. ECE is biased
    upwards in small samples, and more so in resamples, so its CI may sit above the
    estimate.

    Parameters
    ----------
    y : array-like of shape (n_subjects,)
        True labels, each one of ``classes``.
    proba : array-like of shape (n_subjects, n_classes)
        Probabilities, columns in ``classes`` order, rows summing to 1.
    classes : sequence
        Column order of ``proba``.
    sites : array-like of shape (n_subjects,), optional
        Acquisition site per subject; adds ``per_site`` (an empty site, None or
        NaN, is the row ``"missing"``).
    mimics : sequence of str, default=("MMN", "NMO", "MS")
        The classes counted as mimics (the pooled ``mimic`` class always is). The
        ``als_vs_rest_auc`` row ranks ALS against everyone by ``p_ALS``;
        ``als_vs_mimics_auc`` ranks ALS against the mimics only (controls left out)
        by :func:`models.decision.als_vs_mimics`. Each row is omitted when its
        classes are not in ``classes``.
    n_boot : int, default=1000
        Bootstrap resamples; 0 gives NaN CIs.
    seed : int, default=0
        Seed of the resampling.
    alpha : float, default=0.05
        The CI covers ``1 - alpha``.

    Returns
    -------
    Evaluation

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> ev = evaluate(["ALS", "HC", "ALS", "HC"], p, ["ALS", "HC"], n_boot=50)
    >>> float(ev.metrics.loc["als_vs_rest_auc", "estimate"])
    1.0
    >>> int(ev.confusion.loc["ALS", "ALS"])
    2
    """
    proba, classes, y = check_proba(proba, classes, y)
    if len(y) == 0:
        raise ValueError("y is empty; evaluate needs at least one subject.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha}; it must lie in (0, 1), e.g. 0.05.")
    if n_boot < 0:
        raise ValueError(f"n_boot = {n_boot}; it must be >= 0 (0 skips the CIs).")
    if sites is not None:
        sites = np.asarray(sites)
        if sites.shape != y.shape:
            raise ValueError(
                f"sites has shape {sites.shape} but y has {len(y)} labels; "
                "pass one site per subject."
            )
    y_idx = _codes(y, classes)
    pos = classes.index(POSITIVE) if POSITIVE in classes else None
    contrasts, vs_mimics = [], None
    if pos is not None:
        contrasts.append("als_vs_rest_auc")
        mimic_cols = mimic_columns(classes, mimics)
        if mimic_cols:
            contrasts.append("als_vs_mimics_auc")
            rows = np.isin(y_idx, [pos, *mimic_cols])
            vs_mimics = (np.nan_to_num(als_vs_mimics(proba, classes, mimics)), rows)
    names = _names(classes, contrasts)
    cases = _Cases(y_idx, proba, pos, vs_mimics)
    n = len(y_idx)
    estimate = np.asarray(cases.values(np.ones(n)))

    rng = np.random.default_rng(seed)
    strata = [
        s for s in (np.flatnonzero(y_idx == j) for j in range(len(classes))) if len(s)
    ]
    boot = np.full((n_boot, len(names)), np.nan)
    for b in range(n_boot):
        idx = np.concatenate([s[rng.integers(0, len(s), len(s))] for s in strata])
        boot[b] = cases.values(np.bincount(idx, minlength=n).astype(float))
    low = high = np.full(len(names), np.nan)
    if n_boot:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN
            low, high = np.nanquantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    metrics = pd.DataFrame(
        {"estimate": estimate, "ci_low": low, "ci_high": high},
        index=pd.Index(names, name="metric"),
    )

    k = len(classes)
    cm = np.bincount(y_idx * k + proba.argmax(axis=1), minlength=k * k).reshape(k, k)
    confusion = pd.DataFrame(
        cm,
        index=pd.Index(classes, name="true"),
        columns=pd.Index(classes, name="predicted"),
    )
    per_site = None if sites is None else _per_site(y_idx, proba, sites)
    return Evaluation(metrics, confusion, per_site)


def score(
    y, proba, classes: Sequence, mimics: Sequence[str] = MIMICS
) -> dict[str, float]:
    """Point estimates of the summary metrics, no bootstrap: balanced accuracy,
    macro AUC, ALS-vs-rest and ALS-vs-mimics AUC, Brier score, log loss, top-label
    and class-wise ECE (those that are defined), as :func:`evaluate` computes them.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> score(np.array(["ALS", "HC"]), p, ["ALS", "HC"])["als_vs_rest_auc"]
    1.0
    """
    ev = evaluate(y, proba, classes, mimics=mimics, n_boot=0)
    est = ev.metrics["estimate"]
    keep = [m for m in est.index if not m.startswith(_PER_CLASS)]
    return {m: float(est[m]) for m in keep if np.isfinite(est[m])}


def _per_site(y_idx: np.ndarray, proba: np.ndarray, sites: np.ndarray) -> pd.DataFrame:
    """n, classes present, balanced accuracy and macro AUC of each site."""
    keys = pd.Series(sites, dtype=object)
    keys = keys.where(keys.notna(), "missing").to_numpy()
    rows = {}
    for site in sorted(set(keys.tolist()), key=str):
        m = keys == site
        bal, macro = _Cases(y_idx[m], proba[m]).values(np.ones(m.sum()))[:2]
        n_classes = len(np.unique(y_idx[m]))
        rows[site] = {
            "n": int(m.sum()),
            "n_classes": n_classes,
            "balanced_accuracy": bal,
            "macro_auc": macro,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("site")


def permutation_test(
    score_fn: Callable[[np.ndarray], float],
    y,
    n_permutations: int = 100,
    seed: int = 0,
    n_jobs: int = 1,
) -> tuple[float, float, np.ndarray]:
    """Permutation test of a score: how often do shuffled labels score as well?

    Parameters
    ----------
    score_fn : callable
        ``score_fn(labels) -> float``, higher is better; typically reruns a cheap
        cross-validation with ``labels`` as the target. For repeated visits, pass
        participant-level labels and broadcast them inside ``score_fn``.
    y : array-like of shape (n_subjects,)
        True labels.
    n_permutations : int, default=100
    seed : int, default=0
    n_jobs : int, default=1
        Permutations scored at a time (joblib; on a Dask cluster under
        ``common.executor``). The permutations are drawn first, in order, so
        the result does not depend on ``n_jobs``.

    Returns
    -------
    observed : float
        ``score_fn(y)``.
    p_value : float
        ``(1 + #{null >= observed}) / (1 + n_permutations)``.
    null : ndarray of shape (n_permutations,)
        Scores of the permuted labels.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1] * 5)
    >>> obs, p, null = permutation_test(lambda t: float(np.mean(t == y)), y, 19)
    >>> obs, p
    (1.0, 0.05)
    """
    if n_permutations < 1:
        raise ValueError(f"n_permutations = {n_permutations}; it must be >= 1.")
    y = np.asarray(y)
    observed = float(score_fn(y))
    if not np.isfinite(observed):
        raise ValueError(
            f"score_fn(y) returned {observed}; it must return a finite score."
        )
    from joblib import Parallel, delayed

    rng = np.random.default_rng(seed)
    shuffled = [rng.permutation(y) for _ in range(n_permutations)]
    null = np.array(
        [
            float(s)
            for s in Parallel(n_jobs=n_jobs)(delayed(score_fn)(t) for t in shuffled)
        ]
    )
    p_value = (1 + int((null >= observed).sum())) / (1 + n_permutations)
    return observed, float(p_value), null


def _check_binary(y_binary, p) -> tuple[np.ndarray, np.ndarray]:
    """Validate a binary outcome and a probability of the positive class."""
    y = np.asarray(y_binary)
    p = np.asarray(p, dtype=float)
    if y.ndim != 1 or y.shape != p.shape:
        raise ValueError(
            f"y_binary has shape {y.shape} and p has shape {p.shape}; pass two 1-D "
            "arrays of the same length."
        )
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ValueError(
            f"y_binary holds {sorted(set(y.tolist()), key=str)[:5]}; it must be "
            "0/1 or bool, e.g. y == 'ALS'."
        )
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("p must be finite probabilities in [0, 1].")
    return y.astype(bool), p


def decision_curve(y_binary, p, thresholds=None) -> pd.DataFrame:
    """Net benefit of treating when ``p >= t``, of treating all and of none.

    Net benefit (Vickers & Elkin 2006) is ``TP/n - FP/n * t / (1 - t)``.

    Parameters
    ----------
    y_binary : array-like of bool or 0/1
        Outcome (e.g. ``y == "ALS"``).
    p : array-like of float
        Predicted probability of the outcome.
    thresholds : array-like of float in (0, 1), optional
        Default ``np.linspace(0.01, 0.99, 99)``.

    Returns
    -------
    DataFrame
        Columns ``threshold``, ``net_benefit_model``, ``net_benefit_all``,
        ``net_benefit_none``.

    Examples
    --------
    >>> dc = decision_curve([1, 0, 1, 0], [0.9, 0.2, 0.7, 0.4], [0.5])
    >>> float(dc["net_benefit_model"].iloc[0])
    0.5
    """
    y, p = _check_binary(y_binary, p)
    t = np.linspace(0.01, 0.99, 99) if thresholds is None else thresholds
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or not ((t > 0) & (t < 1)).all():
        raise ValueError(
            f"thresholds must be a 1-D array inside (0, 1); got {t.tolist()[:5]}..."
        )
    n = len(y)
    odds = t / (1 - t)
    treat = p[None, :] >= t[:, None]
    tp = (treat & y).sum(axis=1)
    fp = (treat & ~y).sum(axis=1)
    prevalence = y.mean()
    return pd.DataFrame(
        {
            "threshold": t,
            "net_benefit_model": tp / n - fp / n * odds,
            "net_benefit_all": prevalence - (1 - prevalence) * odds,
            "net_benefit_none": np.zeros_like(t),
        }
    )


def calibration_table(y_binary, p, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table: mean predicted and observed fraction per probability bin.

    Bins are equal-width, ``((i-1)/n_bins, i/n_bins]`` (0 falls in the first);
    empty bins have count 0 and NaN means.

    Parameters
    ----------
    y_binary : array-like of bool or 0/1
    p : array-like of float
    n_bins : int, default=10

    Returns
    -------
    DataFrame
        Columns ``bin_low``, ``bin_high``, ``mean_predicted``, ``observed_fraction``,
        ``count``; one row per bin.

    Examples
    --------
    >>> t = calibration_table([0, 1, 1], [0.05, 0.95, 0.95], n_bins=2)
    >>> t["count"].tolist(), t["observed_fraction"].tolist()
    ([1, 2], [0.0, 1.0])
    """
    y, p = _check_binary(y_binary, p)
    if n_bins < 1:
        raise ValueError(f"n_bins = {n_bins}; it must be >= 1.")
    b = _bins(p, n_bins)
    count = np.bincount(b, minlength=n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "mean_predicted": _div(np.bincount(b, weights=p, minlength=n_bins), count),
            "observed_fraction": _div(
                np.bincount(b, weights=y.astype(float), minlength=n_bins), count
            ),
            "count": count,
        }
    )
