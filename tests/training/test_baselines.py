"""Baselines: published rules as honest, calibrated scikit-learn classifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from features.extract import extract_features, feature_columns
from training.baselines import (
    BASELINES,
    RULES,
    CriteriaBaseline,
    MajorityBaseline,
    NfLCutoffBaseline,
    assign_rules,
)
from training.evaluation import score

NAN = np.nan


def _oof(estimator, X: pd.DataFrame, y: np.ndarray, classes: list[str]) -> np.ndarray:
    """Out-of-fold probabilities, columns in ``classes`` order (as nested_cv)."""
    out = np.zeros((len(y), len(classes)))
    for train, test in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        fitted = clone(estimator).fit(X.iloc[train], y[train])
        for j, c in enumerate(fitted.classes_):
            out[test, classes.index(c)] = fitted.predict_proba(X.iloc[test])[:, j]
    return out


@pytest.fixture(scope="module")
def criteria_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """One hand-built subject per rule, twice, labelled with the rule's class."""
    cols = ["aqp4_igg", "oligoclonal_bands", "t2_lesion_volume_ml", "edss"]
    cols += ["ncs_any_cb", "ncs_sensory_abnormal", "penn_umn", "umn_signs"]
    cols += ["lmn_signs", "nfl_pg_ml"]
    rows = {
        "NMO": [1, 0, 0.5, 3.5, NAN, NAN, 4, 1, 0, 20],  # AQP4+
        "MS": [0, 1, 12.0, 2.0, NAN, NAN, 3, 1, 0, 25],  # OCB + lesions
        "MMN": [0, 0, 0.0, NAN, 1, 0, 0, 0, 1, 15],  # CB, Penn 0, sensory normal
        "ALS": [0, 0, 0.0, NAN, 0, 0, 8, 1, 1, 120],  # UMN + LMN
        "HC": [0, 0, 0.0, 0.0, 0, 0, 0, 0, 0, 9],  # all normal
    }
    X = pd.DataFrame([*rows.values(), *rows.values()], columns=cols, dtype=float)
    return X, np.array(list(rows) * 2)


def test_criteria_rules_fire_as_published(criteria_frame):
    X, y = criteria_frame
    assert assign_rules(X)[:5].tolist() == [
        "aqp4",
        "ocb_lesions",
        "efns_pns_mmn",
        "umn_lmn",
        "all_normal",
    ]
    model = CriteriaBaseline().fit(X, y)
    assert model.predict(X).tolist() == y.tolist()
    assert all(isinstance(c, str) for c in model.classes_)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    # Laplace: 2 subjects in the rule, 5 classes -> (2 + 1) / (2 + 5)
    assert model.rule_proba_.loc["aqp4", "NMO"] == pytest.approx(3 / 7)
    assert list(model.rule_counts_.index) == [r[0] for r in RULES]


def test_criteria_exclusions_and_missing_values(criteria_frame):
    X, _ = criteria_frame
    mmn = X.iloc[[2]].copy()
    assert assign_rules(mmn.assign(penn_umn=3.0, umn_signs=1.0))[0] != "efns_pns_mmn"
    assert assign_rules(mmn.assign(ncs_sensory_abnormal=1.0))[0] != "efns_pns_mmn"
    # UMN status unknown: MMN's exclusion cannot be checked, so the rule cannot fire
    unknown_umn = mmn.assign(penn_umn=NAN, umn_signs=NAN)
    assert assign_rules(unknown_umn)[0] == "unclassified"
    # conduction block counted from the per-grade counts when ncs_any_cb is absent
    by_count = mmn.drop(columns="ncs_any_cb").assign(ncs_n_nerves_cb_probable=2.0)
    assert assign_rules(by_count)[0] == "efns_pns_mmn"
    nothing = pd.DataFrame({"aqp4_igg": [NAN], "penn_umn": [NAN]})
    assert assign_rules(nothing)[0] == "unclassified"
    # OCB without lesions or disability is not MS
    ocb_only = X.iloc[[4]].assign(oligoclonal_bands=1.0)
    assert assign_rules(ocb_only)[0] == "unclassified"


def test_criteria_errors_name_the_fix(criteria_frame):
    X, y = criteria_frame
    with pytest.raises(ValueError, match="none of the criteria columns"):
        CriteriaBaseline().fit(X[["nfl_pg_ml"]], y)
    with pytest.raises(TypeError, match="pandas DataFrame"):
        CriteriaBaseline().fit(X.to_numpy(), y)
    text = X.astype(object).assign(aqp4_igg="positive")
    with pytest.raises(ValueError, match="'aqp4_igg' must be numeric"):
        CriteriaBaseline().fit(text, y)
    with pytest.raises(ValueError, match="one label per row"):
        CriteriaBaseline().fit(X, y[:3])
    with pytest.raises(ValueError, match="2 missing label"):
        CriteriaBaseline().fit(X, np.where(np.arange(10) < 2, None, y))


def test_nfl_cutoff_is_a_calibrated_two_bin_model():
    X = pd.DataFrame({"nfl_pg_ml": [150, 80, 70, 30, 20, 10, 12, 90, NAN, 8.0]})
    y = np.array(["ALS", "ALS", "ALS", "ALS", "HC", "HC", "MS", "MS", "HC", "MS"])
    raw = NfLCutoffBaseline(alpha=0).fit(X, y)
    assert (raw.p_above_, raw.p_below_) == (3 / 4, 1 / 5)
    proba = raw.predict_proba(pd.DataFrame({"nfl_pg_ml": [100.0, 5.0, NAN]}))
    # other mass shared by training frequency: HC 3/10, MS 3/10 -> half each
    np.testing.assert_allclose(proba[0], [3 / 4, 1 / 8, 1 / 8])
    np.testing.assert_allclose(proba[1], [1 / 5, 2 / 5, 2 / 5])
    np.testing.assert_allclose(proba[2], [0.4, 0.3, 0.3])  # missing NfL: the prior
    smooth = NfLCutoffBaseline().fit(X, y)  # alpha = 1: (3 + 1) / (4 + 2)
    assert smooth.p_above_ == pytest.approx(4 / 6)
    assert NfLCutoffBaseline(cutoff=100).fit(X, y).p_above_ == pytest.approx(2 / 3)
    assert list(raw.classes_) == ["ALS", "HC", "MS"]


def test_nfl_cutoff_errors_name_the_fix():
    X = pd.DataFrame({"nfl_pg_ml": [100.0, 10.0]})
    with pytest.raises(ValueError, match="positive class 'ALS' is not among"):
        NfLCutoffBaseline().fit(X, ["MMN", "HC"])
    with pytest.raises(ValueError, match="no 'nfl_pg_ml' column"):
        NfLCutoffBaseline().fit(X.rename(columns={"nfl_pg_ml": "nfl"}), ["ALS", "HC"])
    fitted = NfLCutoffBaseline().fit(X, ["ALS", "HC"])
    with pytest.raises(ValueError, match="no 'nfl_pg_ml' column"):
        fitted.predict_proba(pd.DataFrame({"age": [50.0]}))
    with pytest.raises(TypeError, match="pandas DataFrame with a 'nfl_pg_ml'"):
        fitted.predict_proba(np.array([[100.0]]))
    single = NfLCutoffBaseline().fit(X, ["ALS", "ALS"])
    np.testing.assert_allclose(single.predict_proba(X), 1.0)


def test_majority_predicts_training_frequencies():
    X = pd.DataFrame({"a": [1.0, NAN, 3.0, 4.0]})
    model = MajorityBaseline().fit(X, ["HC", "ALS", "ALS", "ALS"])
    np.testing.assert_allclose(model.predict_proba(X), [[0.75, 0.25]] * 4)
    assert model.predict(X).tolist() == ["ALS"] * 4


def test_nfl_62_on_simulated_serum_lands_near_the_published_operating_point():
    """ALS vs rest AUC of the 2-bin NfL model, out of fold, on a large sample.

    refs#perf: NfL > 62 pg/mL gives sens 85.5 %, spec 81.8 % (AUC of the
    2-bin rule ~0.84; band 0.75-0.95). The simulator's ALS NfL (median ~62, the
    Simoa limb-onset figures of s1) puts the same cutoff at sens ~0.50, spec ~0.96,
    i.e. a 2-bin AUC ~0.73: the band is widened to 0.65 to accept that, and the
    exact link AUC = (sens + spec) / 2 is checked instead.
    """
    from features.simulate import generative

    obs = generative.sample(2000, 5)
    obs = obs[obs["avail_serum"]].reset_index(drop=True)
    X, y = obs[["nfl_pg_ml"]], obs["diagnosis"].to_numpy()
    classes = sorted(set(y))
    proba = _oof(NfLCutoffBaseline(), X, y, classes)
    auc = roc_auc_score(y == "ALS", proba[:, classes.index("ALS")])
    above = X["nfl_pg_ml"].to_numpy() > 62
    sens, spec = above[y == "ALS"].mean(), (~above)[y != "ALS"].mean()
    assert auc == pytest.approx((sens + spec) / 2, abs=0.02)
    assert 0.65 < auc < 0.95
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_baselines_cross_validate_on_an_extracted_cohort(small_cohort):
    table = extract_features(small_cohort, n_jobs=1).table
    X, y = table[feature_columns(table)], table["diagnosis"].astype(str).to_numpy()
    classes = sorted(set(y))
    metrics = {
        name: score(y, _oof(make(), X, y, classes), classes)
        for name, make in BASELINES.items()
    }
    assert metrics["majority"]["balanced_accuracy"] == pytest.approx(0.2)
    assert metrics["criteria"]["balanced_accuracy"] > 0.4
    assert metrics["criteria"]["macro_auc"] > metrics["majority"]["macro_auc"] + 0.2
    assert metrics["nfl_62"]["als_vs_rest_auc"] > 0.6
