"""One training run: nested CV of each model family, champion refit, MLflow record."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from models.pipelines import make_pipeline
from training import tracking
from training.config import TrainConfig
from training.data import load_training_data, oracle_posteriors
from training.metrics import score
from training.nested_cv import NestedResult, nested_cv
from training.search import storage, tune

log = logging.getLogger(__name__)
PACKAGES = ("scikit-learn", "xgboost", "mlflow", "optuna", "numpy", "pandas")


@dataclass(frozen=True)
class RunResult:
    """What a run produced: nested-CV results, the champion, where to find it."""

    results: dict[str, NestedResult]
    champion: str
    model_uri: str
    run_id: str
    tracking_uri: str
    oracle: dict[str, float] | None
    seconds: float

    def summary(self) -> str:
        """The console table: nested-CV metrics of each family beside the oracle."""
        rows = {f: r.metrics for f, r in self.results.items()}
        if self.oracle:
            rows["oracle (Bayes-optimal, simulation truth)"] = self.oracle
        table = pd.DataFrame(rows).T[
            ["macro_auc", "als_vs_rest_auc", "balanced_accuracy"]
        ]
        lines = [
            "",
            "Nested cross-validation (out-of-fold, all subjects):",
            table.round(3).to_string(),
            "",
            f"champion: {self.champion} -> {self.model_uri}",
            f"MLflow run {self.run_id} in {self.tracking_uri} "
            f"(mlflow ui --backend-store-uri {self.tracking_uri})",
            f"wall time {self.seconds:.0f} s",
        ]
        return "\n".join(lines)


def run(cfg: TrainConfig) -> RunResult:
    """Train, evaluate and register a model as ``cfg`` says (see TrainConfig)."""
    start = time.perf_counter()
    data = load_training_data(cfg)
    classes = [c for c in cfg.task_classes() if c in set(data.y)]
    if len(classes) < 2:
        raise ValueError(
            f"{data.source}: task {cfg.task!r} needs two classes with subjects; "
            f"found {classes}."
        )
    columns = list(data.X.columns)
    tracking.start(cfg.tracking_uri, cfg.experiment)
    storage(cfg.optuna_storage)  # create the schema once, before parallel folds
    with mlflow.start_run(
        run_name=f"train-{cfg.task}-{Path(data.source).name}"
    ) as parent:
        prefix = f"{cfg.experiment}-{parent.info.run_id[:8]}"
        mlflow.log_params({k: str(v) for k, v in asdict(cfg).items()})
        mlflow.log_params(
            {
                "data_source": data.source,
                "data_fingerprint": data.fingerprint,
                "n_training_subjects": len(data.y),
                "n_features": len(columns),
            }
        )
        mlflow.set_tags(
            {"optuna_storage": cfg.optuna_storage, "optuna_study_prefix": prefix}
        )
        tracking.log_json(dict(pd.Series(data.y).value_counts()), "class_counts.json")
        results = {}
        for family in cfg.models:
            log.info(
                "nested CV of %s (%d outer x %d inner folds, %d trials) ...",
                family,
                cfg.outer_folds,
                cfg.inner_folds,
                cfg.n_trials,
            )
            results[family] = _evaluate(family, data, classes, cfg, prefix)
        champion = max(results, key=lambda f: results[f].metrics["macro_auc"])
        log.info(
            "refitting the champion (%s) on all subjects with the same inner "
            "search ...",
            champion,
        )
        params, _ = tune(
            champion,
            data.X,
            data.y,
            data.groups,
            n_trials=cfg.n_trials,
            inner_folds=cfg.inner_folds,
            seed=cfg.seed,
            storage_url=cfg.optuna_storage,
            study_name=f"{prefix}-{champion}-final",
        )
        pipe = make_pipeline(champion, params, columns, seed=cfg.seed)
        pipe.fit(data.X, data.y)
        oracle = _oracle(data, classes, cfg)
        metrics = {f"{champion}_{k}": v for k, v in results[champion].metrics.items()}
        mlflow.log_metrics(
            {f"champion_{k}": v for k, v in results[champion].metrics.items()}
        )
        if oracle:
            mlflow.log_metrics({f"oracle_{k}": v for k, v in oracle.items()})
        metadata = {
            "family": champion,
            "task": cfg.task,
            "classes": classes,
            "params": params,
            "feature_columns": columns,
            "nested_cv_metrics": results[champion].metrics,
            "sites": sorted(data.table["site"].dropna().astype(str).unique()),
            "training_subjects": len(data.y),
            "data_fingerprint": data.fingerprint,
            "trained_on_simulated_data": oracle is not None,
            "packages": {p: version(p) for p in PACKAGES},
        }
        mlflow.log_params({"champion": champion})
        tracking.log_json(metrics, "champion_metrics.json")
        uri = tracking.log_champion(pipe, data.X, cfg.model_name, metadata)
        run_id = parent.info.run_id
    return RunResult(
        results,
        champion,
        uri,
        run_id,
        cfg.tracking_uri,
        oracle,
        time.perf_counter() - start,
    )


def _evaluate(
    family: str, data, classes: list[str], cfg: TrainConfig, prefix: str
) -> NestedResult:
    with mlflow.start_run(run_name=family, nested=True):
        res = nested_cv(
            family,
            data.X,
            data.y,
            data.groups,
            classes,
            outer_folds=cfg.outer_folds,
            inner_folds=cfg.inner_folds,
            n_trials=cfg.n_trials,
            seed=cfg.seed,
            storage_url=cfg.optuna_storage,
            study_prefix=prefix,
            n_jobs=cfg.n_jobs,
            repeats=cfg.repeats,
        )
        mlflow.log_param("family", family)
        mlflow.log_metrics(res.metrics)
        for fold in res.folds:
            with mlflow.start_run(run_name=f"{family}-outer{fold.fold}", nested=True):
                mlflow.log_params(fold.params)
                mlflow.log_metrics(fold.metrics)
                mlflow.set_tags(
                    {
                        "optuna_study": fold.study_name,
                        "n_test": str(len(fold.test_index)),
                    }
                )
        oof = pd.DataFrame(res.oof_proba, columns=[f"p_{c}" for c in classes])
        oof.insert(0, "diagnosis", data.y)
        oof.insert(0, "participant_id", data.table["participant_id"].to_numpy())
        tracking.log_frame(oof, f"oof_predictions_{family}.csv")
    return res


def _oracle(data, classes: list[str], cfg: TrainConfig) -> dict[str, float] | None:
    """Metrics of the simulation's Bayes-optimal posterior, mapped to the task."""
    truth = oracle_posteriors(data.cohort_dir, data.table["participant_id"].to_numpy())
    if truth is None:
        return None
    columns = [
        [f"p_{m}" for m in cfg.mimics] if c == "mimic" else [f"p_{c}"] for c in classes
    ]
    proba = np.column_stack([truth[cols].sum(axis=1).to_numpy() for cols in columns])
    proba = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-300, None)
    return score(data.y, proba, classes)
