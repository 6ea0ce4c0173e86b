"""SHAP explanations: the permutation estimator is exact Shapley when averaged over
every order, exact in sum for one, and correct for every model family."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pandas as pd
import pytest
import shap

from serve.explain import importance, permutation_shap, shap_values, top_contributions
from serve.predict import prepare_input


def _nonlinear(X, context=None):
    p = 1 / (1 + np.exp(-(X[:, 0] * X[:, 1] + np.sin(X[:, 2]))))
    return np.column_stack([p, 1 - p])


def test_all_orders_give_the_exact_shapley_values_of_shap():
    rng = np.random.default_rng(0)
    background, X = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    orders = [np.array(p) for p in permutations(range(3))]
    values, base = permutation_shap(_nonlinear, X, background, permutations=orders)
    exact = shap.explainers.Exact(_nonlinear, shap.maskers.Independent(background))(X)
    np.testing.assert_allclose(values, exact.values, atol=1e-10)
    np.testing.assert_allclose(base, exact.base_values, atol=1e-10)


def test_one_order_is_exact_in_sum_and_exact_for_an_additive_model():
    rng = np.random.default_rng(1)
    background, X = rng.normal(size=(8, 5)), rng.normal(size=(3, 5))
    values, base = permutation_shap(_nonlinear, X[:, :3], background[:, :3])
    np.testing.assert_allclose(base + values.sum(axis=1), _nonlinear(X[:, :3]))
    w = np.arange(1.0, 6.0)
    values, _ = permutation_shap(lambda Z, c: (Z @ w)[:, None], X, background, seed=3)
    np.testing.assert_allclose(values[:, :, 0], w * (X - background.mean(axis=0)))


def test_the_context_is_passed_with_every_evaluation_of_its_row():
    seen = []

    def f(rows, context):
        seen.append(context)
        return np.zeros((len(rows), 1))

    X = np.zeros((3, 2))
    permutation_shap(f, X, np.zeros((4, 2)), np.array(["a", "b", "c"]), batch=2)
    first = np.concatenate(seen[:2])
    assert first.tolist() == ["a"] * 12 + ["b"] * 12 + ["c"] * 12


@pytest.mark.parametrize("family", ["logreg", "svm", "random_forest", "xgboost"])
def test_every_family_is_explained_exactly_in_probability_units(
    family, family_bundles, cohort_table
):
    bundle = family_bundles[family]
    frame, errors = prepare_input(bundle, cohort_table.head(5))
    assert (errors == "").all()
    exp = shap_values(bundle, frame)
    features = [c for c in bundle.feature_columns if c != "site"]
    assert exp.values.shape == (5, len(features), len(bundle.classes))
    proba = bundle.model.predict_proba(frame)
    order = [list(bundle.model.classes_).index(c) for c in bundle.classes]
    np.testing.assert_allclose(
        exp.base_values + exp.values.sum(axis=1), proba[:, order], atol=1e-6
    )
    assert np.abs(exp.values).sum() > 0


def test_each_subject_is_explained_at_its_own_site(family_bundles, cohort_table):
    bundle = family_bundles["logreg"]
    frame, _ = prepare_input(bundle, cohort_table.head(1))
    sites = sorted(bundle.sites)[:2]
    two = pd.concat([frame.assign(site=s) for s in sites], ignore_index=True)
    two["site"] = two["site"].astype("string")
    exp = shap_values(bundle, two)
    assert not np.allclose(exp.base_values[0], exp.base_values[1])
    np.testing.assert_allclose(
        exp.base_values + exp.values.sum(axis=1),
        bundle.model.predict_proba(two),
        atol=1e-9,
    )


def test_top_contributions_and_importance(family_bundles, cohort_table):
    bundle = family_bundles["xgboost"]
    frame, _ = prepare_input(bundle, cohort_table.head(4))
    exp = shap_values(bundle, frame)
    top = top_contributions(exp, 2, "ALS", top=5)
    assert len(top) == 5
    assert [abs(t["shap"]) for t in top] == sorted(
        (abs(t["shap"]) for t in top), reverse=True
    )
    for t in top:
        value = frame.iloc[2][t["feature"]]
        assert (t["value"] is None and pd.isna(value)) or t["value"] == value
    per_feature, per_modality = importance(exp)
    assert per_modality.sum() == pytest.approx(per_feature.sum())
    assert "serum" in per_modality.index
