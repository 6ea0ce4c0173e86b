"""Everything a reviewer asks of a training run, computed from the nested CV.

Given the champion's out-of-fold probabilities and its outer folds, `assess`
evaluates it (metrics with bootstrap CIs, confusion, per site, decision curve),
cross-validates the baselines on the same folds, measures class-conditional
conformal coverage over the outer folds, the value of each modality (alone and left
out), whether availability alone predicts the diagnosis, and the univariate
biomarker analyses of the source studies. Figures are returned for logging.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from models.pipelines import make_pipeline
from training import analyses, conformal, plots
from training.baselines import BASELINES
from training.config import TrainConfig
from training.evaluation import Evaluation, decision_curve, evaluate, permutation_test
from training.metrics import score
from training.nested_cv import NestedResult

log = logging.getLogger(__name__)
IMAGING_PREFIXES = ("fs_", "dti_", "qsm_", "mrs_", "vbm_")


@dataclass
class Assessment:
    """Tables, metrics and figures of one run (see module docstring)."""

    champion: Evaluation
    baselines: dict[str, Evaluation]
    conformal: conformal.ConformalSets
    coverage: pd.DataFrame
    sets: list[str]
    decision: pd.DataFrame | None
    modality_value: pd.DataFrame
    leak: dict[str, Any]
    univariate: pd.DataFrame
    groups: pd.DataFrame
    correlations: pd.DataFrame
    predictions: pd.DataFrame
    permutation: dict[str, float] | None = None
    figures: dict[str, Any] = field(default_factory=dict)


def _fold_ids(result: NestedResult, n: int, outer_folds: int) -> np.ndarray:
    """Outer fold of each subject in the first repeat."""
    ids = np.full(n, -1)
    for fold in result.folds:
        if fold.fold < outer_folds:
            ids[fold.test_index] = fold.fold
    return ids


def _cross_validate(make, X, y, fold_ids, classes) -> np.ndarray:
    """Out-of-fold probabilities of ``make()`` on the given folds, no tuning."""
    proba = np.zeros((len(X), len(classes)))
    for k in np.unique(fold_ids):
        test = fold_ids == k
        model = make().fit(X[~test], y[~test])
        raw = model.predict_proba(X[test])
        for j, c in enumerate(model.classes_):
            proba[np.flatnonzero(test), classes.index(str(c))] = raw[:, j]
    return proba


def assess(
    data, classes: list[str], result: NestedResult, params: dict, cfg: TrainConfig
) -> Assessment:
    """Assess the champion ``result`` (family tuned to ``params`` on all data)."""
    X, y = data.X, data.y
    sites = data.table["site"].to_numpy() if "site" in data.table else None
    mimics = tuple(c for c in cfg.mimics if c in classes)
    boot = {"n_boot": cfg.n_bootstrap, "seed": cfg.seed}
    ev = evaluate(y, result.oof_proba, classes, sites=sites, mimics=mimics, **boot)
    folds = _fold_ids(result, len(y), cfg.outer_folds)
    baselines = {}
    for name, make in BASELINES.items():
        proba = _cross_validate(make, X, y, folds, classes)
        baselines[name] = evaluate(y, proba, classes, mimics=mimics, **boot)
    sets = conformal.cross_conformal_oof(y, result.oof_proba, folds, classes, cfg.alpha)
    coverage = conformal.coverage(y, sets, classes)
    locked = conformal.fit_conformal(y, result.oof_proba, classes, cfg.alpha)
    decision = None
    if "ALS" in classes:
        decision = decision_curve(y == "ALS", result.oof_proba[:, classes.index("ALS")])

    def quick(columns: list[str], labels=y) -> dict[str, float]:
        def make():
            # Uncalibrated: these comparisons are of discrimination (AUC), which
            # calibration does not change, at a third of the cost.
            options = {**cfg.pipeline_options(set(y)), "calibrate": None}
            return make_pipeline(
                result.family, params, columns, seed=cfg.seed, **options
            )

        proba = _cross_validate(make, X[columns], labels, folds, classes)
        return score(labels, proba, classes)

    subsets = analyses.modality_subsets(list(X.columns))
    scores = Parallel(n_jobs=cfg.n_jobs)(
        delayed(quick)(cols) for cols in subsets.values()
    )
    value = pd.DataFrame(scores, index=list(subsets)).rename_axis("features")
    value.loc["all features"] = result.metrics
    permutation = None
    if cfg.n_permutations > 0:
        observed, p, null = permutation_test(
            lambda labels: quick(list(X.columns), labels)["macro_auc"],
            y,
            n_permutations=cfg.n_permutations,
            seed=cfg.seed,
        )
        permutation = {
            "observed_macro_auc": observed,
            "p_value": p,
            "null_mean": float(np.mean(null)),
        }
    leak = analyses.missingness_leak(data.table, y, groups=data.groups, seed=cfg.seed)
    table = data.table.assign(diagnosis=data.diagnosis)
    numeric = [c for c in X.columns if not c.startswith("has_") and c != "site"]
    univariate = analyses.univariate_table(table, numeric, n_boot=200, seed=cfg.seed)
    groups = analyses.group_summary(table, numeric)
    imaging = [c for c in numeric if c.startswith(IMAGING_PREFIXES)]
    severity = [s for s in analyses.SEVERITY if s in table]
    correlations = analyses.severity_correlations(
        table, imaging, severity, within="ALS" if "ALS" in set(data.diagnosis) else None
    )
    figures = {
        "roc.png": plots.roc_curves(y, result.oof_proba, classes),
        "calibration.png": plots.calibration_plot(y, result.oof_proba, classes),
        "confusion.png": plots.confusion_plot(ev.confusion),
        "modality_value.png": plots.bar_plot(
            value["macro_auc"].sort_values(), "Modality value (macro AUC, CV)"
        ),
    }
    if decision is not None:
        figures["decision_curve.png"] = plots.decision_curve_plot(decision)
    predictions = pd.DataFrame(result.oof_proba, columns=[f"p_{c}" for c in classes])
    predictions.insert(0, "conformal_set", conformal.as_strings(sets))
    predictions.insert(0, "label", y)
    predictions.insert(0, "participant_id", data.groups)
    return Assessment(
        ev,
        baselines,
        locked,
        coverage,
        conformal.as_strings(sets),
        decision,
        value,
        leak,
        univariate,
        groups,
        correlations,
        predictions,
        permutation,
        figures,
    )
