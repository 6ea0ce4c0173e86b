"""Everything a reviewer asks of a training run, computed from the nested CV.

Given the champion's out-of-fold probabilities and its outer folds, `assess`
evaluates it (metrics with bootstrap CIs, confusion, per site, decision curve),
cross-validates the rule baselines and the plain peers (training/peers.py) on the
same folds, measures class-conditional
conformal coverage over the outer folds, the value of each modality (alone and left
out), whether availability alone predicts the diagnosis, and the univariate
biomarker analyses of the source studies. Figures are returned for logging.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from common.schema import POSITIVE
from features.dictionary import IMAGING_PREFIXES
from models.estimators import FoldFallbackWarning
from models.pipelines import PipelineSpec
from training import cohort_summary, conformal, modalities, plots
from training.baselines import BASELINES, CRITERIA_COLUMNS
from training.config import AssessmentSpec, CVSpec
from training.evaluation import (
    Evaluation,
    decision_curve,
    evaluate,
    permutation_test,
    score,
)
from training.nested_cv import NestedResult, on_same_folds
from training.peers import PEERS

log = logging.getLogger(__name__)


@dataclass
class Assessment:
    """Tables, metrics and figures of one run (see module docstring).

    ``skipped`` names every step that did not run, with the one-line reason (its
    inputs are absent, or it failed); a step that ran has no entry. The optional
    tables of skipped steps are None.
    """

    champion: Evaluation
    conformal: conformal.ConformalSets
    coverage: pd.DataFrame
    sets: list[str]
    predictions: pd.DataFrame
    baselines: dict[str, Evaluation] = field(default_factory=dict)
    peers: dict[str, Evaluation] = field(default_factory=dict)
    decision: pd.DataFrame | None = None
    modality_value: pd.DataFrame | None = None
    leak: dict[str, Any] | None = None
    univariate: pd.DataFrame | None = None
    groups: pd.DataFrame | None = None
    correlations: pd.DataFrame | None = None
    permutation: dict[str, float] | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


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


class _Steps:
    """Runs the optional steps: each either runs or is recorded as skipped."""

    def __init__(self) -> None:
        self.skipped: dict[str, str] = {}

    def run(self, name: str, step: Callable[[], Any], unmet: str | None = None):
        """``step()``, or None with ``unmet`` (a missing input) or its error as
        the recorded reason: nothing after the nested CV may lose the model."""
        if unmet:
            return self._skip(name, unmet)
        try:
            return step()
        except Exception as exc:  # recorded by name and logged, never silent
            return self._skip(name, f"failed: {type(exc).__name__}: {exc}")

    def _skip(self, name: str, reason: str) -> None:
        log.warning("skipped %s: %s", name, reason)
        self.skipped[name] = reason


def _baseline_unmet(name: str, X: pd.DataFrame) -> str | None:
    """Why baseline ``name`` cannot run on ``X`` (None: it can)."""
    if name == "nfl_62" and ("nfl_pg_ml" not in X or X["nfl_pg_ml"].isna().all()):
        return "no serum NfL (column nfl_pg_ml, pg/mL) in the data"
    if name == "criteria" and not any(c in X for c in CRITERIA_COLUMNS):
        return (
            "none of the criteria columns "
            f"({', '.join(CRITERIA_COLUMNS[:4])}, ...) in the data"
        )
    return None


def assess(
    data,
    classes: list[str],
    result: NestedResult,
    params: dict,
    pipeline: PipelineSpec,
    cv: CVSpec,
    spec: AssessmentSpec,
) -> Assessment:
    """Assess the champion ``result`` (its family tuned to ``params`` on all data;
    comparison pipelines built as ``pipeline`` says, on the outer folds of ``cv``);
    every optional step runs when its inputs exist and is otherwise recorded in
    ``skipped``."""
    X, y = data.X, data.y
    steps = _Steps()
    sites = data.table["site"].to_numpy() if "site" in data.table else None
    mimics = cv.mimics
    boot = {"n_boot": spec.n_bootstrap, "seed": cv.seed}
    ev = evaluate(y, result.oof_proba, classes, sites=sites, mimics=mimics, **boot)
    folds = _fold_ids(result, len(y), cv.outer_folds)
    sets = conformal.cross_conformal_oof(
        y, result.oof_proba, folds, classes, spec.alpha
    )
    coverage = conformal.coverage(y, sets, classes)
    locked = conformal.fit_conformal(y, result.oof_proba, classes, spec.alpha)
    predictions = pd.DataFrame(result.oof_proba, columns=[f"p_{c}" for c in classes])
    predictions.insert(0, "conformal_set", conformal.as_strings(sets))
    predictions.insert(0, "label", y)
    predictions.insert(0, "participant_id", data.groups)
    found = Assessment(ev, locked, coverage, conformal.as_strings(sets), predictions)

    for name, make in BASELINES.items():

        def baseline(make=make):
            proba = on_same_folds(make, X, y, result)
            return evaluate(y, proba, classes, mimics=mimics, **boot)

        ev_b = steps.run(f"baseline {name}", baseline, _baseline_unmet(name, X))
        if ev_b is not None:
            found.baselines[name] = ev_b
    for name, make in PEERS.items():

        def peer(make=make):
            proba = on_same_folds(lambda: make(cv.seed), X, y, result, n_jobs=cv.n_jobs)
            return evaluate(y, proba, classes, mimics=mimics, **boot)

        ev_p = steps.run(f"peer {name}", peer)
        if ev_p is not None:
            found.peers[name] = ev_p
    found.decision = steps.run(
        "decision curve",
        lambda: decision_curve(
            y == POSITIVE, result.oof_proba[:, classes.index(POSITIVE)]
        ),
        None if POSITIVE in classes else f"the task has no {POSITIVE} class",
    )
    # Uncalibrated: these comparisons are of discrimination (AUC), which
    # calibration does not change, at a third of the cost.
    fast = pipeline.uncalibrated()

    def quick(columns: list[str], labels=y) -> dict[str, float]:
        with warnings.catch_warnings():
            # the nested CV recorded the steps' fallbacks on these same folds
            warnings.simplefilter("ignore", FoldFallbackWarning)
            proba = _cross_validate(
                lambda: fast.build(result.family, params, columns),
                X[columns],
                labels,
                folds,
                classes,
            )
        return score(labels, proba, classes, mimics)

    subsets = modalities.modality_subsets(
        [c for c in X.columns if c not in data.covariates]
    )
    # the covariates stay in every subset: the pipeline's steps adjust for them
    subsets = {
        k: [*v, *(c for c in data.covariates if c not in v)] for k, v in subsets.items()
    }

    def modality_value():
        scores = Parallel(n_jobs=cv.n_jobs)(
            delayed(quick)(cols) for cols in subsets.values()
        )
        value = pd.DataFrame(scores, index=list(subsets)).rename_axis("features")
        value.loc["all features"] = result.metrics
        return value

    n_modalities = len(subsets) // 2
    found.modality_value = steps.run(
        "modality value",
        modality_value,
        None
        if n_modalities >= 2
        else f"{n_modalities} modality among the features: nothing to compare",
    )
    if spec.n_permutations:

        def permutation():
            observed, p, null = permutation_test(
                lambda labels: quick(list(X.columns), labels)["macro_auc"],
                y,
                n_permutations=spec.n_permutations,
                seed=cv.seed,
                n_jobs=cv.n_jobs,
            )
            return {
                "observed_macro_auc": observed,
                "p_value": p,
                "null_mean": float(np.mean(null)),
                "n_permutations": float(spec.n_permutations),
            }

        found.permutation = steps.run("permutation test", permutation)
    present = modalities.availability(data.table, list(X.columns))
    varies = [c for c in present.columns if present[c].nunique() > 1]
    found.leak = steps.run(
        "missingness check",
        lambda: modalities.missingness_leak(
            present, y, groups=data.groups, seed=cv.seed
        ),
        None
        if varies
        else "every subject has every modality: availability cannot leak the label",
    )
    table = data.table.assign(diagnosis=data.diagnosis)
    numeric = [c for c in X.columns if not c.startswith("has_") and c != "site"]
    found.univariate = steps.run(
        "univariate table",
        lambda: cohort_summary.univariate_table(
            table, numeric, n_boot=200, seed=cv.seed
        ),
        None
        if cohort_summary.default_contrasts(set(data.diagnosis))
        else "no contrast of the source studies has both of its sides",
    )
    found.groups = steps.run(
        "group summary", lambda: cohort_summary.group_summary(table, numeric)
    )
    imaging = [c for c in numeric if c.startswith(IMAGING_PREFIXES)]
    severity = [s for s in cohort_summary.SEVERITY if s in table]
    within = POSITIVE if POSITIVE in set(data.diagnosis) else None
    unmet = None
    if not imaging:
        unmet = f"no imaging columns (prefixes {', '.join(IMAGING_PREFIXES)})"
    elif not severity:
        unmet = f"no severity scale ({', '.join(cohort_summary.SEVERITY)})"
    found.correlations = steps.run(
        "severity correlations",
        lambda: cohort_summary.severity_correlations(
            table, imaging, severity, within=within
        ),
        unmet,
    )
    found.figures = _figures(found, y, result.oof_proba, classes, steps)
    found.skipped = steps.skipped
    return found


def _figures(found: Assessment, y, proba, classes, steps: _Steps) -> dict[str, Any]:
    figures = {}
    makers = {
        "roc.png": lambda: plots.roc_curves(y, proba, classes),
        "calibration.png": lambda: plots.calibration_plot(y, proba, classes),
        "confusion.png": lambda: plots.confusion_plot(found.champion.confusion),
    }
    if found.modality_value is not None:
        makers["modality_value.png"] = lambda: plots.bar_plot(
            found.modality_value["macro_auc"].sort_values(),
            "Modality value (macro AUC, CV)",
        )
    if found.decision is not None:
        makers["decision_curve.png"] = lambda: plots.decision_curve_plot(found.decision)
    for name, make in makers.items():
        fig = steps.run(f"figure {name}", make)
        if fig is not None:
            figures[name] = fig
    return figures
