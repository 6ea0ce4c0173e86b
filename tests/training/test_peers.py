"""The plain peers, fitted on exactly the champion's outer folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier

from training.nested_cv import FoldResult, NestedResult, on_same_folds
from training.peers import PEERS, logreg_plain, xgboost_default

CLASSES = ["ALS", "HC", "MMN"]


def _data(n: int = 90, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.asarray(CLASSES)[np.arange(n) % 3]
    X = pd.DataFrame(
        {
            "nfl_pg_ml": rng.normal(size=n) + (y == "ALS") * 3,
            "mrs_glu_naa": rng.normal(size=n) - 3 * (y == "MMN"),
            "site": rng.choice(["A", "B"], n),
        }
    )
    X.loc[rng.random(n) < 0.2, "mrs_glu_naa"] = np.nan  # not acquired
    return X, y


def _result(n: int, folds: list[np.ndarray]) -> NestedResult:
    return NestedResult(
        "xgboost",
        CLASSES,
        np.full((n, 3), 1 / 3),
        [
            FoldResult(k, t, {}, np.empty((len(t), 3)), {}, "")
            for k, t in enumerate(folds)
        ],
        {},
    )


class _Remember(ClassifierMixin, BaseEstimator):
    """Predicts, for every test row, how many training rows it was fitted on."""

    fitted: list[set[int]] = []

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        _Remember.fitted.append(set(X.index))
        return self

    def predict_proba(self, X):
        return np.tile(np.eye(len(self.classes_))[0], (len(X), 1))


def test_on_same_folds_trains_on_the_complement_of_each_test_fold():
    X, y = _data(30)
    # two repeats of three folds: every subject tested twice
    order = np.random.default_rng(1).permutation(30)
    folds = [np.arange(0, 10), np.arange(10, 20), np.arange(20, 30)]
    folds += [order[:10], order[10:20], order[20:]]
    _Remember.fitted = []
    proba = on_same_folds(_Remember, X, y, _result(30, folds))
    assert [set(range(30)) - f for f in _Remember.fitted] == [set(t) for t in folds]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_xgboost_peer_is_the_default_booster():
    X, y = _data()
    train, test = np.arange(60), np.arange(60, 90)
    peer = xgboost_default(seed=0).fit(X.iloc[train], y[train])
    enc = LabelEncoder().fit(y)
    plain = XGBClassifier(random_state=0).fit(
        X.drop(columns="site").iloc[train], enc.transform(y[train])
    )
    np.testing.assert_allclose(
        peer.predict_proba(X.iloc[test]),
        plain.predict_proba(X.drop(columns="site").iloc[test]),
        rtol=1e-5,
    )
    assert list(peer.classes_) == CLASSES


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peers_handle_missing_values_and_learn(name):
    X, y = _data(300)
    folds = np.array_split(np.random.default_rng(2).permutation(300), 3)
    proba = on_same_folds(lambda: PEERS[name](0), X, y, _result(300, folds))
    assert np.isfinite(proba).all()
    hit = (np.asarray(CLASSES)[proba.argmax(axis=1)] == y).mean()
    assert hit > 0.6  # chance is 1/3


def test_logreg_peer_adds_missing_indicators():
    X, y = _data()
    fitted = logreg_plain().fit(X, y)
    assert fitted[-1].coef_.shape[1] == 3  # two values + one indicator (mrs missing)
