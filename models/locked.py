"""The locked model: the diagnosis pipeline and its out-of-distribution detector.

What training registers and serving loads. Both parts are fitted on the same
training rows; ``predict_proba`` is the pipeline's, so MLflow's pyfunc (and
``mlflow models serve``) returns the class probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

#: Version of what training registers beside a LockedModel (its model card);
#: serving refuses another. Bump it when the card's keys or meaning change.
BUNDLE_FORMAT = 3


class LockedModel(ClassifierMixin, BaseEstimator):
    """A fitted diagnosis pipeline with an out-of-distribution detector beside it.

    Parameters
    ----------
    pipeline : classifier
        The diagnosis pipeline (:func:`models.pipelines.build_pipeline`).
    detector : estimator or None
        Scores how unlike the training classes a row is
        (:class:`models.ood.NearestClassDistance`); ``None`` for no detector.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from models.ood import NearestClassDistance
    >>> X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    >>> y = np.repeat(["ALS", "HC"], 20)
    >>> model = LockedModel(LogisticRegression(), NearestClassDistance()).fit(X, y)
    >>> model.predict_proba(X.head(2)).shape
    (2, 2)
    """

    def __init__(self, pipeline=None, detector=None):
        self.pipeline = pipeline
        self.detector = detector

    def fit(self, X: pd.DataFrame, y):
        if self.pipeline is None:
            raise ValueError("LockedModel needs a pipeline to fit; got None.")
        self.pipeline_ = clone(self.pipeline).fit(X, y)
        self.detector_ = (
            None if self.detector is None else clone(self.detector).fit(X, y)
        )
        self.classes_ = np.asarray(self.pipeline_.classes_)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        return self.pipeline_.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def ood_score(self, X: pd.DataFrame) -> np.ndarray:
        """The detector's score per row (NaN everywhere without a detector)."""
        check_is_fitted(self)
        if self.detector_ is None:
            return np.full(len(X), np.nan)
        return self.detector_.score_samples(X)
