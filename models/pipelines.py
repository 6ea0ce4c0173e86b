"""Pipeline factories: one function builds the whole fitted pipeline of a model family.

Every step learned from data (imputation with missing-indicators, scaling, the
classifier) sits inside the returned pipeline, so cross-validation refits it per
fold. Hyperparameter search spaces live next to the factory that uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.estimators import BalancedClassifier, ColumnChecker, SignedLog

MODEL_FAMILIES = ("logreg", "xgboost")
SKEWED = (
    "nfl_pg_ml",
    "chi3l1_ng_ml",
    "t2_lesion_volume_ml",
    "months_since_onset",
    "alsfrs_r_progression_rate",
)


def make_pipeline(
    family: str, params: dict[str, Any], columns: list[str], seed: int = 0
) -> Pipeline:
    """Return an unfitted pipeline for ``family`` with hyperparameters ``params``.

    Parameters
    ----------
    family : {"logreg", "xgboost"}
        Elastic-net logistic regression (imputation + missing-indicators + scaling)
        or gradient-boosted trees (XGBoost, native missing values, balanced weights).
    params : dict
        Hyperparameters, as sampled by :func:`suggest`.
    columns : list of str
        The feature columns the pipeline consumes (checked at every transform).
    seed : int
        Random state of the learner.

    Examples
    --------
    >>> pipe = make_pipeline("logreg", {"C": 1.0, "l1_ratio": 0.5}, ["nfl_pg_ml"])
    >>> [name for name, _ in pipe.steps]
    ['columns', 'log', 'impute', 'scale', 'classifier']
    """
    if family == "logreg":
        clf = LogisticRegression(
            C=params["C"],
            l1_ratio=params["l1_ratio"],
            solver="saga",
            class_weight="balanced",
            max_iter=3000,
            tol=1e-3,
            random_state=seed,
        )
        return Pipeline(
            [
                ("columns", ColumnChecker(columns)),
                ("log", SignedLog(SKEWED)),
                (
                    "impute",
                    SimpleImputer(
                        strategy="median", add_indicator=True, keep_empty_features=True
                    ),
                ),
                ("scale", StandardScaler()),
                ("classifier", clf),
            ]
        )
    if family == "xgboost":
        from xgboost import XGBClassifier

        clf = XGBClassifier(
            n_estimators=params["n_estimators"],
            max_depth=params["max_depth"],
            learning_rate=params["learning_rate"],
            subsample=params["subsample"],
            colsample_bytree=params["colsample_bytree"],
            min_child_weight=params["min_child_weight"],
            reg_lambda=params["reg_lambda"],
            tree_method="hist",
            n_jobs=1,
            random_state=seed,
            eval_metric="mlogloss",
        )
        return Pipeline(
            [
                ("columns", ColumnChecker(columns)),
                ("classifier", BalancedClassifier(clf)),
            ]
        )
    raise ValueError(f"unknown model family {family!r}; choose one of {MODEL_FAMILIES}")


def _logreg_space(trial) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 1e-3, 10.0, log=True),
        "l1_ratio": trial.suggest_float("l1_ratio", 0.0, 1.0),
    }


def _xgboost_space(trial) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 5),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "min_child_weight": trial.suggest_float(
            "min_child_weight", 0.5, 10.0, log=True
        ),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 10.0, log=True),
    }


SEARCH_SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "logreg": _logreg_space,
    "xgboost": _xgboost_space,
}


def suggest(family: str, trial) -> dict[str, Any]:
    """Sample hyperparameters of ``family`` from an Optuna ``trial``."""
    return SEARCH_SPACES[family](trial)
