"""Class-conditional conformal sets: thresholds, coverage on fresh data, errors."""

from __future__ import annotations

import numpy as np
import pytest

from training.conformal import (
    ConformalSets,
    as_strings,
    coverage,
    cross_conformal_oof,
    fit_conformal,
)

CLASSES = ["ALS", "MMN", "NMO"]


def _sample(rng, n: int, conc: float = 1.0, prior=(1 / 3, 1 / 3, 1 / 3)):
    """A known 3-class model: Dirichlet probabilities, labels drawn from them.

    Smaller ``conc`` gives sharper probabilities; ``prior`` sets the class shares.
    """
    proba = rng.dirichlet(conc * 3 * np.asarray(prior), n)
    idx = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(max=2)
    return np.asarray(CLASSES)[idx], proba


@pytest.mark.filterwarnings("ignore:class NMO:UserWarning")
def test_threshold_is_the_conformal_order_statistic():
    # class ALS: 9 subjects, scores 0.05, 0.10, ..., 0.45; alpha 0.2 -> k = ceil(8) = 8
    p_als = 1 - np.arange(1, 10) * 0.05
    proba = np.column_stack([p_als, 1 - p_als, np.zeros(9)])
    with pytest.warns(UserWarning, match="class MMN: 0 calibration subjects"):
        cs = fit_conformal(["ALS"] * 9, proba, CLASSES, alpha=0.2)
    assert cs.thresholds["ALS"] == pytest.approx(0.40)
    assert cs.n_calibration == {"ALS": 9, "MMN": 0, "NMO": 0}
    assert cs.classes == tuple(CLASSES) and cs.alpha == 0.2


@pytest.mark.filterwarnings("ignore:class NMO:UserWarning")
def test_small_class_is_always_included_with_a_note():
    y = ["ALS"] * 20 + ["MMN"] * 3
    proba = np.tile([0.8, 0.15, 0.05], (23, 1))
    with pytest.warns(UserWarning, match="class MMN: 3 calibration subjects"):
        cs = fit_conformal(y, proba, CLASSES, alpha=0.1)
    assert cs.thresholds["MMN"] == 1.0 and cs.thresholds["NMO"] == 1.0
    assert any("MMN" in note and "threshold 1.0" in note for note in cs.notes)
    assert "ALS" not in " ".join(cs.notes)
    assert all("MMN" in s for s in cs.predict(np.tile([1.0, 0.0, 0.0], (5, 1))))


def test_sets_may_be_empty_or_hold_several_classes():
    cs = ConformalSets(
        tuple(CLASSES), 0.1, {"ALS": 0.5, "MMN": 0.5, "NMO": 0.1}, {}, ()
    )
    proba = [[0.5, 0.5, 0.0], [0.2, 0.2, 0.6], [0.0, 0.05, 0.95]]
    assert cs.predict(proba) == [("ALS", "MMN"), (), ("NMO",)]
    assert cs.as_strings(proba) == ["{ALS, MMN}", "{}", "{NMO}"]
    assert as_strings([("ALS",)]) == ["{ALS}"]
    mask = cs.predict_mask(proba)
    assert mask.shape == (3, 3) and mask.dtype == bool
    with pytest.raises(AttributeError):
        cs.alpha = 0.2


@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_class_conditional_coverage_holds_on_fresh_data(alpha):
    rng = np.random.default_rng(7)
    y_cal, p_cal = _sample(rng, 15000)
    y_test, p_test = _sample(rng, 30000)
    cs = fit_conformal(y_cal, p_cal, CLASSES, alpha)
    cov = coverage(y_test, cs.predict(p_test), CLASSES)
    assert (cov.loc[CLASSES, "coverage"] >= 1 - alpha - 0.03).all()
    assert cov.loc["overall", "coverage"] == pytest.approx(1 - alpha, abs=0.02)
    assert cov.loc["overall", "n"] == 30000


def test_minority_class_is_covered_where_a_marginal_threshold_fails():
    rng = np.random.default_rng(3)
    prior = (0.6, 0.3, 0.1)
    y_cal, p_cal = _sample(rng, 40000, prior=prior)
    y_test, p_test = _sample(rng, 40000, prior=prior)
    cov = coverage(
        y_test, fit_conformal(y_cal, p_cal, CLASSES, 0.1).predict(p_test), CLASSES
    )
    assert (cov.loc[CLASSES, "coverage"] >= 0.9 - 0.03).all()
    # one threshold for all classes (plain split conformal) under-covers NMO
    scores = np.sort(
        1 - p_cal[np.arange(len(y_cal)), [CLASSES.index(c) for c in y_cal]]
    )
    marginal = scores[int(np.ceil((len(scores) + 1) * 0.9)) - 1]
    nmo = y_test == "NMO"
    assert (1 - p_test[nmo, 2] <= marginal).mean() < 0.8


def test_sets_shrink_when_the_model_is_sharper():
    size = {}
    for conc in (0.3, 3.0):
        rng = np.random.default_rng(11)
        y_cal, p_cal = _sample(rng, 6000, conc)
        y_test, p_test = _sample(rng, 6000, conc)
        sets = fit_conformal(y_cal, p_cal, CLASSES, 0.1).predict(p_test)
        size[conc] = coverage(y_test, sets, CLASSES).loc["overall", "mean_set_size"]
    assert size[0.3] < size[3.0] - 0.5


def test_coverage_table_by_hand():
    sets = [("ALS",), ("ALS", "MMN"), ("NMO",), ()]
    cov = coverage(["ALS", "MMN", "MMN", "ALS"], sets, CLASSES)
    assert list(cov.index) == [*CLASSES, "overall"]
    assert cov.loc["ALS", "coverage"] == 0.5
    assert cov.loc["MMN", "coverage"] == 0.5
    assert cov.loc["MMN", "mean_set_size"] == 1.5
    assert cov.loc["NMO", "n"] == 0 and np.isnan(cov.loc["NMO", "coverage"])
    assert cov.loc["overall", "coverage"] == 0.5
    assert cov.loc["overall", "empty"] == 0.25


def test_cross_conformal_oof_covers_each_class_over_folds():
    rng = np.random.default_rng(5)
    y, proba = _sample(rng, 20000)
    folds = rng.integers(0, 5, len(y))
    sets = cross_conformal_oof(y, proba, folds, CLASSES, alpha=0.1)
    assert len(sets) == len(y)
    cov = coverage(y, sets, CLASSES)
    assert (cov.loc[CLASSES, "coverage"] >= 0.9 - 0.03).all()


def test_cross_conformal_oof_never_calibrates_on_its_own_fold():
    # fold 1 alone has confident ALS; calibrating on it would shrink ALS's threshold
    y = np.array(["ALS"] * 40)
    proba = np.tile([0.5, 0.25, 0.25], (40, 1))
    proba[20:] = [0.99, 0.005, 0.005]
    folds = np.repeat([0, 1], 20)
    with pytest.warns(UserWarning, match="0 calibration subjects"):
        sets = cross_conformal_oof(y, proba, folds, CLASSES, alpha=0.1)
    # fold 0 is calibrated on fold 1 alone (ALS threshold 0.01): ALS drops out of
    # its sets, which calibrating on fold 0 itself (threshold 0.5) would have kept
    assert all(s == ("MMN", "NMO") for s in sets[:20])
    assert all(s == ("ALS", "MMN", "NMO") for s in sets[20:])


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5])
def test_alpha_outside_unit_interval_is_rejected(alpha):
    proba = np.tile([0.5, 0.3, 0.2], (4, 1))
    with pytest.raises(ValueError, match=r"it must lie in \(0, 1\)"):
        fit_conformal(["ALS"] * 4, proba, CLASSES, alpha)
    with pytest.raises(ValueError, match=r"it must lie in \(0, 1\)"):
        cross_conformal_oof(["ALS"] * 4, proba, [0, 0, 1, 1], CLASSES, alpha)


@pytest.mark.filterwarnings("ignore:class .* calibration subjects:UserWarning")
def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match=r"expected \(n_subjects, 3\)"):
        fit_conformal(["ALS"], [[0.5, 0.5]], CLASSES)
    cs = fit_conformal(["ALS"] * 30, np.tile([0.5, 0.3, 0.2], (30, 1)), CLASSES, 0.5)
    with pytest.raises(ValueError, match=r"expected \(n_subjects, 3\)"):
        cs.predict([[0.5, 0.5]])


@pytest.mark.parametrize(
    ("y", "sets", "match"),
    [
        (["ALS", "MMN"], [("ALS",)], "1 prediction sets for 2 labels"),
        (["XYZ"], [("ALS",)], r"\['XYZ'\] are not in classes"),
        (["ALS"], [("HC",)], r"\['HC'\] are not in classes"),
    ],
)
def test_coverage_rejects(y, sets, match):
    with pytest.raises(ValueError, match=match):
        coverage(y, sets, CLASSES)


@pytest.mark.parametrize(
    ("folds", "match"),
    [
        ([0, 0, 1], "pass one fold id per subject"),
        ([0, 0, 0, 0], r"holds 1 fold\(s\); cross-conformal sets need at least 2"),
    ],
)
def test_cross_conformal_oof_rejects_bad_folds(folds, match):
    proba = np.tile([0.5, 0.3, 0.2], (4, 1))
    with pytest.raises(ValueError, match=match):
        cross_conformal_oof(["ALS"] * 4, proba, folds, CLASSES)
