"""The inner search copes with a class too rare for every inner fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import FoldFallbackWarning
from models.pipelines import PipelineSpec
from training.config import SearchSpec
from training.search import aligned_proba, tune


def test_tune_survives_a_class_missing_from_an_inner_training_fold(tmp_path):
    """A single-centre cohort's MMN: 1 row in the outer training fold, so one inner
    training fold has none; the search says so and still ranks its candidates."""
    rng = np.random.default_rng(0)
    y = np.array(["ALS"] * 20 + ["HC"] * 20 + ["MMN"])
    X = pd.DataFrame({"nfl_pg_ml": rng.normal(size=41) + (y == "ALS") * 2})
    X["mrs_glu_naa"] = rng.normal(size=41) - (y == "MMN") * 3
    search = SearchSpec(2, 3, f"sqlite:///{tmp_path / 'optuna.db'}", "t")
    spec = PipelineSpec(harmonize=False, normative=False, covariates=())
    with pytest.warns(FoldFallbackWarning, match="no training rows of MMN"):
        params, study = tune(
            "logreg", X, y, np.arange(41), spec, search, seed=0, study_name="rare"
        )
    assert set(params) == {"C", "l1_ratio"}
    assert all(np.isfinite(t.value) for t in study.trials)


def test_aligned_proba_puts_unseen_classes_at_zero():
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    fit = LogisticRegression().fit(X, ["HC", "HC", "ALS", "ALS"])
    proba = aligned_proba(fit, X, ["ALS", "MMN", "HC"])
    assert (proba[:, 1] == 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, [0, 2]], fit.predict_proba(X))
