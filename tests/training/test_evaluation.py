"""Validation metrics: hand-built cases, agreement with scikit-learn, CIs, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, log_loss, roc_auc_score

from training.evaluation import (
    Evaluation,
    calibration_table,
    check_proba,
    decision_curve,
    evaluate,
    permutation_test,
    score,
)

CLASSES = ["ALS", "MMN", "NMO"]


def _sample(n: int, seed: int = 0, conc: float = 1.0):
    """Labels drawn from Dirichlet probabilities: a calibrated 3-class model."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(3, conc), n)
    idx = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(max=2)
    return np.asarray(CLASSES)[idx], proba


def test_perfect_predictions():
    y = np.array(CLASSES * 4)
    proba = np.eye(3)[[CLASSES.index(v) for v in y]]
    ev = evaluate(y, proba, CLASSES, n_boot=50)
    est = ev.metrics["estimate"]
    for name in ["balanced_accuracy", "macro_auc", "als_vs_rest_auc"]:
        assert est[name] == 1.0
    assert est["brier"] == 0.0
    assert est["ece"] == 0.0
    assert est["log_loss"] == pytest.approx(0.0, abs=1e-12)
    per_class = [f"{m}_{c}" for c in CLASSES for m in ("sensitivity", "ppv", "npv")]
    assert (est[per_class] == 1.0).all()
    assert (ev.metrics.loc["macro_auc", ["ci_low", "ci_high"]] == 1.0).all()
    np.testing.assert_array_equal(ev.confusion.to_numpy(), 4 * np.eye(3))


def test_uniform_predictions_have_auc_one_half():
    y = np.array(CLASSES * 5)
    ev = evaluate(y, np.full((15, 3), 1 / 3), CLASSES, n_boot=20)
    assert ev.metrics.loc["macro_auc", "estimate"] == 0.5
    assert ev.metrics.loc["als_vs_rest_auc", "estimate"] == 0.5
    assert ev.metrics.loc["brier", "estimate"] == pytest.approx(2 / 3)
    assert ev.metrics.loc["log_loss", "estimate"] == pytest.approx(np.log(3))


def test_known_two_by_two():
    # 10 ALS (8 called ALS), 10 HC (3 called ALS): TP 8, FN 2, FP 3, TN 7
    y = np.array(["ALS"] * 10 + ["HC"] * 10)
    called_als = np.array([1] * 8 + [0] * 2 + [1] * 3 + [0] * 7, bool)
    p_als = np.where(called_als, 0.7, 0.3)
    proba = np.column_stack([p_als, 1 - p_als])
    ev = evaluate(y, proba, ["ALS", "HC"], n_boot=0)
    est = ev.metrics["estimate"]
    assert est["sensitivity_ALS"] == pytest.approx(0.8)
    assert est["specificity_ALS"] == pytest.approx(0.7)
    assert est["ppv_ALS"] == pytest.approx(8 / 11)
    assert est["npv_ALS"] == pytest.approx(7 / 9)
    assert est["sensitivity_HC"] == pytest.approx(0.7)
    assert est["ppv_HC"] == pytest.approx(7 / 9)
    assert est["balanced_accuracy"] == pytest.approx(0.75)
    assert ev.confusion.loc["ALS", "ALS"] == 8 and ev.confusion.loc["HC", "ALS"] == 3
    assert ev.confusion.index.name == "true"
    assert ev.confusion.columns.name == "predicted"
    assert ev.metrics["ci_low"].isna().all()  # n_boot=0 skips the CIs


def test_ece_of_a_hand_case():
    # every top-class probability 0.8, half of them right: ECE = |0.5 - 0.8| = 0.3
    y = np.array(["ALS", "MMN"] * 5)
    proba = np.tile([0.8, 0.1, 0.1], (10, 1))
    ev = evaluate(y, proba, CLASSES, n_boot=0)
    assert ev.metrics.loc["ece", "estimate"] == pytest.approx(0.3)
    # class-wise: ALS |0.5 - 0.8|, MMN |0.5 - 0.1|, third class |0 - 0.1|; mean
    assert ev.metrics.loc["classwise_ece", "estimate"] == pytest.approx(0.8 / 3)


def test_classwise_ece_matches_a_plain_loop():
    y, proba = _sample(500, seed=3, conc=0.5)
    est = evaluate(y, proba, CLASSES, n_boot=0).metrics["estimate"]
    edges = np.linspace(0, 1, 11)
    per_class = []
    for j, c in enumerate(CLASSES):
        p, hit = proba[:, j], (y == c).astype(float)
        total = 0.0
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            inside = (p > lo) & (p <= hi) if lo > 0 else (p <= hi)
            total += abs((hit[inside] - p[inside]).sum())
        per_class.append(total / len(y))
    assert est["classwise_ece"] == pytest.approx(np.mean(per_class))


def test_agrees_with_scikit_learn():
    y, proba = _sample(300)
    est = evaluate(y, proba, CLASSES, n_boot=0).metrics["estimate"]
    pred = np.asarray(CLASSES)[proba.argmax(axis=1)]
    assert est["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert est["macro_auc"] == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", labels=CLASSES)
    )
    assert est["als_vs_rest_auc"] == pytest.approx(
        roc_auc_score(y == "ALS", proba[:, 0])
    )
    assert est["log_loss"] == pytest.approx(log_loss(y, proba, labels=CLASSES))
    onehot = (y[:, None] == np.asarray(CLASSES)).astype(float)
    assert est["brier"] == pytest.approx(((proba - onehot) ** 2).sum(axis=1).mean())
    reference = score(y, proba, CLASSES)
    assert {"balanced_accuracy", "macro_auc", "als_vs_rest_auc"} <= set(reference)
    for name in set(reference) & set(est.index):
        assert est[name] == pytest.approx(reference[name])


def test_ci_contains_estimate_and_narrows_with_n():
    names = ["balanced_accuracy", "macro_auc", "als_vs_rest_auc", "brier", "log_loss"]
    widths = []
    for n in (100, 1600):
        m = evaluate(*_sample(n, seed=n), CLASSES, n_boot=300).metrics.loc[names]
        assert (m["ci_low"] <= m["estimate"]).all()
        assert (m["estimate"] <= m["ci_high"]).all()
        widths.append(m["ci_high"] - m["ci_low"])
    assert (widths[1] < widths[0] / 2).all()  # 16x the subjects: about 1/4 the width


def test_bootstrap_is_seeded():
    y, proba = _sample(80)
    a = evaluate(y, proba, CLASSES, n_boot=50, seed=3).metrics
    b = evaluate(y, proba, CLASSES, n_boot=50, seed=3).metrics
    c = evaluate(y, proba, CLASSES, n_boot=50, seed=4).metrics
    pd.testing.assert_frame_equal(a, b)
    assert not a["ci_low"].equals(c["ci_low"])


def test_absent_class_gives_nan_without_warnings():
    y = np.array(["ALS", "MMN"] * 6)
    proba = np.tile([0.5, 0.3, 0.2], (12, 1))
    proba[1::2] = [0.2, 0.8, 0.0]  # exact zeros and a perfect split of ALS vs MMN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = evaluate(y, proba, CLASSES, n_boot=50)
    m = ev.metrics
    assert np.isnan(m.loc["sensitivity_NMO"]).all()
    assert np.isnan(m.loc["ppv_NMO", "estimate"])  # never predicted
    assert m.loc["specificity_NMO", "estimate"] == 1.0
    assert m.loc["macro_auc", "estimate"] == 1.0  # over the classes present
    assert np.isfinite(m.loc["log_loss", "estimate"])


def test_certain_but_wrong_prediction_has_finite_log_loss():
    ev = evaluate(["ALS", "MMN"], [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], CLASSES, n_boot=0)
    assert ev.metrics.loc["log_loss", "estimate"] == pytest.approx(
        -np.log(np.finfo(float).eps) / 2
    )


def test_als_rows_only_when_the_task_has_als():
    y, proba = _sample(60)
    keep = y != "ALS"
    other = proba[keep][:, 1:] / proba[keep][:, 1:].sum(axis=1, keepdims=True)
    names = evaluate(y[keep], other, CLASSES[1:], n_boot=0).metrics.index
    assert not any(n.endswith(("_vs_rest_auc", "_vs_mimics_auc")) for n in names)
    y_no_als = np.where(y == "ALS", "MMN", y)
    m = evaluate(y_no_als, proba, CLASSES, n_boot=0).metrics
    assert np.isnan(m.loc["als_vs_rest_auc", "estimate"])


def test_als_vs_mimics_leaves_controls_out():
    classes = ["ALS", "MMN", "HC"]
    y = np.array(["ALS", "ALS", "MMN", "MMN", "HC", "HC"])
    proba = np.array(
        [
            [0.5, 0.1, 0.4],
            [0.4, 0.2, 0.4],
            [0.2, 0.6, 0.2],
            [0.3, 0.4, 0.3],
            [0.9, 0.05, 0.05],  # controls that look like ALS
            [0.8, 0.1, 0.1],
        ]
    )
    est = evaluate(y, proba, classes, n_boot=20).metrics["estimate"]
    assert est["als_vs_mimics_auc"] == 1.0
    assert est["als_vs_rest_auc"] == 0.5
    est = evaluate(y, proba, classes, mimics=(), n_boot=0).metrics["estimate"]
    assert "als_vs_mimics_auc" not in est.index


def test_per_site():
    y, proba = _sample(90)
    sites = np.array(["s1"] * 40 + ["s2"] * 45 + ["s3"] * 5)
    y[85:] = "ALS"  # site s3 holds a single class
    ev = evaluate(y, proba, CLASSES, sites=sites, n_boot=0)
    ps = ev.per_site
    assert list(ps.index) == ["s1", "s2", "s3"]
    assert ps["n"].tolist() == [40, 45, 5]
    assert np.isnan(ps.loc["s3", "macro_auc"])
    assert 0 <= ps.loc["s1", "macro_auc"] <= 1
    assert evaluate(y, proba, CLASSES, n_boot=0).per_site is None


def test_per_site_groups_missing_sites():
    y, proba = _sample(12)
    sites = np.array([1, 2, None, np.nan] * 3, dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ps = evaluate(y, proba, CLASSES, sites=sites, n_boot=0).per_site
    assert list(ps.index) == [1, 2, "missing"]
    assert ps["n"].tolist() == [3, 3, 6]


def test_flat_and_frozen():
    ev = evaluate(*_sample(40), CLASSES, n_boot=10)
    flat = ev.flat()
    assert flat["macro_auc"] == ev.metrics.loc["macro_auc", "estimate"]
    assert {"macro_auc_ci_low", "macro_auc_ci_high"} <= set(flat)
    assert isinstance(ev, Evaluation)
    with pytest.raises(AttributeError):
        ev.metrics = None


@pytest.mark.parametrize(
    ("y", "proba", "classes", "match"),
    [
        (["ALS"], [[0.5, 0.5]], CLASSES, r"shape \(1, 2\); expected \(n_subjects, 3\)"),
        (["ALS", "MMN"], [[1.0, 0, 0]], CLASSES, "pass one label per row"),
        (["XYZ"], [[1.0, 0, 0]], CLASSES, r"labels \['XYZ'\] that are not in classes"),
        (["ALS"], [[0.5, 0.1, 0.1]], CLASSES, "sums to 0.7; each row must sum to 1"),
        (["ALS"], [[np.nan, 0.5, 0.5]], CLASSES, "must be finite and in"),
        (["ALS"], [[1.5, -0.5, 0.0]], CLASSES, "must be finite and in"),
        (["ALS"], [[0.5, 0.5]], ["ALS", "ALS"], "without duplicates"),
    ],
)
def test_check_proba_rejects(y, proba, classes, match):
    with pytest.raises(ValueError, match=match):
        check_proba(proba, classes, y)
    with pytest.raises(ValueError, match=match):
        evaluate(y, proba, classes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 1.0}, r"alpha = 1.0; it must lie in \(0, 1\)"),
        ({"alpha": 0}, r"alpha = 0; it must lie in \(0, 1\)"),
        ({"n_boot": -1}, "n_boot = -1; it must be >= 0"),
        ({"sites": ["a"]}, "pass one site per subject"),
    ],
)
def test_evaluate_rejects_bad_arguments(kwargs, match):
    y, proba = _sample(10)
    with pytest.raises(ValueError, match=match):
        evaluate(y, proba, CLASSES, **kwargs)


def test_evaluate_rejects_no_subjects():
    with pytest.raises(ValueError, match="y is empty"):
        evaluate([], np.empty((0, 3)), CLASSES)


# --- permutation test -------------------------------------------------------------


def test_permutation_test_label_free_score_has_p_one():
    y = np.array(CLASSES * 10)
    observed, p, null = permutation_test(lambda t: 0.7, y, n_permutations=50)
    assert observed == 0.7 and p == 1.0 and null.shape == (50,)


def test_permutation_test_label_dependent_score_has_small_p():
    y, _ = _sample(60)
    observed, p, null = permutation_test(lambda t: float(np.mean(t == y)), y, 99, 1)
    assert observed == 1.0
    assert p == pytest.approx(1 / 100)
    assert null.max() < 0.7


def test_permutation_test_is_seeded_and_permutes():
    y = np.arange(30)
    seen = []
    permutation_test(lambda t: seen.append(t.copy()) or 0.0, y, 3, seed=5)
    again = []
    permutation_test(lambda t: again.append(t.copy()) or 0.0, y, 3, seed=5)
    np.testing.assert_array_equal(seen[0], y)  # the observed score uses y itself
    assert sorted(seen[1]) == list(y) and not np.array_equal(seen[1], y)
    np.testing.assert_array_equal(np.array(seen), np.array(again))


@pytest.mark.parametrize(
    ("score_fn", "n", "match"),
    [
        (lambda t: 1.0, 0, "n_permutations = 0; it must be >= 1"),
        (lambda t: float("nan"), 5, "score_fn.y. returned nan"),
    ],
)
def test_permutation_test_rejects(score_fn, n, match):
    with pytest.raises(ValueError, match=match):
        permutation_test(score_fn, np.arange(5), n)


# --- decision curve and calibration table -------------------------------------------


def test_decision_curve_treat_all_and_perfect_model():
    y = np.array([1] * 30 + [0] * 70)
    p = np.where(y == 1, 0.95, 0.05)  # perfect ranking inside (0.05, 0.95)
    dc = decision_curve(y, p)
    t = np.linspace(0.01, 0.99, 99)
    np.testing.assert_allclose(dc["threshold"], t)
    np.testing.assert_allclose(dc["net_benefit_all"], 0.3 - 0.7 * t / (1 - t))
    assert (dc["net_benefit_none"] == 0).all()
    inside = (t > 0.05) & (t <= 0.95)
    np.testing.assert_allclose(dc.loc[inside, "net_benefit_model"], 0.3)


def test_decision_curve_known_value():
    # t = 0.25: treat p >= 0.25 -> TP 2, FP 1 of n 5; NB = 2/5 - 1/5 * 1/3
    dc = decision_curve(
        [True, True, False, False, True], [0.9, 0.3, 0.5, 0.1, 0.2], [0.25]
    )
    assert dc["net_benefit_model"].iloc[0] == pytest.approx(2 / 5 - 1 / 15)


def test_calibration_table_of_a_calibrated_model():
    rng = np.random.default_rng(0)
    p = rng.random(20000)
    y = rng.random(20000) < p
    t = calibration_table(y, p, n_bins=10)
    assert t["count"].sum() == 20000 and len(t) == 10
    np.testing.assert_allclose(t["observed_fraction"], t["mean_predicted"], atol=0.03)
    assert (
        (t["mean_predicted"] > t["bin_low"]) & (t["mean_predicted"] <= t["bin_high"])
    ).all()


def test_calibration_table_empty_bins_are_nan():
    t = calibration_table([0, 1], [0.0, 1.0], n_bins=4)
    assert t["count"].tolist() == [1, 0, 0, 1]
    assert t["mean_predicted"].isna().tolist() == [False, True, True, False]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: decision_curve([0, 1], [0.5]),
            "pass two 1-D arrays of the same length",
        ),
        (lambda: decision_curve(["ALS", "HC"], [0.5, 0.5]), "it must be 0/1 or bool"),
        (
            lambda: decision_curve([0, 1], [0.5, 1.5]),
            r"finite probabilities in \[0, 1\]",
        ),
        (lambda: decision_curve([0, 1], [0.5, 0.5], [0.0, 0.5]), r"inside \(0, 1\)"),
        (lambda: decision_curve([0, 1], [0.5, 0.5], [0.5, 1.0]), r"inside \(0, 1\)"),
        (lambda: calibration_table([0, 1], [0.5, 0.5], n_bins=0), "n_bins = 0"),
        (lambda: calibration_table([0, 2], [0.5, 0.5]), "it must be 0/1 or bool"),
    ],
)
def test_binary_helpers_reject(call, match):
    with pytest.raises(ValueError, match=match):
        call()
