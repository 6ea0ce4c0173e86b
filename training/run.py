"""One training run: nested CV of each model family, champion refit, MLflow record."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.decision import POOLED_MIMIC
from models.estimators import recording_fallbacks
from models.locked import LockedModel
from models.ood import NearestClassDistance
from models.pipelines import SKEWED
from training import card, tracking
from training.assessment import Assessment, assess
from training.config import RunSpecs, TrainConfig
from training.data import load_training_data, oracle_posteriors
from training.evaluation import score
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
        """Console summary: every family, the plain peers, the baselines and the
        oracle side by side, the champion's metrics with 95 % CIs, conformal
        coverage, warnings."""
        rows = {f: r.metrics for f, r in self.results.items()}
        for name, ev in self.assessment.peers.items():
            rows[f"peer: {name}"] = ev.metrics["estimate"].to_dict()
        for name, ev in self.assessment.baselines.items():
            rows[f"baseline: {name}"] = ev.metrics["estimate"].to_dict()
        if self.oracle:
            rows["oracle (Bayes-optimal, simulation truth)"] = self.oracle
        wanted = [
            "log_loss",
            "brier",
            "macro_auc",
            "als_vs_mimics_auc",
            "balanced_accuracy",
            "ece",
            "classwise_ece",
        ]
        table = pd.DataFrame(rows).T.reindex(columns=wanted).dropna(axis=1, how="all")
        ci = self.assessment.champion.metrics
        shown = [m for m in (*wanted, "als_vs_rest_auc") if m in ci.index]
        cis = [
            f"  {m:<20} {ci.loc[m, 'estimate']:.3f} "
            f"({ci.loc[m, 'ci_low']:.3f}-{ci.loc[m, 'ci_high']:.3f})"
            for m in shown
        ]
        cov = self.assessment.coverage
        lines = [
            "",
            "Nested cross-validation (out-of-fold, all subjects; peers and "
            "baselines on the same outer folds):",
            table.round(3).to_string(),
            *self._excess(),
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

    def _excess(self) -> list[str]:
        """One line: log loss above the oracle, champion beside the best peer."""
        peers = {
            n: e.metrics.loc["log_loss", "estimate"]
            for n, e in self.assessment.peers.items()
        }
        if not self.oracle or not peers:
            return []
        best = min(peers, key=peers.get)
        floor = self.oracle["log_loss"]
        mine = self.results[self.champion].metrics["log_loss"] - floor
        theirs = peers[best] - floor
        return [
            f"log loss above the oracle: champion {self.champion} {mine:.3f}, best "
            f"peer {best} {theirs:.3f} (ratio {mine / max(theirs, 1e-12):.2f}; "
            "goal <= 0.5)"
        ]


def run(cfg: TrainConfig) -> RunResult:
    """Train, evaluate and register a model as ``cfg`` says (see TrainConfig);
    with ``cfg.dask`` the parallel work (extraction, outer folds, permutations)
    runs on that Dask cluster and only this process writes to MLflow."""
    from common.executor import executor

    with executor(cfg.dask):
        return _run(cfg)


def _run(cfg: TrainConfig) -> RunResult:
    start = time.perf_counter()
    data = load_training_data(cfg)
    cfg, chosen = cfg.resolved(len(set(data.groups)))
    notes = [*chosen, *data.notes]
    for note in notes:
        log.info("note: %s", note)
    classes = data.classes
    columns = list(data.X.columns)
    for note in tracking.start(cfg.tracking_uri, cfg.experiment, cfg.registry_uri):
        log.warning("note: %s", note)
        notes.append(note)
    storage(cfg.optuna_storage)  # create the schema once, before parallel folds
    with tracking.run(f"train-{cfg.task}-{Path(data.source).name}") as run_id:
        prefix = f"{cfg.experiment}-{run_id[:8]}"
        specs = cfg.specs(set(data.y), data.covariates, prefix)
        tracking.log_params(asdict(cfg))
        tracking.log_params(
            {
                "data_source": data.source,
                "data_fingerprint": data.fingerprint,
                "n_training_subjects": len(data.y),
                "n_features": len(columns),
            }
        )
        tracking.set_tags(
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
            results[family] = _evaluate(family, data, classes, specs)
        # a proper score: the probabilities are what a clinician reads
        champion = min(results, key=lambda f: results[f].metrics["log_loss"])
        log.info(
            "refitting the champion (%s) on all subjects with the same inner "
            "search ...",
            champion,
        )
        with recording_fallbacks() as final_fallbacks:
            params, _ = tune(
                champion,
                data.X,
                data.y,
                data.groups,
                specs.pipeline,
                specs.search,
                seed=cfg.seed,
                study_name=f"{prefix}-{champion}-final",
            )
            pipe = specs.pipeline.build(champion, params, columns)
            locked = LockedModel(
                pipe, NearestClassDistance(log_columns=SKEWED, random_state=cfg.seed)
            ).fit(data.X, data.y)
        fallbacks = _fallbacks(results, final_fallbacks)
        notes += fallbacks["notes"]
        oracle = _oracle(data, classes, cfg.mimics, cfg.modalities())
        log.info("assessing: baselines, conformal sets, modality value, analyses ...")
        found = assess(
            data,
            classes,
            results[champion],
            params,
            specs.pipeline,
            specs.cv,
            specs.assessment,
        )
        _log_assessment(found)
        notes += [f"conformal sets: {n}" for n in found.conformal.notes]
        adjustment = fitted_covariates(locked.pipeline_)
        tracking.log_json(
            {
                "notes": notes,
                "skipped": found.skipped,
                "adjustment": adjustment,
                "fold_fallbacks": fallbacks["messages"],
            },
            "run_notes.json",
        )
        tracking.set_tags(
            {
                "skipped_steps": ", ".join(found.skipped) or "none",
                "n_notes": len(notes),
            }
        )
        tracking.log_metrics(results[champion].metrics, "champion_")
        if oracle:
            tracking.log_metrics(oracle, "oracle_")
        facts = card.CardFacts(
            family=champion,
            task=cfg.task,
            classes=tuple(classes),
            mimics=specs.cv.mimics,
            conformal={
                "alpha": cfg.alpha,
                "thresholds": found.conformal.thresholds,
                "coverage": found.coverage["coverage"].to_dict(),
            },
            sites=tuple(sorted(data.table["site"].dropna().astype(str).unique()))
            if "site" in data.table
            else (),
            reference=specs.pipeline.reference,
            seed=cfg.seed,
            simulated=oracle is not None,
            params=params,
            metrics=results[champion].metrics,
            metrics_ci=found.champion.metrics.to_dict(orient="index"),
            # the card travels with the model: the data's name, not where it lives
            data_source=Path(data.source).name,
            data_fingerprint=data.fingerprint,
            input_mapping=data.mapping,
            source_columns=tuple(data.source_columns),
            adjustment=adjustment,
            notes=tuple(notes),
        )
        metadata = card.model_card(
            locked, data.X, data.y, facts, results[champion].oof_proba
        )
        tracking.log_params({"champion": champion})
        uri = tracking.log_champion(locked, data.X, cfg.model_name, metadata)
    return RunResult(
        results,
        champion,
        uri,
        run_id,
        cfg.tracking_uri,
        oracle,
        time.perf_counter() - start,
        found,
        tuple(notes),
        adjustment,
    )


def _fallbacks(results: dict[str, NestedResult], final: list[str]) -> dict:
    """The fitted steps' fallbacks (:class:`~models.estimators.FoldFallbackWarning`)
    of every fold and of the final refit: a note per family and step, and the
    distinct messages (up to 50) for ``run_notes.json``."""
    per_family = {
        f: [m for fold in r.folds for m in fold.fallbacks] for f, r in results.items()
    }
    per_family["final refit"] = list(final)
    notes, messages = [], []
    for name, found in per_family.items():
        if not found:
            continue
        steps = Counter(m.split(":", 1)[0] for m in found)
        notes.append(
            f"{name}: fitted steps fell back {len(found)} time(s) ("
            + ", ".join(f"{k} {v}x" for k, v in steps.most_common())
            + f"), e.g. {found[0]}"
        )
        messages += [m for m in dict.fromkeys(found) if m not in messages]
    return {"notes": notes, "messages": messages[:50]}


def fitted_covariates(pipeline) -> dict[str, list[str]]:
    """The covariates each fitted adjustment step of ``pipeline`` uses (read from
    the fitted steps' ``covariates_``, not from the configuration)."""
    return {
        name: list(step.covariates_)
        for name, step in pipeline.steps
        if hasattr(step, "covariates_")
    }


def _evaluate(family: str, data, classes: list[str], specs: RunSpecs) -> NestedResult:
    with tracking.run(family, nested=True):
        res = nested_cv(
            family,
            data.X,
            data.y,
            data.groups,
            classes,
            specs.cv,
            specs.search,
            specs.pipeline,
            progress=True,
        )
        tracking.log_params({"family": family})
        tracking.log_metrics(res.metrics)
        for fold in res.folds:
            with tracking.run(f"{family}-outer{fold.fold}", nested=True):
                tracking.log_params(fold.params)
                tracking.log_metrics(fold.metrics)
                tracking.set_tags(
                    {
                        "optuna_study": fold.study_name,
                        "n_test": len(fold.test_index),
                        "n_fallbacks": len(fold.fallbacks),
                    }
                )
        oof = pd.DataFrame(res.oof_proba, columns=[f"p_{c}" for c in classes])
        oof.insert(0, "diagnosis", data.y)
        oof.insert(0, "participant_id", data.table["participant_id"].to_numpy())
        tracking.log_frame(oof, f"oof_predictions_{family}.csv")
    return res


def oracle_proba(
    data, classes: list[str], mimics, modalities: tuple[str, ...]
) -> np.ndarray | None:
    """The simulation's Bayes-optimal posterior given ``modalities``, mapped to
    the task's ``classes`` (None for a cohort that is not simulated)."""
    truth = oracle_posteriors(
        data.cohort_dir, data.table["participant_id"].to_numpy(), modalities
    )
    if truth is None:
        return None
    columns = [
        [f"p_{m}" for m in mimics] if c == POOLED_MIMIC else [f"p_{c}"] for c in classes
    ]
    proba = np.column_stack([truth[cols].sum(axis=1).to_numpy() for cols in columns])
    return proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-300, None)


def _oracle(
    data, classes: list[str], mimics, modalities: tuple[str, ...]
) -> dict[str, float] | None:
    """Metrics of :func:`oracle_proba`."""
    proba = oracle_proba(data, classes, mimics, modalities)
    return None if proba is None else score(data.y, proba, classes, mimics)


def _log_assessment(found: Assessment) -> None:
    """Metrics, tables and figures of the assessment, into the active MLflow run."""
    tracking.log_metrics(found.champion.flat(), "champion_")
    for name, ev in found.baselines.items():
        tracking.log_metrics(ev.metrics["estimate"], f"baseline_{name}_")
    for name, ev in found.peers.items():
        tracking.log_metrics(ev.flat(), f"peer_{name}_")
    tracking.log_metrics(found.coverage["coverage"], "conformal_coverage_")
    if found.leak is not None:
        tracking.log_metrics({"missingness_leak_macro_auc": found.leak["macro_auc"]})
        tracking.set_tags({"missingness_leak": bool(found.leak["leaks"])})
    if found.permutation:
        tracking.log_metrics(found.permutation, "permutation_")
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
    if found.peers:
        tables["peers.csv"] = pd.concat(
            {k: v.metrics for k, v in found.peers.items()}, names=["peer"]
        ).reset_index()
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
        tracking.log_figure(fig, name)
