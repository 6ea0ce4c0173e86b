"""Which modalities each subject has, and what that alone says.

- :func:`availability`: one 0/1 column per modality (the ``has_*`` flags, or which
  columns are empty when a table has none).
- :func:`missingness_leak`: how well *which modalities were acquired* predicts the
  diagnosis (nerve conduction is done on neuromuscular suspects, so it can).
- :func:`modality_subsets`: feature sets for "each modality alone" and "each
  modality left out".

All are pure functions of DataFrames and arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from common.statistics import auc
from features.dictionary import UNDOCUMENTED, modality_of
from training.cohort_summary import require_columns


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
    require_columns(table, cols, "availability")
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


__all__ = ["availability", "missingness_leak", "modality_subsets"]
