"""One training run: nested CV of each model family, champion refit, MLflow record."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from models.locked import LockedModel
from models.ood import NearestClassDistance
from models.pipelines import SKEWED, make_pipeline
from training import card, tracking
from training.assessment import Assessment, assess
from training.config import TrainConfig
from training.data import load_training_data, oracle_posteriors
from training.metrics import score
from training.nested_cv import NestedResult, nested_cv
from training.search import storage, tune

log = logging.getLogger(__name__)


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
    assessment: Assessment
    notes: tuple[str, ...] = ()
    adjustment: dict | None = None

    def summary(self) -> str:
        """Console summary: every family, the baselines and the oracle side by side,
        the champion's metrics with 95 % CIs, conformal coverage, warnings."""
        rows = {f: r.metrics for f, r in self.results.items()}
        for name, ev in self.assessment.baselines.items():
            rows[f"baseline: {name}"] = ev.metrics["estimate"].to_dict()
        if self.oracle:
            rows["oracle (Bayes-optimal, simulation truth)"] = self.oracle
        wanted = [
            "macro_auc",
            "als_vs_rest_auc",
            "als_vs_mimics_auc",
            "balanced_accuracy",
            "log_loss",
            "brier",
        ]
        table = pd.DataFrame(rows).T.reindex(columns=wanted).dropna(axis=1, how="all")
        ci = self.assessment.champion.metrics
        shown = [m for m in (*wanted, "ece") if m in ci.index]
        cis = [
            f"  {m:<20} {ci.loc[m, 'estimate']:.3f} "
            f"({ci.loc[m, 'ci_low']:.3f}-{ci.loc[m, 'ci_high']:.3f})"
            for m in shown
        ]
        cov = self.assessment.coverage
        lines = [
            "",
            "Nested cross-validation (out-of-fold, all subjects):",
            table.round(3).to_string(),
            "",
            f"champion {self.champion}, with bootstrap 95 % CI:",
            *cis,
            f"conformal sets (alpha {self.assessment.conformal.alpha}): coverage "
            + ", ".join(f"{c} {v:.2f}" for c, v in cov["coverage"].items()),
            "",
        ]
        perm = self.assessment.permutation
        if perm:
            lines.insert(
                -1,
                f"permutation test ({perm['n_permutations']:.0f} label permutations, "
                f"uncalibrated {self.champion}): macro AUC "
                f"{perm['observed_macro_auc']:.3f}, null mean {perm['null_mean']:.3f}"
                f", p = {perm['p_value']:.3f}",
            )
        leak = self.assessment.leak or {}
        if leak.get("leaks"):
            lines += [
                "WARNING: which modalities were acquired predicts the diagnosis "
                f"on its own ({leak['summary']}). The metrics may not carry over "
                "to a cohort where everyone gets every test.",
                "",
            ]
        if self.adjustment:
            lines.append(
                "covariates of the champion's fitted steps: "
                + "; ".join(f"{k} {v}" for k, v in self.adjustment.items())
            )
        if self.notes or self.assessment.skipped:
            lines.append(
                "What the data could not give (also in MLflow: run_notes.json):"
            )
            lines += [f"  - {n}" for n in self.notes]
            lines += [
                f"  - skipped {k}: {v}" for k, v in self.assessment.skipped.items()
            ]
        else:
            lines.append("Nothing was skipped.")
        lines += [
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
    cfg, chosen = cfg.resolved(len(set(data.groups)))
    notes = (*chosen, *data.notes)
    for note in notes:
        log.info("note: %s", note)
    classes = data.classes
    columns = list(data.X.columns)
    options = cfg.pipeline_options(set(data.y), data.covariates)
    tracking.start(cfg.tracking_uri, cfg.experiment, cfg.registry_uri)
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
            results[family] = _evaluate(family, data, classes, cfg, prefix, options)
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
            options=options,
        )
        pipe = make_pipeline(champion, params, columns, seed=cfg.seed, **options)
        locked = LockedModel(
            pipe, NearestClassDistance(log_columns=SKEWED, random_state=cfg.seed)
        ).fit(data.X, data.y)
        oracle = _oracle(data, classes, cfg)
        log.info("assessing: baselines, conformal sets, modality value, analyses ...")
        found = assess(data, classes, results[champion], params, cfg, options)
        _log_assessment(found, champion)
        adjustment = fitted_covariates(locked.pipeline_)
        tracking.log_json(
            {"notes": list(notes), "skipped": found.skipped, "adjustment": adjustment},
            "run_notes.json",
        )
        mlflow.set_tags(
            {
                "skipped_steps": ", ".join(found.skipped) or "none",
                "n_notes": str(len(notes)),
            }
        )
        mlflow.log_metrics(
            {f"champion_{k}": v for k, v in results[champion].metrics.items()}
        )
        if oracle:
            mlflow.log_metrics({f"oracle_{k}": v for k, v in oracle.items()})
        metadata = card.model_card(
            locked,
            data.X,
            data.y,
            family=champion,
            task=cfg.task,
            classes=classes,
            conformal={
                "alpha": cfg.alpha,
                "thresholds": found.conformal.thresholds,
                "coverage": found.coverage["coverage"].to_dict(),
            },
            sites=sorted(data.table["site"].dropna().astype(str).unique())
            if "site" in data.table
            else [],
            reference=options["reference"],
            oof_proba=results[champion].oof_proba,
            seed=cfg.seed,
            params=params,
            nested_cv_metrics=results[champion].metrics,
            nested_cv_metrics_ci=found.champion.metrics.to_dict(orient="index"),
            data_source=data.source,
            data_fingerprint=data.fingerprint,
            trained_on_simulated_data=oracle is not None,
            input_mapping=data.mapping,
            source_columns=list(data.source_columns),
            adjustment=adjustment,
            notes=list(notes),
        )
        mlflow.log_params({"champion": champion})
        uri = tracking.log_champion(locked, data.X, cfg.model_name, metadata)
        run_id = parent.info.run_id
    return RunResult(
        results,
        champion,
        uri,
        run_id,
        cfg.tracking_uri,
        oracle,
        time.perf_counter() - start,
        found,
        notes,
        adjustment,
    )


def fitted_covariates(pipeline) -> dict[str, list[str]]:
    """The covariates each fitted adjustment step of ``pipeline`` uses (read from
    the fitted steps' ``covariates_``, not from the configuration)."""
    return {
        name: list(step.covariates_)
        for name, step in pipeline.steps
        if hasattr(step, "covariates_")
    }


def _evaluate(
    family: str, data, classes: list[str], cfg: TrainConfig, prefix: str, options
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
            options=options,
            progress=True,
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


def _log_assessment(found: Assessment, champion: str) -> None:
    """Metrics, tables and figures of the assessment, into the active MLflow run."""
    flat = found.champion.flat()
    mlflow.log_metrics({f"champion_{k}": v for k, v in flat.items() if np.isfinite(v)})
    for name, ev in found.baselines.items():
        est = ev.metrics["estimate"]
        mlflow.log_metrics(
            {f"baseline_{name}_{k}": v for k, v in est.items() if np.isfinite(v)}
        )
    mlflow.log_metrics(
        {f"conformal_coverage_{k}": v for k, v in found.coverage["coverage"].items()}
    )
    if found.leak is not None:
        mlflow.log_metric("missingness_leak_macro_auc", found.leak["macro_auc"])
        mlflow.set_tag("missingness_leak", str(bool(found.leak["leaks"])))
    if found.permutation:
        mlflow.log_metrics(
            {f"permutation_{k}": v for k, v in found.permutation.items()}
        )
    tables = {
        "metrics_ci.csv": found.champion.metrics.reset_index(names="metric"),
        "confusion.csv": found.champion.confusion.reset_index(),
        "coverage.csv": found.coverage.reset_index(names="class"),
        "univariate.csv": found.univariate,
        "group_summary.csv": found.groups,
        "severity_correlations.csv": found.correlations,
    }
    if found.modality_value is not None:
        tables["modality_value.csv"] = found.modality_value.reset_index()
    if found.baselines:
        tables["baselines.csv"] = pd.concat(
            {k: v.metrics for k, v in found.baselines.items()}, names=["baseline"]
        ).reset_index()
    if found.champion.per_site is not None:
        tables["per_site.csv"] = found.champion.per_site.reset_index()
    if found.decision is not None:
        tables["decision_curve.csv"] = found.decision
    tables["oof_predictions_champion.csv"] = found.predictions
    for name, frame in tables.items():
        if frame is not None:
            tracking.log_frame(frame, name)
    for name, fig in found.figures.items():
        mlflow.log_figure(fig, name)
