"""The univariate tables of every training run's report, for any cohort's table
(plans of ``python -m training analyze`` are in :mod:`training.analysis`).

- :func:`univariate_table`: each biomarker alone, per contrast (AUC with a
  bootstrap CI, the direction of the difference, sensitivity at 90 % specificity).
- :func:`group_summary`: median and IQR per class, and how often it is missing.
- :func:`severity_correlations`: Spearman correlations of imaging features with
  clinical severity, Benjamini-Hochberg FDR-controlled (source study 1).

Which modalities were acquired, and what that alone says, is in
:mod:`training.modalities`.

All are pure functions of DataFrames and arrays.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_curve

from common.statistics import fdr, marker_direction, oriented_auc

#: (name, positive classes, negative classes): the clinical questions of the sources.
DEFAULT_CONTRASTS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("ALS vs HC", ("ALS",), ("HC",)),
    ("ALS vs mimics", ("ALS",), ("MMN", "NMO", "MS")),
    ("ALS vs MMN", ("ALS",), ("MMN",)),
    ("NMO vs MS", ("NMO",), ("MS",)),
)
#: Clinical severity scales of source study 1 (plus ALSFRS-R and EDSS).
SEVERITY = ("fvc_pct", "mrc_sum", "ncs_cmap_zsum", "penn_umn", "alsfrs_r", "edss")
DEMOGRAPHICS = ("age", "male")


def require_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what} column(s) {missing[:10]} not in the table; available columns "
            f"include {list(table.columns[:8])}. Check the names or extract them."
        )
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad and what != "label":
        raise ValueError(
            f"{what} column(s) {bad[:10]} are not numeric (e.g. {bad[0]} holds "
            f"{table[bad[0]].dropna().iloc[0]!r}); pass numeric feature columns."
        )


def _values(table: pd.DataFrame, column: str) -> np.ndarray:
    return table[column].to_numpy(dtype=float, na_value=np.nan)


def _labels(table: pd.DataFrame, label: str) -> np.ndarray:
    require_columns(table, [label], "label")
    return table[label].astype(object).where(table[label].notna(), None).to_numpy()


def _check_classes(classes: Sequence[str], known: set, where: str) -> None:
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise ValueError(
            f"{where}: class(es) {unknown} do not occur in the table's labels "
            f"{sorted(known)}; fix the spelling or drop them."
        )


def _as_list(classes: str | Sequence[str]) -> list[str]:
    return [classes] if isinstance(classes, str) else list(classes)


def _resolve_contrasts(contrasts, known: set) -> list[tuple[str, list, list]]:
    if contrasts is None:  # the defaults, restricted to the classes present
        out = []
        for name, pos, neg in DEFAULT_CONTRASTS:
            pos, neg = [c for c in pos if c in known], [c for c in neg if c in known]
            if pos and neg:
                out.append((name, pos, neg))
        return out
    out = []
    for name, pos, neg in contrasts:
        pos, neg = _as_list(pos), _as_list(neg)
        _check_classes(pos + neg, known, f"contrast {name!r}")
        if set(pos) & set(neg):
            raise ValueError(
                f"contrast {name!r}: class(es) {sorted(set(pos) & set(neg))} are on "
                "both sides; a class is either positive or negative."
            )
        out.append((name, pos, neg))
    return out


def default_contrasts(known: set) -> list[tuple[str, list, list]]:
    """The :data:`DEFAULT_CONTRASTS` whose two sides both have classes in ``known``."""
    return _resolve_contrasts(None, known)


def _one_univariate(x, is_pos, n_boot, rng, specificity) -> dict:
    n_pos, n_neg = int(is_pos.sum()), int((~is_pos).sum())
    row = {"n_pos": n_pos, "n_neg": n_neg}
    if n_pos == 0 or n_neg == 0:
        return row
    direction = marker_direction(x[~is_pos], x[is_pos])
    value, lo, hi = oriented_auc(x[~is_pos], x[is_pos], direction, n_boot, rng)
    sign = 1.0 if direction == "higher" else -1.0
    fpr, tpr, thr = roc_curve(is_pos, sign * x)
    ok = np.flatnonzero(fpr <= 1.0 - specificity + 1e-12)
    best = ok[np.argmax(tpr[ok])]
    row.update(
        auc=value,
        ci_low=lo,
        ci_high=hi,
        direction=direction,
        sensitivity_at_specificity=float(tpr[best]),
        specificity_at_threshold=float(1.0 - fpr[best]),
        threshold=float(sign * thr[best]) if np.isfinite(thr[best]) else np.nan,
    )
    return row


def univariate_table(
    table: pd.DataFrame,
    features: Sequence[str],
    contrasts: Sequence[tuple[str, Sequence[str], Sequence[str]]] | None = None,
    *,
    n_boot: int = 500,
    seed: int = 0,
    specificity: float = 0.90,
    label: str = "diagnosis",
) -> pd.DataFrame:
    """Each feature alone: AUC, bootstrap CI and sensitivity at fixed specificity.

    For each contrast and feature, only the rows of the contrast's classes with the
    feature present are used. The AUC is direction-free: ``direction`` says whether
    the positives are ``"higher"`` or ``"lower"``, and ``auc`` (>= 0.5) is computed
    after orienting. The 95 % CI is the percentile interval of a bootstrap that
    resamples positives and negatives separately, in the same orientation.
    ``sensitivity_at_specificity`` is the best sensitivity with specificity >=
    ``specificity``; a subject is called positive when the feature is >=
    ``threshold`` (``"higher"``) or <= it (``"lower"``), as for the M1/precuneus
    ratio (sens 0.42 at spec 0.90; refs#gm and refs#perf).

    Parameters
    ----------
    table : DataFrame
        The features table with a ``label`` column.
    features : list of str
        Numeric columns to test.
    contrasts : list of (name, positive classes, negative classes), optional
        Defaults to :data:`DEFAULT_CONTRASTS` restricted to the classes present.
        Given explicitly, every class must occur in the table.
    n_boot, seed : int
        Bootstrap resamples and seed; each row's resamples depend only on the
        seed, the contrast and the feature name.
    specificity : float
        Operating point for the sensitivity column.
    label : str
        The diagnosis column.

    Returns
    -------
    DataFrame
        One row per (contrast, feature): ``contrast, feature, n_pos, n_neg, auc,
        ci_low, ci_high, direction, sensitivity_at_specificity,
        specificity_at_threshold, threshold`` (NaN where a side has no subject).

    Examples
    --------
    >>> t = pd.DataFrame({"diagnosis": ["ALS"] * 3 + ["HC"] * 3,
    ...                   "nfl": [90.0, 60.0, 70.0, 9.0, 12.0, 10.0]})
    >>> r = univariate_table(t, ["nfl"], [("ALS vs HC", ["ALS"], ["HC"])], n_boot=20)
    >>> print(r.loc[0, "auc"], r.loc[0, "direction"])
    1.0 higher
    """
    y = _labels(table, label)
    require_columns(table, features, "feature")
    known = {c for c in y if c is not None}
    columns = ["contrast", "feature", "n_pos", "n_neg", "auc", "ci_low", "ci_high"]
    columns += ["direction", "sensitivity_at_specificity"]
    columns += ["specificity_at_threshold", "threshold"]
    rows = []
    for name, pos, neg in _resolve_contrasts(contrasts, known):
        in_pos, in_neg = np.isin(y, pos), np.isin(y, neg)
        for feature in features:
            x = _values(table, feature)
            keep = (in_pos | in_neg) & ~np.isnan(x)
            key = zlib.crc32(f"{name}|{feature}".encode())
            rng = np.random.default_rng([seed, key])
            row = _one_univariate(x[keep], in_pos[keep], n_boot, rng, specificity)
            rows.append({"contrast": name, "feature": feature, **row})
    return pd.DataFrame(rows, columns=columns)


def group_summary(
    table: pd.DataFrame,
    features: Sequence[str],
    classes: Sequence[str] | None = None,
    *,
    label: str = "diagnosis",
) -> pd.DataFrame:
    """Median, IQR and missingness of each feature in each class.

    Returns
    -------
    DataFrame
        One row per (class, feature): ``class, feature, n_class`` (subjects in the
        class), ``n`` (with the feature present), ``median, q1, q3,
        missing_fraction``.

    Examples
    --------
    >>> t = pd.DataFrame({"diagnosis": ["ALS", "ALS", "HC"], "nfl": [60, None, 9]})
    >>> s = group_summary(t, ["nfl"])
    >>> print(s.loc[0, "class"], s.loc[0, "n"], s.loc[0, "missing_fraction"])
    ALS 1 0.5
    """
    y = _labels(table, label)
    require_columns(table, features, "feature")
    known = {c for c in y if c is not None}
    classes = sorted(known) if classes is None else list(classes)
    _check_classes(classes, known, "group_summary")
    rows = []
    for cls in classes:
        in_class = y == cls
        for feature in features:
            x = _values(table, feature)[in_class]
            present = x[~np.isnan(x)]
            q1, med, q3 = (
                np.percentile(present, [25, 50, 75]) if present.size else [np.nan] * 3
            )
            rows.append(
                {
                    "class": cls,
                    "feature": feature,
                    "n_class": int(in_class.sum()),
                    "n": int(present.size),
                    "median": float(med),
                    "q1": float(q1),
                    "q3": float(q3),
                    "missing_fraction": float(1.0 - present.size / x.size),
                }
            )
    return pd.DataFrame(rows)


def severity_correlations(
    table: pd.DataFrame,
    imaging_features: Sequence[str],
    severity: Sequence[str] = SEVERITY,
    *,
    within: str | Sequence[str] | None = None,
    label: str = "diagnosis",
    alpha: float = 0.05,
    min_n: int = 10,
) -> pd.DataFrame:
    """Spearman correlations of imaging features with clinical severity, FDR-controlled.

    Reproduces source study 1 (precentral grey matter and CST FA against FVC, MRC
    sum, CMAP Z-sum and Penn score). Each pair uses the rows where both values are
    present; pairs with fewer than ``min_n`` such rows or a constant side are not
    tested (NaN; the p-value of Spearman's rho is unreliable in tiny samples, e.g.
    0 for any perfect rank order of 4 points). The q-values are Benjamini-Hochberg
    over the tested pairs.

    Parameters
    ----------
    table : DataFrame
        The features table.
    imaging_features, severity : list of str
        Numeric columns to correlate (every imaging feature with every scale).
    within : str or list of str, optional
        Restrict to these classes of ``label`` (e.g. ``"ALS"``).
    alpha : float
        FDR level for the ``significant`` column.
    min_n : int
        Fewest complete pairs to test a correlation.

    Returns
    -------
    DataFrame
        One row per (feature, severity): ``feature, severity, n, rho, p, q,
        significant`` (``q < alpha``).
    """
    require_columns(table, [*imaging_features, *severity], "correlation")
    if within is not None:
        y = _labels(table, label)
        within = _as_list(within)
        _check_classes(within, {c for c in y if c is not None}, "within")
        table = table[np.isin(y, within)]
    rows = []
    for feature in imaging_features:
        x = _values(table, feature)
        for scale in severity:
            s = _values(table, scale)
            both = ~np.isnan(x) & ~np.isnan(s)
            rho = p = np.nan
            if (
                both.sum() >= max(min_n, 3)
                and np.ptp(x[both]) > 0
                and np.ptp(s[both]) > 0
            ):
                res = stats.spearmanr(x[both], s[both])
                rho, p = float(res.statistic), float(res.pvalue)
            rows.append((feature, scale, int(both.sum()), rho, p))
    out = pd.DataFrame(rows, columns=["feature", "severity", "n", "rho", "p"])
    out["q"] = fdr(out["p"].to_numpy(float))
    out["significant"] = out["q"] < alpha
    return out


__all__ = [
    "DEFAULT_CONTRASTS",
    "DEMOGRAPHICS",
    "SEVERITY",
    "default_contrasts",
    "group_summary",
    "require_columns",
    "severity_correlations",
    "univariate_table",
]
