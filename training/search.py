"""Inner-loop hyperparameter search with Optuna (seeded TPE, pruning, RDB storage)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedGroupKFold

from common.files import store_lock
from models.estimators import FoldFallbackWarning
from models.pipelines import PipelineSpec, suggest
from training.config import SearchSpec


def aligned_proba(pipe, X: pd.DataFrame, classes) -> np.ndarray:
    """Probabilities with columns in ``classes`` order; 0 for a class the fit did
    not see (a rare class absent from a small training fold)."""
    raw = pipe.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    for j, c in enumerate(pipe.classes_):
        out[:, list(classes).index(c)] = raw[:, j]
    return out


def storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna storage of ``url``.

    ``sqlite:///F`` (the embedded default; waits for locks so parallel folds and
    trainings can share it, its schema created by one process at a time),
    ``postgresql://...`` and other SQLAlchemy URLs (RDB storage, for many
    workers; PostgreSQL needs ``pip install '.[dask]'`` for its driver), or
    ``journal:///path/F.log``: Optuna's journal file, appended under a file lock,
    for workers that share a file system but no database server.
    """
    if url.startswith("journal://"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix("journal://")
        if not path:
            raise ValueError(
                f"Optuna storage {url!r} names no file; give journal:///path/file.log."
            )
        return JournalStorage(JournalFileBackend(path))
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with store_lock(url):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except ModuleNotFoundError as exc:
            raise ValueError(
                f"Optuna storage {url.split('@')[-1]!r} needs the database driver "
                f"{exc.name!r}, which is not installed: pip install '.[dask]' "
                "(psycopg for PostgreSQL)."
            ) from None


def tune(
    family: str,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    pipeline: PipelineSpec,
    search: SearchSpec,
    *,
    seed: int,
    study_name: str,
) -> tuple[dict[str, Any], optuna.Study]:
    """Search hyperparameters of ``family`` by inner grouped, stratified K-fold.

    ``search.n_trials`` trials of TPE sampling seeded with ``seed``, over
    ``search.inner_folds`` folds, the study stored in ``search.storage_url``.
    Candidates are ranked without the calibration wrapper (3x cheaper); the
    pipeline refit on the outer training fold is calibrated as ``pipeline`` says.
    The objective is the mean inner-fold multi-class log loss (a proper scoring
    rule, so it rewards calibrated probabilities); each inner fold is reported so the
    median pruner can stop hopeless trials early.

    Returns
    -------
    best_params : dict
    study : optuna.Study
        Stored under ``study_name`` in ``search.storage_url`` (replaced if it
        existed).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = storage(search.storage_url)
    try:
        optuna.delete_study(study_name=study_name, storage=store)
    except KeyError:
        pass
    study = optuna.create_study(
        study_name=study_name,
        storage=store,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4),
    )
    splits = list(
        StratifiedGroupKFold(search.inner_folds, shuffle=True, random_state=seed).split(
            X, y, groups
        )
    )
    labels = np.unique(y)
    columns = list(X.columns)
    for k, (train, _) in enumerate(splits):
        absent = sorted(set(labels) - set(y[train]))
        if absent:
            warnings.warn(
                f"search: inner fold {k} has no training rows of {', '.join(absent)}; "
                "its test rows of them cost the clipped log loss for every "
                "candidate.",
                FoldFallbackWarning,
                stacklevel=2,
            )

    fast = replace(pipeline.uncalibrated(), seed=seed)  # learners seeded as the sampler

    def objective(trial: optuna.Trial) -> float:
        params = suggest(family, trial)
        losses = []
        for step, (train, test) in enumerate(splits):
            pipe = fast.build(family, params, columns)
            pipe.fit(X.iloc[train], y[train])
            # an inner fold may lack a rare class: its rows then cost the clipped
            # log loss, the same for every candidate
            proba = aligned_proba(pipe, X.iloc[test], labels)
            losses.append(log_loss(y[test], proba, labels=labels))
            trial.report(float(np.mean(losses)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(losses))

    study.optimize(objective, n_trials=search.n_trials)
    return study.best_params, study
