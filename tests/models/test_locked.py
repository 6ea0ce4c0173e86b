"""The locked model serves the pipeline's probabilities and the detector's score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from models.locked import LockedModel
from models.ood import NearestClassDistance


def _data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 4)), columns=list("abcd"))
    y = np.where(X["a"] > 0, "ALS", "HC")
    return X, y


def test_probabilities_are_the_pipelines_and_the_score_the_detectors():
    X, y = _data()
    model = LockedModel(LogisticRegression(), NearestClassDistance()).fit(X, y)
    ref = LogisticRegression().fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(X))
    assert model.classes_.tolist() == ["ALS", "HC"]
    assert (model.predict(X) == ref.predict(X)).all()
    np.testing.assert_allclose(model.ood_score(X), model.detector_.score_samples(X))


def test_without_a_detector_the_score_is_nan():
    X, y = _data()
    model = LockedModel(LogisticRegression()).fit(X, y)
    assert np.isnan(model.ood_score(X)).all()


def test_fit_without_a_pipeline_raises():
    X, y = _data()
    with pytest.raises(ValueError, match="needs a pipeline"):
        LockedModel().fit(X, y)
