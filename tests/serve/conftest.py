"""Serving fixtures: the trained champion, the cohort's features, and a bundle of
every model family built the way training builds one (without the nested CV)."""

from __future__ import annotations

import pandas as pd
import pytest

from common.schema import MIMICS
from features.extract import extract_features, feature_columns
from models.locked import LockedModel
from models.ood import NearestClassDistance
from models.pipelines import SKEWED, build_pipeline
from serve.bundle import Bundle, load_bundle
from training import card

PARAMS = {
    "logreg": {"C": 1.0, "l1_ratio": 0.5},
    "svm": {"C": 1.0, "gamma": 0.01},
    "random_forest": {
        "n_estimators": 40,
        "max_depth": 4,
        "min_samples_leaf": 2,
        "max_features": 0.3,
    },
    "xgboost": {
        "n_estimators": 30,
        "max_depth": 2,
        "learning_rate": 0.3,
        "subsample": 1.0,
        "colsample_bytree": 0.8,
        "min_child_weight": 1.0,
        "reg_lambda": 1.0,
    },
}


@pytest.fixture(scope="session")
def cohort_table(small_cohort) -> pd.DataFrame:
    """The features table of the small simulated cohort (60 subjects)."""
    return extract_features(small_cohort, n_jobs=1).table


@pytest.fixture(scope="session")
def champion(trained) -> Bundle:
    """The model ``python -m training`` registered, loaded as serving loads it."""
    result, cfg = trained
    return load_bundle(result.model_uri, cfg.tracking_uri)


def build_bundle(table: pd.DataFrame, family: str) -> Bundle:
    """A bundle of ``family`` fitted on ``table``, with the card training writes."""
    columns = [*feature_columns(table.drop(columns=["participant_id"])), "site"]
    X = table[columns].assign(site=table["site"].astype("string"))
    y = table["diagnosis"].astype(str).to_numpy()
    classes = sorted(set(y))
    pipe = build_pipeline(family, PARAMS[family], columns, seed=0, calibrate=None)
    model = LockedModel(pipe, NearestClassDistance(log_columns=SKEWED)).fit(X, y)
    facts = card.CardFacts(
        family=family,
        task="diagnosis",
        classes=tuple(classes),
        mimics=MIMICS,
        conformal={"alpha": 0.1, "thresholds": dict.fromkeys(classes, 0.9)},
        sites=tuple(sorted(X["site"].dropna().unique())),
        simulated=True,
    )
    metadata = card.model_card(model, X, y, facts, model.predict_proba(X))
    return Bundle(model, metadata, f"test:{family}", f"test-{family}")


@pytest.fixture(scope="session")
def family_bundles(cohort_table) -> dict[str, Bundle]:
    return {f: build_bundle(cohort_table, f) for f in PARAMS}


def cidp_like(table: pd.DataFrame) -> pd.DataFrame:
    """Rows made demyelinating beyond any training class: conduction velocity
    slowed to a third, F-waves doubled, CMAPs tiny (a CIDP-like profile)."""
    out = table.copy()
    out["ncs_min_cv_m_s"] = out["ncs_min_cv_m_s"].fillna(50.0) / 3
    out["ncs_max_f_wave_ms"] = out["ncs_max_f_wave_ms"].fillna(30.0) * 2.5
    cmap = [c for c in out.columns if c.endswith("_cmap_mv")]
    out[cmap] = out[cmap].fillna(8.0) * 0.05
    out["has_ncs"] = 1.0
    return out
