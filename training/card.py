"""The model card: what a locked model carries besides its fitted estimators.

Serving needs to know, without the training data: the input schema (each column's
dtype, unit, modality and valid range), reference statistics of the training
features (overall and in the controls, for drift checks and the report's "against
controls" charts), a small background of aggregated training rows for SHAP (cluster
medians, never a single subject's values), the calibration of the out-of-fold
probabilities, and the versions of the packages that made the model.
"""

from __future__ import annotations

import platform
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from features.dictionary import describe, modality_of, value_range
from models.estimators import SITE
from models.locked import BUNDLE_FORMAT

PACKAGES = (
    "scikit-learn",
    "xgboost",
    "numpy",
    "pandas",
    "scipy",
    "mlflow",
    "optuna",
    "shap",
)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MIN_CLUSTER = 10  # a background row summarises at least this many subjects


@dataclass(frozen=True)
class CardFacts:
    """What the model card states about how a model was made, beside what it
    computes from the fitted model and its training rows.

    Attributes
    ----------
    family, task : str
        The model family and the training task.
    classes, mimics : tuple of str
        The classes (column order of the probabilities) and those counted as ALS
        mimics (:mod:`models.decision`; serving reads them back).
    conformal : dict
        ``alpha``, per-class ``thresholds`` (and ``coverage`` when measured).
    sites : tuple of str
        Acquisition sites seen in training.
    reference : str or None
        The control class of the reference statistics.
    seed : int
        Seed of the background's clustering.
    simulated : bool
        Trained on a simulated cohort (shown as a banner by every report).
    params, metrics, metrics_ci : dict
        Tuned hyperparameters; nested-CV metrics and their bootstrap CIs.
    data_source, data_fingerprint : str
        The training data's file or folder name (not its path: the card travels
        with the model to other labs), and a hash of its content.
    input_mapping : dict or None
        How a ready-made table's columns and codes were read
        (:class:`features.lab_table.InputMapping`).
    source_columns : tuple of str
        The columns of the training table.
    adjustment : dict
        Covariates of each fitted adjustment step (read from the fitted steps).
    notes : tuple of str
        What the data could not give.
    """

    family: str
    task: str
    classes: tuple[str, ...]
    mimics: tuple[str, ...]
    conformal: dict[str, Any]
    sites: tuple[str, ...] = ()
    reference: str | None = "HC"
    seed: int = 0
    simulated: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_ci: dict[str, Any] = field(default_factory=dict)
    data_source: str = ""
    data_fingerprint: str = ""
    input_mapping: dict[str, Any] | None = None
    source_columns: tuple[str, ...] = ()
    adjustment: dict[str, list[str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def model_card(
    model,
    X: pd.DataFrame,
    y: np.ndarray,
    facts: CardFacts,
    oof_proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """The metadata registered with a fitted :class:`~models.locked.LockedModel`.

    Parameters
    ----------
    model : LockedModel
        Fitted on ``X``, ``y``.
    X, y : DataFrame, ndarray
        The training rows and labels.
    facts : CardFacts
        How the model was made.
    oof_proba : ndarray, optional
        Out-of-fold probabilities of ``X`` (columns in ``facts.classes`` order),
        for the calibration table.
    """
    detector = model.detector_
    classes = list(facts.classes)
    return {
        "bundle_format": BUNDLE_FORMAT,
        "family": facts.family,
        "task": facts.task,
        "classes": classes,
        "mimics": list(facts.mimics),
        "feature_columns": list(X.columns),
        "schema": schema(X),
        "conformal": facts.conformal,
        "sites": list(facts.sites),
        "training_subjects": len(y),
        "class_counts": {c: int((np.asarray(y) == c).sum()) for c in classes},
        "ood": None
        if detector is None
        else {
            "threshold": detector.threshold_,
            "quantile": detector.quantile,
            "training_flag_rate": detector.training_flag_rate_,
            "n_features": len(detector.features_),
        },
        "reference": reference_statistics(X, y, facts.reference),
        "background": background(X, y, seed=facts.seed),
        "calibration": {} if oof_proba is None else calibration(y, oof_proba, classes),
        "packages": package_versions(),
        "seed": facts.seed,
        "params": dict(facts.params),
        "nested_cv_metrics": dict(facts.metrics),
        "nested_cv_metrics_ci": dict(facts.metrics_ci),
        "data_source": facts.data_source,
        "data_fingerprint": facts.data_fingerprint,
        "trained_on_simulated_data": facts.simulated,
        "input_mapping": facts.input_mapping,
        "source_columns": list(facts.source_columns),
        "adjustment": dict(facts.adjustment),
        "notes": list(facts.notes),
    }


def schema(X: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per input column: name, dtype, unit, modality and valid range."""
    out = []
    for c in X.columns:
        entry = describe(c)
        lo, hi = value_range(c)
        out.append(
            {
                "name": c,
                "dtype": "string" if c == SITE else "float",
                "unit": entry.unit if entry else "",
                "modality": modality_of(c),
                "min": None if lo == -np.inf else lo,
                "max": None if hi == np.inf else hi,
            }
        )
    return out


def reference_statistics(
    X: pd.DataFrame, y: np.ndarray, reference: str | None = "HC"
) -> dict[str, dict[str, Any]]:
    """Per numeric column: missing fraction, mean, SD and quantiles of all training
    rows, and the 2.5/50/97.5 % quantiles of the ``reference`` rows (controls)."""
    y = np.asarray(y).astype(str)
    stats = {}
    for c in X.columns:
        if c == SITE:
            continue
        v = X[c].to_numpy(dtype=float, na_value=np.nan)
        obs = v[~np.isnan(v)]
        ref = v[(y == reference) & ~np.isnan(v)] if reference else obs
        row: dict[str, Any] = {
            "n": int(obs.size),
            "missing": float(1 - obs.size / max(len(v), 1)),
            "mean": _f(obs.mean()) if obs.size else None,
            "sd": _f(obs.std(ddof=1)) if obs.size > 1 else None,
        }
        for q in QUANTILES:
            row[f"q{int(q * 100):02d}"] = _f(np.quantile(obs, q)) if obs.size else None
        row["controls_n"] = int(ref.size)
        for name, q in (("controls_q025", 0.025), ("controls_q50", 0.5)):
            row[name] = _f(np.quantile(ref, q)) if ref.size else None
        row["controls_q975"] = _f(np.quantile(ref, 0.975)) if ref.size else None
        stats[c] = row
    return stats


def background(X: pd.DataFrame, y: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Aggregated training rows for SHAP: per class, up to 4 k-means clusters of at
    least ``MIN_CLUSTER`` subjects (one cluster for a smaller class), each
    summarised by its members' medians."""
    y = np.asarray(y).astype(str)
    numeric = [c for c in X.columns if c != SITE]
    V = X[numeric].to_numpy(dtype=float, na_value=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing column
        center, scale = np.nanmean(V, axis=0), np.nanstd(V, axis=0)
    Z = np.nan_to_num((V - center) / np.where(scale > 0, scale, 1.0))
    rows = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        labels = np.zeros(len(idx), dtype=int)
        for k in range(min(4, len(idx) // MIN_CLUSTER), 1, -1):
            found = KMeans(k, n_init=4, random_state=seed).fit_predict(Z[idx])
            if np.bincount(found).min() >= MIN_CLUSTER:  # else fewer clusters
                labels = found
                break
        for j in np.unique(labels):
            members = V[idx[labels == j]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-missing column
                med = np.nanmedian(members, axis=0)
            rows.append(
                {
                    "class": str(c),
                    "n": int(len(members)),
                    "values": [_f(v) for v in med],
                }
            )
    return {"columns": numeric, "rows": rows}


def calibration(
    y: np.ndarray, proba: np.ndarray, classes: list[str], bins: int = 10
) -> dict[str, list[dict[str, float]]]:
    """Reliability of out-of-fold probabilities: per class, per decile of predicted
    probability, the mean prediction and the observed frequency."""
    y = np.asarray(y).astype(str)
    out = {}
    for k, c in enumerate(classes):
        p = proba[:, k]
        edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
        out[c] = [
            {
                "predicted": _f(p[which == b].mean()),
                "observed": _f((y[which == b] == c).mean()),
                "n": int((which == b).sum()),
            }
            for b in range(len(edges) - 1)
            if (which == b).any()
        ]
    return out


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a bundle depends on, and Python's."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _f(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None
