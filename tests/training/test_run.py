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


def _quick(tmp_path, name: str, **kwargs) -> TrainConfig:
    return TrainConfig(
        models=("logreg",),
        repeats=kwargs.pop("repeats", 1),
        n_permutations=kwargs.pop("n_permutations", 0),
        outer_folds=3,
        inner_folds=2,
        n_trials=2,
        n_bootstrap=50,
        n_jobs=1,
        tracking_uri=f"sqlite:///{tmp_path / name}.db",
        optuna_storage=f"sqlite:///{tmp_path / name}-optuna.db",
        cache_dir=tmp_path / "cache",
        **kwargs,
    )


def test_same_seed_same_metrics_and_excel_features_train(
    small_cohort, tmp_path, monkeypatch
):
    """Two runs with one seed agree exactly; a spreadsheet trains like a cohort."""
    from features.extract import extract_features
    from training.run import run

    monkeypatch.chdir(tmp_path)
    table = extract_features(small_cohort, n_jobs=1).table
    sheet = tmp_path / "features.xlsx"
    table.rename(columns={"diagnosis": "dx"}).to_excel(sheet, index=False)
    first = run(_quick(tmp_path, "a", features=sheet, label_column="dx"))
    second = run(_quick(tmp_path, "b", features=sheet, label_column="dx"))
    assert first.results["logreg"].metrics == second.results["logreg"].metrics
    np.testing.assert_array_equal(
        first.results["logreg"].oof_proba, second.results["logreg"].oof_proba
    )
    assert first.oracle is None  # no simulation truth beside a spreadsheet
    ci = first.assessment.champion.metrics.loc[["macro_auc", "balanced_accuracy"]]
    assert ((ci["ci_low"] <= ci["estimate"]) & (ci["estimate"] <= ci["ci_high"])).all()


def test_als_vs_mimics_task_runs(small_cohort, tmp_path, monkeypatch):
    from training.run import run

    monkeypatch.chdir(tmp_path)
    result = run(_quick(tmp_path, "m", cohort=small_cohort, task="als_vs_mimics"))
    assert result.results["logreg"].classes == ["ALS", "mimic"]
    assert "als_vs_rest_auc" in result.oracle


def test_registered_champion_adjusts_for_age_and_sex(trained):
    """Read from the registered model's fitted steps, not from the config."""
    from serve.bundle import load_bundle
    from training.run import fitted_covariates

    result, cfg = trained
    bundle = load_bundle(result.model_uri, cfg.tracking_uri)
    fitted = fitted_covariates(bundle.pipeline)
    assert fitted == {"harmonize": ["age", "male"], "normative": ["age", "male"]}
    assert bundle.metadata["adjustment"] == fitted
    assert {"age", "male"} <= set(bundle.feature_columns)  # also classifier inputs
    assert result.adjustment == fitted and "covariates of the champion" in (
        result.summary()
    )


def test_fold_fallbacks_are_recorded_in_the_run_not_printed(trained):
    """Small folds make ComBat and the normative model fall back; each fold's
    FoldFallbackWarning is counted into the notes and run_notes.json by name."""
    import json

    result, cfg = trained
    recorded = [
        m for r in result.results.values() for f in r.folds for m in f.fallbacks
    ]
    assert recorded, "the 60-subject cohort's folds have too few controls per site"
    assert all(m.split(":")[0] in ("ComBat", "NormativeZ") for m in recorded)
    assert any("fitted steps fell back" in n for n in result.notes)
    mlflow.set_tracking_uri(cfg.tracking_uri)
    path = mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path="run_notes.json"
    )
    with open(path) as fh:
        notes = json.load(fh)
    first = list(dict.fromkeys(recorded))[:10]  # distinct, in fold order
    assert set(first) <= set(notes["fold_fallbacks"])


def test_peers_stand_beside_the_champion_chosen_by_log_loss(trained):
    """Default XGBoost and plain logistic regression on the same folds, in the
    summary and in MLflow; the champion has the lowest nested-CV log loss."""
    result, cfg = trained
    assert set(result.assessment.peers) == {"xgboost_default", "logreg_plain"}
    losses = {f: r.metrics["log_loss"] for f, r in result.results.items()}
    assert result.champion == min(losses, key=losses.get)
    text = result.summary()
    assert "peer: xgboost_default" in text and "peer: logreg_plain" in text
    assert "log loss above the oracle" in text
    mlflow.set_tracking_uri(cfg.tracking_uri)
    metrics = mlflow.get_run(result.run_id).data.metrics
    for name in ("xgboost_default", "logreg_plain"):
        for m in ("log_loss", "brier", "classwise_ece", "log_loss_ci_high"):
            assert np.isfinite(metrics[f"peer_{name}_{m}"])
    assert "champion_classwise_ece" in metrics
