"""Nested cross-validation: outer folds estimate, inner Optuna search tunes.

Outer folds are stratified by diagnosis and grouped by participant, so repeated
visits never straddle a fold. Each outer training fold runs its own search and
refits the whole pipeline; the outer test fold is only predicted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import StratifiedGroupKFold
from tqdm.auto import tqdm

from models.pipelines import make_pipeline
from training.metrics import score
from training.search import tune


@dataclass(frozen=True)
class FoldResult:
    """One outer fold: its test rows, tuned params, probabilities and metrics."""

    fold: int
    test_index: np.ndarray
    params: dict[str, Any]
    proba: np.ndarray
    metrics: dict[str, float]
    study_name: str


@dataclass(frozen=True)
class NestedResult:
    """Out-of-fold probabilities of one model family and its per-fold results."""

    family: str
    classes: list[str]
    oof_proba: np.ndarray
    folds: list[FoldResult]
    metrics: dict[str, float]


def _run_fold(
    fold: int,
    train: np.ndarray,
    test: np.ndarray,
    family: str,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    classes: list[str],
    *,
    n_trials: int,
    inner_folds: int,
    seed: int,
    storage_url: str,
    study_prefix: str,
    options: dict[str, Any],
) -> FoldResult:
    name = f"{study_prefix}-{family}-outer{fold}"
    params, _ = tune(
        family,
        X.iloc[train],
        y[train],
        groups[train],
        n_trials=n_trials,
        inner_folds=inner_folds,
        seed=seed + fold,
        storage_url=storage_url,
        study_name=name,
        options=options,
    )
    pipe = make_pipeline(family, params, list(X.columns), seed=seed, **options)
    pipe.fit(X.iloc[train], y[train])
    proba = _aligned(pipe, X.iloc[test], classes)
    return FoldResult(fold, test, params, proba, score(y[test], proba, classes), name)


def _aligned(pipe, X: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Probabilities with columns in ``classes`` order (0 for a class unseen in fit)."""
    raw = pipe.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    for j, c in enumerate(pipe.classes_):
        out[:, classes.index(c)] = raw[:, j]
    return out


def nested_cv(
    family: str,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    classes: list[str],
    *,
    outer_folds: int,
    inner_folds: int,
    n_trials: int,
    seed: int,
    storage_url: str,
    study_prefix: str,
    n_jobs: int = -1,
    repeats: int = 1,
    options: dict[str, Any] | None = None,
    progress: bool = False,
) -> NestedResult:
    """Run (repeated) nested CV of ``family``; out-of-fold probabilities, metrics.

    Outer folds: stratified by label, grouped by participant, reshuffled with seed
    ``seed + r`` for repeat ``r``.
    """
    splits = [
        (r * outer_folds + k, train, test)
        for r in range(repeats)
        for k, (train, test) in enumerate(
            StratifiedGroupKFold(
                outer_folds, shuffle=True, random_state=seed + r
            ).split(X, y, groups)
        )
    ]
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_run_fold)(
            k,
            train,
            test,
            family,
            X,
            y,
            groups,
            classes,
            n_trials=n_trials,
            inner_folds=inner_folds,
            seed=seed,
            storage_url=storage_url,
            study_prefix=study_prefix,
            options=options or {},
        )
        for k, train, test in splits
    )
    folds = list(
        tqdm(
            jobs,
            total=len(splits),
            desc=f"{family} outer folds",
            unit="fold",
            disable=not progress,
        )
    )
    # Out-of-fold probabilities averaged over repeats (each subject is tested once
    # per repeat).
    total = np.zeros((len(X), len(classes)))
    for f in folds:
        total[f.test_index] += f.proba
    oof = total / repeats
    return NestedResult(family, classes, oof, folds, score(y, oof, classes))
