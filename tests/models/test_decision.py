"""The decision rules every stage shares (models/decision.py)."""

from __future__ import annotations

import numpy as np
import pytest

from common.schema import MIMICS
from models.decision import (
    CLASSES,
    als_vs_mimics,
    format_set,
    in_set,
    join_labels,
    mimic_columns,
    set_labels,
)
from training.conformal import fit_conformal


def test_the_class_list_and_default_mimics():
    assert CLASSES == ("ALS", "MMN", "NMO", "MS", "HC")
    assert MIMICS == ("MMN", "NMO", "MS")
    assert set(MIMICS) < set(CLASSES) and "ALS" not in MIMICS


@pytest.mark.parametrize(
    ("mimics", "expected"),
    [
        (("MMN", "NMO", "MS"), 0.3 / 0.6),
        (("MMN", "NMO"), 0.3 / 0.4),
        (("MS",), 0.3 / 0.5),
    ],
)
def test_als_vs_mimics_uses_the_mimics_it_is_given(mimics, expected):
    proba = np.array([[0.3, 0.1, 0.0, 0.2, 0.4]])
    assert als_vs_mimics(proba, CLASSES, mimics)[0] == pytest.approx(expected)


def test_als_vs_mimics_is_nan_without_als_or_mimics():
    proba = np.array([[0.6, 0.4]])
    assert np.isnan(als_vs_mimics(proba, ["MMN", "HC"], MIMICS)).all()
    assert np.isnan(als_vs_mimics(proba, ["ALS", "HC"], MIMICS)).all()


def test_the_pooled_mimic_class_counts_as_a_mimic():
    assert mimic_columns(["ALS", "mimic"], ()) == [1]
    p = np.array([[0.7, 0.3]])
    assert als_vs_mimics(p, ["ALS", "mimic"], MIMICS)[0] == pytest.approx(0.7)


def test_conformal_membership_is_the_fitted_sets_rule():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=200)
    y = np.asarray(["ALS", "MMN", "HC"])[rng.integers(0, 3, 200)]
    cs = fit_conformal(y, proba, ["ALS", "MMN", "HC"], alpha=0.2)
    member = in_set(proba, [cs.thresholds[c] for c in cs.classes])
    np.testing.assert_array_equal(member, cs.predict_mask(proba))
    assert set_labels(member, cs.classes).tolist() == cs.as_strings(proba)


def test_set_and_label_text():
    member = np.array([[True, False, True], [False, False, False]])
    assert set_labels(member, ["ALS", "MMN", "HC"]).tolist() == ["{ALS, HC}", "{}"]
    assert join_labels(member, ["mri", "dti", "serum"]).tolist() == ["mri,serum", ""]
    assert format_set(["ALS"]) == "{ALS}"


def test_nan_probabilities_are_in_no_set():
    assert not in_set(np.array([[np.nan, np.nan]]), [1.0, 1.0]).any()
