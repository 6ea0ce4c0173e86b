"""The whole training flow on a small simulated cohort."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from training.__main__ import parse
from training.config import TrainConfig


def test_run_tracks_nested_cv_and_registers_champion(trained):
    result, cfg = trained
    assert set(result.results) == {"logreg", "xgboost"}
    for res in result.results.values():
        assert not np.isnan(res.oof_proba).any()  # every subject predicted out of fold
        np.testing.assert_allclose(res.oof_proba.sum(axis=1), 1.0, atol=1e-6)
        assert len(res.folds) == cfg.outer_folds
        assert 0.5 < res.metrics["macro_auc"] <= 1.0
    assert result.oracle is not None and result.oracle["macro_auc"] > 0.5
    assert result.model_uri == "models:/als-mimics-dx@champion"
    mlflow.set_tracking_uri(cfg.tracking_uri)
    run = mlflow.get_run(result.run_id)
    assert run.data.params["champion"] == result.champion
    assert "champion_macro_auc" in run.data.metrics
    assert "oracle_macro_auc" in run.data.metrics
    children = mlflow.search_runs(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
    )
    assert len(children) == 2  # one nested run per model family
    info = mlflow.models.get_model_info(result.model_uri)
    assert info.metadata["classes"] == ["ALS", "MMN", "NMO", "MS", "HC"]
    assert "oracle (Bayes-optimal" in result.summary()


def test_outer_folds_are_grouped_by_participant(trained):
    result, _ = trained
    for res in result.results.values():
        tested = np.concatenate([f.test_index for f in res.folds])
        assert len(tested) == len(set(tested))  # each subject tested exactly once


def test_cli_builds_frozen_config():
    cfg = parse(["--trials", "3", "--models", "logreg", "--seed", "5"])
    assert cfg.n_trials == 3 and cfg.models == ("logreg",) and cfg.seed == 5
    with pytest.raises(AttributeError):
        cfg.seed = 1  # frozen


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"models": ("svm_typo",)}, "unknown model families"),
        ({"outer_folds": 1}, "at least 2 folds"),
        ({"n_trials": 0}, "n_trials = 0.*use at least 1"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)
