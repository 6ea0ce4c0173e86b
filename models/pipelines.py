"""Pipeline factories: one function builds the whole fitted pipeline of a model family.

Every step learned from data (site harmonisation, normative z-scores, imputation with
missing-indicators, scaling, the classifier and its probability calibration) sits
inside the returned pipeline, so cross-validation refits it per fold.
Hyperparameter search spaces live next to the factory that uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.estimators import (
    SITE,
    BalancedClassifier,
    ColumnChecker,
    DropColumns,
    FoldCalibratedClassifier,
    SignedLog,
)
from models.harmonize import ComBat
from models.normative import NORMATIVE_PREFIXES, NormativeZ

MODEL_FAMILIES = ("logreg", "svm", "random_forest", "xgboost")
CALIBRATION_METHODS = ("sigmoid", "isotonic", "temperature")
#: Types a fitted pipeline holds beyond skops' defaults: pass them as MLflow's
#: ``skops_trusted_types`` when logging or loading a model.
SKOPS_TRUSTED_TYPES = (
    "models.estimators.BalancedClassifier",
    "models.estimators.ColumnChecker",
    "models.estimators.DropColumns",
    "models.estimators.FoldCalibratedClassifier",
    "models.estimators.SignedLog",
    "models.harmonize.ComBat",
    "models.locked.LockedModel",
    "models.ood.NearestClassDistance",
    "models.normative.NormativeZ",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.tree._tree.Tree",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
)
SKEWED = (
    "nfl_pg_ml",
    "chi3l1_ng_ml",
    "t2_lesion_volume_ml",
    "months_since_onset",
    "alsfrs_r_progression_rate",
)


@dataclass(frozen=True)
class PipelineSpec:
    """Everything :func:`build_pipeline` needs besides the family, its
    hyperparameters and the columns: built once per training run and passed down
    to every fold, search and assessment step (see its parameters there)."""

    calibrate: str | None = "temperature"
    harmonize: bool = True
    normative: bool = True
    reference: str | None = "HC"
    covariates: tuple[str, ...] = ("age", "male")
    covariates_as_features: bool = True
    seed: int = 0

    def build(
        self, family: str, params: dict[str, Any], columns: list[str]
    ) -> Pipeline:
        """The unfitted pipeline of ``family`` with ``params`` over ``columns``."""
        return build_pipeline(
            family,
            params,
            columns,
            self.seed,
            calibrate=self.calibrate,
            harmonize=self.harmonize,
            normative=self.normative,
            reference=self.reference,
            covariates=self.covariates,
            covariates_as_features=self.covariates_as_features,
        )

    def uncalibrated(self) -> PipelineSpec:
        """This spec without the calibration wrapper (3x cheaper to fit): the
        inner search and the assessment's quick comparisons use it."""
        return replace(self, calibrate=None)


def build_pipeline(
    family: str,
    params: dict[str, Any],
    columns: list[str],
    seed: int = 0,
    *,
    calibrate: str | None = "temperature",
    harmonize: bool = True,
    normative: bool = True,
    reference: str | None = "HC",
    covariates: tuple[str, ...] = ("age", "male"),
    covariates_as_features: bool = True,
) -> Pipeline:
    """Return an unfitted pipeline for ``family`` with hyperparameters ``params``.

    Steps: ``columns`` (:class:`~models.estimators.ColumnChecker`), then ``harmonize``
    (:class:`~models.harmonize.ComBat`, when ``"site"`` is among ``columns``), then
    ``normative`` (:class:`~models.normative.NormativeZ`), then the family's own
    steps and ``classifier``. Everything learned from data is refit by each
    cross-validation fold, including calibration.

    Parameters
    ----------
    family : {"logreg", "svm", "random_forest", "xgboost"}
        Elastic-net logistic regression or RBF SVM (log of skewed columns, median
        imputation with missing-indicators, scaling); random forest (imputation with
        missing-indicators); XGBoost (native missing values, balanced weights).
    params : dict
        Hyperparameters, as sampled by :func:`suggest`. A ``"normative"`` entry
        (bool) overrides the ``normative`` keyword.
    columns : list of str
        The input columns (checked at every transform); ``"site"`` among them is the
        acquisition site, read by the harmoniser and then dropped.
    seed : int
        Random state of the learner.
    calibrate : {"sigmoid", "isotonic", "temperature"} or None
        Wrap the classifier in :class:`~models.estimators.FoldCalibratedClassifier`
        (3 internal folds of the training data). ``None`` or ``"none"``: raw
        probabilities, except for ``"svm"``, which has none and is always
        Platt-scaled (``"sigmoid"``).
    harmonize : bool
        ComBat site harmonisation of imaging columns (only when ``"site"`` is among
        ``columns``; otherwise the site column is ignored).
    normative : bool
        Replace imaging, NfL and CHI3L1 values by z-scores against training controls
        of the same age and sex.
    reference : str or None
        Class label of the controls that ComBat and the normative z-scores are
        fitted on; ``None`` uses every training row.
    covariates : tuple of str
        Covariates ComBat and the normative z-scores adjust for; each must be
        among ``columns`` when either step is on (fit raises otherwise).
    covariates_as_features : bool
        Keep the covariates as classifier inputs; ``False`` drops them (step
        ``drop_covariates``) after harmonisation and normative scoring.

    Examples
    --------
    >>> pipe = build_pipeline("logreg", {"C": 1.0, "l1_ratio": 0.5},
    ...                      ["age", "male", "nfl_pg_ml"])
    >>> [name for name, _ in pipe.steps]
    ['columns', 'normative', 'log', 'impute', 'scale', 'classifier']
    >>> pipe = build_pipeline("svm", {"C": 1.0, "gamma": 0.01}, ["site", "fs_x_mm3"])
    >>> [name for name, _ in pipe.steps]
    ['columns', 'harmonize', 'normative', 'log', 'impute', 'scale', 'classifier']
    """
    if family not in MODEL_FAMILIES:
        raise ValueError(
            f"unknown model family {family!r}; choose one of {MODEL_FAMILIES}"
        )
    if calibrate not in (*CALIBRATION_METHODS, None, "none"):
        raise ValueError(
            f"calibrate={calibrate!r} is not a calibration method; choose one of "
            f"{CALIBRATION_METHODS}, or None for raw probabilities."
        )
    normative = bool(params.get("normative", normative))
    harmonize = harmonize and SITE in columns
    steps: list[tuple[str, Any]] = [
        ("columns", ColumnChecker([c for c in columns if c != SITE or harmonize]))
    ]
    covariates = tuple(covariates)
    if harmonize:
        steps.append(("harmonize", ComBat(covariates=covariates, reference=reference)))
    if normative:
        steps.append(
            ("normative", NormativeZ(covariates=covariates, reference=reference))
        )
    if not covariates_as_features and covariates:
        steps.append(("drop_covariates", DropColumns(covariates)))
    clf = _classifier(family, params, seed)
    if family in ("logreg", "svm"):
        # z-scored concentrations are already on a log scale
        logged = tuple(
            c for c in SKEWED if not (normative and c.startswith(NORMATIVE_PREFIXES))
        )
        steps += [("log", SignedLog(logged)), ("impute", _imputer())]
        steps.append(("scale", StandardScaler()))
    elif family == "random_forest":
        steps.append(("impute", _imputer()))
    elif family == "xgboost":
        clf = BalancedClassifier(clf)
    if calibrate == "none":
        calibrate = None
    if calibrate is None and family == "svm":
        calibrate = "sigmoid"
    if calibrate is not None:
        clf = FoldCalibratedClassifier(clf, method=calibrate, cv=3)
    return Pipeline([*steps, ("classifier", clf)])


def _imputer() -> SimpleImputer:
    return SimpleImputer(
        strategy="median", add_indicator=True, keep_empty_features=True
    )


def _classifier(family: str, params: dict[str, Any], seed: int):
    """The unfitted learner of ``family``."""
    missing = [k for k in SEARCH_KEYS[family] if k not in params]
    if missing:
        raise ValueError(
            f"params for {family!r} lack {missing}; sample them with "
            f"suggest({family!r}, trial) or pass all of {list(SEARCH_KEYS[family])}."
        )
    if family == "logreg":
        return LogisticRegression(
            C=params["C"],
            l1_ratio=params["l1_ratio"],
            solver="saga",
            class_weight="balanced",
            max_iter=3000,
            tol=1e-3,
            random_state=seed,
        )
    if family == "svm":
        from sklearn.svm import SVC

        return SVC(
            kernel="rbf",
            C=params["C"],
            gamma=params["gamma"],
            class_weight="balanced",
            random_state=seed,
        )
    if family == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=params["n_estimators"],
            max_depth=params["max_depth"],
            min_samples_leaf=params["min_samples_leaf"],
            max_features=params["max_features"],
            class_weight="balanced_subsample",
            n_jobs=1,
            random_state=seed,
        )
    from xgboost import XGBClassifier

    return XGBClassifier(
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


def _logreg_space(trial) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 1e-3, 10.0, log=True),
        "l1_ratio": trial.suggest_float("l1_ratio", 0.0, 1.0),
    }


def _svm_space(trial) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
        "gamma": trial.suggest_float("gamma", 1e-4, 1e-1, log=True),
    }


def _random_forest_space(trial) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 500, log=True),
        "max_depth": trial.suggest_int("max_depth", 3, 16, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 10, log=True),
        "max_features": trial.suggest_float("max_features", 0.05, 0.6, log=True),
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
    "svm": _svm_space,
    "random_forest": _random_forest_space,
    "xgboost": _xgboost_space,
}
SEARCH_KEYS = {
    "logreg": ("C", "l1_ratio"),
    "svm": ("C", "gamma"),
    "random_forest": ("n_estimators", "max_depth", "min_samples_leaf", "max_features"),
    "xgboost": (
        "n_estimators",
        "max_depth",
        "learning_rate",
        "subsample",
        "colsample_bytree",
        "min_child_weight",
        "reg_lambda",
    ),
}


def suggest(family: str, trial) -> dict[str, Any]:
    """Sample hyperparameters of ``family`` from an Optuna ``trial``."""
    return SEARCH_SPACES[family](trial)
