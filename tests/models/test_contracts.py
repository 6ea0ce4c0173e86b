"""The scikit-learn estimator contract, checked on every estimator the project defines.

Each check an estimator is expected to fail is listed with the reason; any other
failure, or a new estimator without an entry here, fails the suite.
"""

from __future__ import annotations

import inspect

from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

import models.estimators
import models.harmonize
import models.locked
import models.normative
import models.ood
import training.baselines
from models.estimators import (
    BalancedClassifier,
    ColumnChecker,
    DropColumns,
    FoldCalibratedClassifier,
    SignedLog,
)
from models.harmonize import ComBat
from models.locked import LockedModel
from models.normative import NormativeZ
from models.ood import NearestClassDistance
from training.baselines import CriteriaBaseline, MajorityBaseline, NfLCutoffBaseline

ESTIMATORS = [
    ColumnChecker(),
    SignedLog(),
    DropColumns(()),
    BalancedClassifier(LogisticRegression()),
    FoldCalibratedClassifier(LogisticRegression()),
    NormativeZ(covariates=(), reference=None),
    ComBat(covariates=(), reference=None),
    LockedModel(LogisticRegression(), None),
    NearestClassDistance(),
    MajorityBaseline(),
    NfLCutoffBaseline(),
    CriteriaBaseline(),
]

#: These read named DataFrame columns by design (the site column, column prefixes,
#: the covariates ``age``/``male``, ``nfl_pg_ml``, the criteria columns): the
#: pipeline's first step hands them a frame, while these checks pass bare arrays.
FRAME_ONLY_TRANSFORMER = [
    "check_complex_data",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimator_sparse_array",
    "check_estimator_sparse_matrix",
    "check_estimator_sparse_tag",
    "check_estimators_dtypes",
    "check_estimators_empty_data_messages",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit1d",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
]
#: A classifier's array checks: the transformer checks, less the three that only
#: transformers get, plus the classifier ones.
FRAME_ONLY_BASELINE = sorted(
    (
        set(FRAME_ONLY_TRANSFORMER)
        - {
            "check_transformer_data_not_an_array",
            "check_transformer_general",
            "check_transformer_preserve_dtypes",
        }
    )
    | {
        "check_classifier_data_not_an_array",
        "check_classifiers_classes",
        "check_classifiers_one_label",
        "check_classifiers_regression_target",
        "check_classifiers_train",
        "check_requires_y_none",
        "check_supervised_y_2d",
        "check_supervised_y_no_nan",
    }
)
FRAME_ONLY = {
    "ColumnChecker": FRAME_ONLY_TRANSFORMER,
    "SignedLog": FRAME_ONLY_TRANSFORMER,
    "DropColumns": FRAME_ONLY_TRANSFORMER,
    "NormativeZ": FRAME_ONLY_TRANSFORMER,
    # ComBat and the OOD detector refuse sparse input, as the checks want
    "ComBat": sorted(
        set(FRAME_ONLY_TRANSFORMER)
        - {
            "check_estimator_sparse_array",
            "check_estimator_sparse_matrix",
            "check_estimator_sparse_tag",
            "check_fit1d",
        }
    ),
    "NearestClassDistance": sorted(
        set(FRAME_ONLY_TRANSFORMER)
        - {
            "check_estimator_sparse_tag",
            "check_transformer_data_not_an_array",
            "check_transformer_general",
            "check_transformer_preserve_dtypes",
        }
    ),
    "LockedModel": [
        "check_classifier_data_not_an_array",
        "check_classifiers_classes",
        "check_classifiers_train",
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_estimator_sparse_array",
        "check_estimator_sparse_matrix",
        "check_estimator_sparse_tag",
        "check_estimators_dtypes",
        "check_estimators_fit_returns_self",
        "check_estimators_nan_inf",
        "check_estimators_overwrite_params",
        "check_estimators_pickle",
        "check_estimators_unfitted",
        "check_f_contiguous_array_estimator",
        "check_fit2d_1feature",
        "check_fit2d_predict1d",
        "check_fit_check_is_fitted",
        "check_fit_idempotent",
        "check_fit_score_takes_y",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_pipeline_consistency",
        "check_positive_only_tag_during_fit",
        "check_readonly_memmap_input",
        "check_supervised_y_2d",
    ],
    "NfLCutoffBaseline": FRAME_ONLY_BASELINE,
    "CriteriaBaseline": FRAME_ONLY_BASELINE,
}
FRAME_REASON = (
    "needs a DataFrame with named columns (by design); the check passes an array"
)
META = {
    "BalancedClassifier": {
        "check_estimators_unfitted": "predict before fit fails in the wrapped "
        "estimator, not with NotFittedError",
        "check_estimator_sparse_tag": "sparse input is passed to the wrapped "
        "estimator, which accepts it",
        "check_classifier_data_not_an_array": "sample weights are computed with "
        "numpy on the labels as given",
        "check_classifiers_regression_target": "the wrapped estimator, not the "
        "wrapper, rejects a continuous target, with its own message",
    },
    "FoldCalibratedClassifier": {
        "check_estimators_unfitted": "predict before fit fails in the calibrator, "
        "not with NotFittedError",
        "check_estimator_sparse_tag": "sparse input is passed to the wrapped "
        "estimator, which accepts it",
        "check_n_features_in": "n_features_in_ is the fitted calibrator's, not set "
        "by the wrapper",
        "check_n_features_in_after_fitting": "as check_n_features_in",
        "check_requires_y_none": "fails on y=None before validating it",
    },
}


def _expected(estimator) -> dict[str, str]:
    name = type(estimator).__name__
    if name in FRAME_ONLY:
        return dict.fromkeys(FRAME_ONLY[name], FRAME_REASON)
    return META.get(name, {})


def test_every_project_estimator_is_checked():
    defined = {
        cls.__name__
        for module in (
            models.estimators,
            models.harmonize,
            models.locked,
            models.normative,
            models.ood,
            training.baselines,
        )
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseEstimator)
        and cls.__module__ == module.__name__
        and not cls.__name__.startswith("_")
    }
    assert defined == {type(e).__name__ for e in ESTIMATORS}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected)
def test_sklearn_contract(estimator, check):
    check(estimator)
