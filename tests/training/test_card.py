"""The model card: schema with units and ranges, reference statistics, an
aggregated SHAP background that never holds one subject's values, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training import card


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["ALS", "HC", "MMN"])[np.arange(n) % 3]
    X = pd.DataFrame(
        {
            "site": pd.array(rng.choice(["A", "B"], n), dtype="string"),
            "nfl_pg_ml": np.exp(2.5 + (y == "ALS") + rng.normal(0, 0.3, n)),
            "alsfrs_r": rng.integers(20, 49, n).astype(float),
            "qsm_putamen_l": rng.normal(0, 10, n),
            "has_serum": 1.0,
        }
    )
    X.loc[::5, "nfl_pg_ml"] = np.nan
    return X, y


def test_schema_names_dtype_unit_modality_and_range():
    X, _ = _table()
    entries = {e["name"]: e for e in card.schema(X)}
    assert entries["site"]["dtype"] == "string"
    assert entries["nfl_pg_ml"] == {
        "name": "nfl_pg_ml",
        "dtype": "float",
        "unit": "pg/mL",
        "modality": "serum",
        "min": 0.0,
        "max": None,
    }
    assert (entries["alsfrs_r"]["min"], entries["alsfrs_r"]["max"]) == (0.0, 48.0)
    assert entries["qsm_putamen_l"]["min"] is None  # susceptibility can be negative


def test_reference_statistics_of_all_rows_and_of_controls():
    X, y = _table()
    stats = card.reference_statistics(X, y, "HC")
    nfl = stats["nfl_pg_ml"]
    observed = X["nfl_pg_ml"].dropna()
    assert nfl["n"] == len(observed)
    assert nfl["missing"] == pytest.approx(X["nfl_pg_ml"].isna().mean())
    assert nfl["q50"] == pytest.approx(observed.median())
    controls = X.loc[y == "HC", "nfl_pg_ml"].dropna()
    assert nfl["controls_n"] == len(controls)
    assert nfl["controls_q50"] == pytest.approx(controls.median())
    assert "site" not in stats


def test_background_rows_summarise_at_least_ten_subjects():
    X, y = _table(n=150)
    bg = card.background(X, y)
    assert bg["columns"] == ["nfl_pg_ml", "alsfrs_r", "qsm_putamen_l", "has_serum"]
    assert {r["class"] for r in bg["rows"]} == {"ALS", "HC", "MMN"}
    assert all(r["n"] >= card.MIN_CLUSTER for r in bg["rows"])
    assert sum(r["n"] for r in bg["rows"]) == len(X)
    assert all(len(r["values"]) == 4 for r in bg["rows"])


def test_calibration_bins_cover_every_row():
    rng = np.random.default_rng(0)
    y = rng.choice(["ALS", "HC"], 200)
    p = np.clip((y == "ALS") * 0.6 + rng.uniform(0, 0.4, 200), 0, 1)
    cal = card.calibration(y, np.column_stack([p, 1 - p]), ["ALS", "HC"])
    assert sum(b["n"] for b in cal["ALS"]) == 200
    assert all(0 <= b["observed"] <= 1 for b in cal["HC"])


def test_package_versions_include_the_pinned_ones_and_python():
    versions = card.package_versions()
    assert {"python", "scikit-learn", "xgboost", "numpy"} <= set(versions)
