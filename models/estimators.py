"""Small scikit-learn estimators used inside the diagnosis pipelines.

Each one follows the scikit-learn contract (``__init__`` stores parameters,
``fit`` validates and learns attributes ending in ``_``), so cross-validation refits
everything learned from data inside each fold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted


class ColumnChecker(TransformerMixin, BaseEstimator):
    """Check that the input frame has the feature columns seen in ``fit``.

    The first step of every pipeline: at ``transform`` it reports the column
    difference (missing and unexpected columns) instead of silently misaligning, and
    returns the columns in the fitted order as floats.

    Parameters
    ----------
    columns : list of str or None
        The feature columns to keep; ``None`` keeps every column seen in ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> checker = ColumnChecker().fit(pd.DataFrame({"a": [1.0]}))
    >>> checker.transform(pd.DataFrame({"a": [2]}))
         a
    0  2.0
    """

    def __init__(self, columns: list[str] | None = None):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"expected a pandas DataFrame with named feature columns, got "
                f"{type(X).__name__}; build it with features.extract or pandas."
            )
        cols = list(X.columns) if self.columns is None else list(self.columns)
        self._check(X, cols)
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        self.n_features_in_ = len(cols)
        return self

    def _check(self, X: pd.DataFrame, cols: list[str]) -> None:
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise ValueError(
                f"input is missing {len(missing)} feature column(s) the model was "
                f"trained with: {missing[:10]}{' ...' if len(missing) > 10 else ''}. "
                "Add them (an empty column is fine: values may be missing) or "
                "retrain on this feature set."
            )
        bad = [
            c
            for c in cols
            if not (pd.api.types.is_numeric_dtype(X[c]) or X[c].isna().all())
        ]
        if bad:
            example = X[bad[0]].dropna().iloc[0]
            raise ValueError(
                f"feature column(s) {bad[:10]} must be numeric; e.g. {bad[0]} holds "
                f"{example!r}. Convert the values to numbers or leave cells empty."
            )

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        cols = list(self.feature_names_in_)
        self._check(X, cols)
        return X[cols].astype(float)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return self.feature_names_in_.copy()


class SignedLog(TransformerMixin, BaseEstimator):
    """Signed ``log1p`` of the named right-skewed columns; stateless."""

    def __init__(self, columns: tuple[str, ...] = ()):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None):
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        X = X.copy()
        for c in self.columns:
            if c in X:
                X[c] = np.sign(X[c]) * np.log1p(np.abs(X[c]))
        return X

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_.copy()


class BalancedClassifier(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on integer-encoded labels with balanced sample weights.

    Lets estimators without ``class_weight`` (XGBoost) weight classes inversely to
    their frequency, and keeps string class labels in ``classes_``.

    Parameters
    ----------
    estimator : classifier
        Cloned and fitted on ``LabelEncoder``-encoded ``y``.
    balanced : bool
        Use ``compute_sample_weight("balanced", y)``.
    """

    def __init__(self, estimator=None, balanced: bool = True):
        self.estimator = estimator
        self.balanced = balanced

    def fit(self, X, y):
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        weight = compute_sample_weight("balanced", y) if self.balanced else None
        self.estimator_ = clone(self.estimator).fit(
            X, self.encoder_.transform(y), sample_weight=weight
        )
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", None)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
