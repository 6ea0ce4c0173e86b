"""The plain peers every run is measured against, on the champion's own folds.

What a careful analyst runs before building anything: default ``XGBClassifier()``
(no tuning, no calibration, no harmonisation) and a plain multinomial logistic
regression (mean imputation with missing-indicators, scaling). Both see the same
feature columns as the project's models (the site label, text, is dropped) and are
fitted on exactly the training side of each outer fold of the nested CV, every
repeat, so their out-of-fold probabilities compare subject for subject. A step of
the project's pipeline that does not beat them on log loss does not earn its keep.
"""

from __future__ import annotations

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.estimators import SITE, BalancedClassifier, DropColumns


def xgboost_default(seed: int = 0) -> Pipeline:
    """``XGBClassifier()`` with its defaults (labels encoded, no class weights)."""
    from xgboost import XGBClassifier

    booster = XGBClassifier(n_jobs=1, random_state=seed)
    return Pipeline(
        [
            ("drop_site", DropColumns((SITE,))),
            ("classifier", BalancedClassifier(booster, balanced=False)),
        ]
    )


def logreg_plain(seed: int = 0) -> Pipeline:
    """Mean imputation with missing-indicators, scaling, ``LogisticRegression()``
    (L2, C = 1, no class weights)."""
    return Pipeline(
        [
            ("drop_site", DropColumns((SITE,))),
            (
                "impute",
                SimpleImputer(add_indicator=True, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
            ("classifier", LogisticRegression(max_iter=5000, random_state=seed)),
        ]
    )


PEERS = {"xgboost_default": xgboost_default, "logreg_plain": logreg_plain}

__all__ = ["PEERS", "logreg_plain", "xgboost_default"]
