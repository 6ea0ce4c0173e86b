"""Nested cross-validation: outer folds estimate, inner Optuna search tunes.

Outer folds are stratified by diagnosis and grouped by participant, so repeated
visits never straddle a fold. Each outer training fold runs its own search and
refits the whole pipeline; the outer test fold is only predicted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import StratifiedGroupKFold
from tqdm.auto import tqdm

from models.estimators import recording_fallbacks
from models.pipelines import PipelineSpec
from training.config import CVSpec, SearchSpec
from training.evaluation import score
from training.search import aligned_proba, tune


@dataclass(frozen=True)
class FoldResult:
    """One outer fold: its test rows, tuned params, probabilities and metrics."""

    fold: int
    test_index: np.ndarray
    params: dict[str, Any]
    proba: np.ndarray
    metrics: dict[str, float]
    study_name: str
    fallbacks: tuple[str, ...] = ()


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
    cv: CVSpec,
    search: SearchSpec,
    pipeline: PipelineSpec,
) -> FoldResult:
    name = f"{search.study_prefix}-{family}-outer{fold}"
    with recording_fallbacks() as fallbacks:
        params, _ = tune(
            family,
            X.iloc[train],
            y[train],
            groups[train],
            pipeline,
            search,
            seed=cv.seed + fold,
            study_name=name,
        )
        pipe = pipeline.build(family, params, list(X.columns))
        pipe.fit(X.iloc[train], y[train])
        proba = aligned_proba(pipe, X.iloc[test], classes)
    metrics = score(y[test], proba, classes, cv.mimics)
    return FoldResult(fold, test, params, proba, metrics, name, tuple(fallbacks))


def outer_splits(
    X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, cv: CVSpec
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(fold number, train, test) of every outer fold: ``cv.outer_folds``
    stratified by label, grouped by participant, reshuffled with seed
    ``cv.seed + r`` for repeat ``r``."""
    return [
        (r * cv.outer_folds + k, train, test)
        for r in range(cv.repeats)
        for k, (train, test) in enumerate(
            StratifiedGroupKFold(
                cv.outer_folds, shuffle=True, random_state=cv.seed + r
            ).split(X, y, groups)
        )
    ]


def on_same_folds(
    make: Callable[[], Any],
    X: pd.DataFrame,
    y: np.ndarray,
    result: NestedResult,
    *,
    n_jobs: int = 1,
) -> np.ndarray:
    """Out-of-fold probabilities of ``make()`` (no tuning) fitted on the training
    side of every outer fold of ``result`` (each repeat), averaged over repeats
    as :func:`nested_cv` averages: a comparison subject for subject."""

    def fold(test: np.ndarray) -> np.ndarray:
        train = np.setdiff1d(np.arange(len(X)), test)
        return aligned_proba(
            make().fit(X.iloc[train], y[train]), X.iloc[test], result.classes
        )

    probas = Parallel(n_jobs=n_jobs)(delayed(fold)(f.test_index) for f in result.folds)
    total = np.zeros((len(X), len(result.classes)))
    tested = np.zeros(len(X))
    for f, proba in zip(result.folds, probas, strict=True):
        total[f.test_index] += proba
        tested[f.test_index] += 1
    return total / tested[:, None]


def nested_cv(
    family: str,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    classes: list[str],
    cv: CVSpec,
    search: SearchSpec,
    pipeline: PipelineSpec,
    *,
    progress: bool = False,
    splits: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> NestedResult:
    """Run (repeated) nested CV of ``family``; out-of-fold probabilities, metrics.

    Outer folds: ``cv.outer_folds``, stratified by label, grouped by participant,
    reshuffled with seed ``cv.seed + r`` for repeat ``r``; ``cv.n_jobs`` folds at a
    time. Each fold's :class:`~models.estimators.FoldFallbackWarning` messages are
    kept in its ``fallbacks``. ``splits``: (train, test) index pairs to use instead
    (e.g. leave one site out), each subject tested once.
    """
    repeats = cv.repeats if splits is None else 1
    splits = (
        [(k, train, test) for k, (train, test) in enumerate(splits)]
        if splits is not None
        else outer_splits(X, y, groups, cv)
    )
    jobs = Parallel(n_jobs=cv.n_jobs, return_as="generator")(
        delayed(_run_fold)(
            k, train, test, family, X, y, groups, classes, cv, search, pipeline
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
    return NestedResult(family, classes, oof, folds, score(y, oof, classes, cv.mimics))
