"""The source studies' analyses, reproduced for any cohort's features table.

- :func:`univariate_table`: each biomarker alone, per contrast (AUC with a
  bootstrap CI, the direction of the difference, sensitivity at 90 % specificity).
- :func:`group_summary`: median and IQR per class, and how often it is missing.
- :func:`severity_correlations`: Spearman correlations of imaging features with
  clinical severity, Benjamini-Hochberg FDR-controlled (source study 1).
- :func:`missingness_leak`: how well *which modalities were acquired* predicts the
  diagnosis (nerve conduction is done on neuromuscular suspects, so it can).
- :func:`modality_subsets` and :func:`modality_of`: feature sets for "each modality
  alone" and "each modality left out".

All are pure functions of DataFrames and arrays.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_curve
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from common.statistics import auc, fdr, marker_direction, oriented_auc
from features.dictionary import UNDOCUMENTED, modality_of

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


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
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
    _require(table, [label], "label")
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
    _require(table, features, "feature")
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
    _require(table, features, "feature")
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
    _require(table, [*imaging_features, *severity], "correlation")
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


def _splits(y, cv, seed, groups):
    if not isinstance(cv, int | np.integer):
        return list(cv.split(np.zeros(len(y)), y, groups))
    if groups is not None:
        return list(
            StratifiedGroupKFold(cv, shuffle=True, random_state=seed).split(
                np.zeros(len(y)), y, groups
            )
        )
    return list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(y, y))


def _macro_auc(proba: np.ndarray, y: np.ndarray, classes: np.ndarray) -> float:
    """Macro one-vs-rest AUC (the positive column alone when binary)."""
    cols = classes if len(classes) > 2 else classes[1:]
    return float(np.mean([auc(proba[:, list(classes).index(c)], y == c) for c in cols]))


def missingness_leak(
    table: pd.DataFrame,
    y,
    availability_columns: Sequence[str] | None = None,
    cv=5,
    seed: int = 0,
    *,
    groups=None,
    n_boot: int = 500,
    margin: float = 0.05,
) -> dict:
    """Does knowing *which modalities were acquired* predict the diagnosis?

    Without ``availability_columns`` it reads :func:`availability` of ``table``.

    A class-balanced logistic regression on the availability columns alone is
    cross-validated; its out-of-fold macro one-vs-rest AUC gets a bootstrap 95 % CI
    (resampling within classes). ``leaks`` is True when the CI's lower bound exceeds
    chance (0.5) by more than ``margin``: then a model can score by learning who was
    referred for which test, and its metrics will not carry over to a cohort where
    everyone gets every test. Missing availability values count as 0.

    Parameters
    ----------
    table : DataFrame
        Holds the availability columns.
    y : array of labels, one per row of ``table``
    availability_columns : list of str, optional
        Defaults to :func:`availability` of ``table``.
    cv : int or splitter
        Folds (stratified, grouped when ``groups`` is given) or a splitter object.
    seed : int
        Fold shuffling and bootstrap seed.
    groups : array, optional
        Participant ids, so repeated visits stay in one fold.
    n_boot : int
        Bootstrap resamples for the CI.
    margin : float
        How far above 0.5 the CI's lower bound must be to flag a leak.

    Returns
    -------
    dict
        ``macro_auc``, ``macro_auc_ci`` (low, high), ``balanced_accuracy``,
        ``chance_macro_auc`` (0.5), ``chance_balanced_accuracy`` (1 / n classes),
        ``per_class_auc`` {class: AUC}, ``availability_by_class`` {column: {class:
        fraction acquired}}, ``columns``, ``n``, ``leaks`` (bool) and ``summary``
        (one line for the log).
    """
    if availability_columns is None:
        table = availability(table, list(table.columns))
        availability_columns = list(table.columns)
        if not availability_columns:
            raise ValueError(
                "the table has no has_* availability columns and no feature "
                "column to derive them from; pass availability_columns=."
            )
    cols = list(availability_columns)
    _require(table, cols, "availability")
    X = table[cols].to_numpy(dtype=float, na_value=np.nan)
    X = np.nan_to_num(X, nan=0.0)
    y = np.asarray(y)
    if y.shape != (len(table),):
        raise ValueError(
            f"y has shape {y.shape} but the table has {len(table)} rows; pass one "
            "label per row."
        )
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"y has a single class {list(classes)}; the leak check needs at least two."
        )
    model = LogisticRegression(class_weight="balanced", max_iter=1000)
    proba = np.zeros((len(y), len(classes)))
    for train, test in _splits(y, cv, seed, groups):
        fitted = clone(model).fit(X[train], y[train])
        idx = np.searchsorted(classes, fitted.classes_)
        proba[np.ix_(test, idx)] = fitted.predict_proba(X[test])
    macro = _macro_auc(proba, y, classes)
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in classes]
    boot = [
        _macro_auc(proba[ix], y[ix], classes)
        for ix in (
            np.concatenate([rng.choice(i, i.size) for i in by_class])
            for _ in range(n_boot)
        )
    ]
    lo, hi = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    pred = classes[np.argmax(proba, axis=1)]
    rates = {
        c: {str(k): float(X[y == k, j].mean()) for k in classes}
        for j, c in enumerate(cols)
    }
    leaks = bool(lo > 0.5 + margin)
    spread = {c: max(r.values()) - min(r.values()) for c, r in rates.items()}
    worst = max(spread, key=spread.get)
    hi_c, lo_c = (f(rates[worst], key=rates[worst].get) for f in (max, min))
    summary = (
        f"availability alone {'PREDICTS' if leaks else 'does not predict'} the "
        f"diagnosis: macro AUC {macro:.2f} (95 % CI {lo:.2f}-{hi:.2f}; chance 0.50); "
        f"most uneven: {worst} ({hi_c} {rates[worst][hi_c]:.0%}, "
        f"{lo_c} {rates[worst][lo_c]:.0%})"
    )
    return {
        "macro_auc": macro,
        "macro_auc_ci": (lo, hi),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "chance_macro_auc": 0.5,
        "chance_balanced_accuracy": 1.0 / len(classes),
        "per_class_auc": {
            str(c): float(auc(proba[:, k], y == c)) for k, c in enumerate(classes)
        },
        "availability_by_class": rates,
        "columns": cols,
        "n": int(len(y)),
        "leaks": leaks,
        "summary": summary,
    }


def availability(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Which modalities each row has: the table's ``has_*`` columns, or, when it
    has none, derived from which of ``columns`` hold a value: one flag per
    documented modality and one per undocumented column (its own group).

    Examples
    --------
    >>> t = pd.DataFrame({"nfl_pg_ml": [9.0, None], "Notes_score": [None, 2.0]})
    >>> availability(t, ["nfl_pg_ml", "Notes_score"]).to_dict("list")
    {'has_serum': [1.0, 0.0], 'has_Notes_score': [0.0, 1.0]}
    """
    flags = [c for c in table.columns if str(c).startswith("has_")]
    if flags:
        return table[flags]
    groups: dict[str, list[str]] = {}
    for c in columns:
        m = modality_of(c)
        if c == "site" or m in ("demographics", "availability", "metadata"):
            continue
        groups.setdefault(f"has_{c if m == UNDOCUMENTED else m}", []).append(c)
    return pd.DataFrame(
        {k: table[v].notna().any(axis=1).astype(float) for k, v in groups.items()},
        index=table.index,
    )


def modality_subsets(
    columns: Sequence[str], modality_of: Callable[[str], str] = modality_of
) -> dict[str, list[str]]:
    """Feature sets for the modality-value analysis.

    For each modality M with at least one feature column: ``"only_M"`` holds M's
    columns (its ``has_M`` availability column included) plus the demographics
    present (age, male); ``"without_M"`` holds every column except M's and
    ``has_M``. So, for each M, ``only_M`` minus demographics and ``without_M``
    partition ``columns``. Column order follows ``columns``.

    Examples
    --------
    >>> cols = ["age", "nfl_pg_ml", "mrs_glu_naa", "has_mrs", "penn_umn"]
    >>> s = modality_subsets(cols)
    >>> s["only_mrs"], s["without_mrs"]
    (['age', 'mrs_glu_naa', 'has_mrs'], ['age', 'nfl_pg_ml', 'penn_umn'])
    """
    columns = list(columns)
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        raise ValueError(f"columns {dup} are listed more than once; list each once.")

    def owner(c: str) -> str:
        m = modality_of(c)
        return c.removeprefix("has_") if m == "availability" else m

    owners = {c: owner(c) for c in columns}
    demo = [c for c in columns if owners[c] == "demographics"]
    modalities = sorted(
        {
            m
            for c, m in owners.items()
            if m != "demographics" and not c.startswith("has_")
        }
    )
    out: dict[str, list[str]] = {}
    for m in modalities:
        out[f"only_{m}"] = [c for c in columns if owners[c] == m or c in demo]
        out[f"without_{m}"] = [c for c in columns if owners[c] != m]
    return out


__all__ = [
    "DEFAULT_CONTRASTS",
    "DEMOGRAPHICS",
    "SEVERITY",
    "UNDOCUMENTED",
    "availability",
    "default_contrasts",
    "group_summary",
    "missingness_leak",
    "modality_of",
    "modality_subsets",
    "severity_correlations",
    "univariate_table",
]
