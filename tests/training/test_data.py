"""Training data from a features table (CSV/Excel) and per-task labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.extract import extract_features
from training.config import TrainConfig
from training.data import load_training_data, prepare


@pytest.fixture(scope="module")
def table(small_cohort) -> pd.DataFrame:
    return extract_features(small_cohort, n_jobs=1).table


def test_features_table_with_other_column_names(table, tmp_path):
    renamed = table.rename(
        columns={"diagnosis": "dx", "participant_id": "subject", "site": "centre"}
    )
    path = tmp_path / "features.xlsx"
    renamed.to_excel(path, index=False)
    cfg = TrainConfig(
        features=path, label_column="dx", group_column="subject", site_column="centre"
    )
    data = load_training_data(cfg)
    assert len(data.y) == table["diagnosis"].notna().sum()
    assert "nfl_pg_ml" in data.X and "dx" not in data.X and "subject" not in data.X
    assert data.cohort_dir is None


def test_missing_label_column_names_the_fix(table, tmp_path):
    path = tmp_path / "f.csv"
    table.drop(columns=["diagnosis"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="no column 'diagnosis'.*--label-column"):
        load_training_data(TrainConfig(features=path))


def test_unknown_label_names_row_and_value(table):
    bad = table.copy()
    bad.loc[3, "diagnosis"] = "CIDP"
    with pytest.raises(ValueError, match=r"row 5 \(sub-\d+\): diagnosis = 'CIDP'"):
        prepare(bad, TrainConfig(), "t.csv", "x")


def test_als_vs_mimics_pools_the_mimics(table):
    data = prepare(table, TrainConfig(task="als_vs_mimics"), "t", "x")
    assert set(data.y) == {"ALS", "mimic"}
    assert not np.isin(data.diagnosis, ["HC"]).any()
    assert (data.y[data.diagnosis == "MMN"] == "mimic").all()


def test_contrast_keeps_two_classes(table):
    data = prepare(
        table, TrainConfig(task="contrast", contrast=("NMO", "MS")), "t", "x"
    )
    assert set(data.y) <= {"NMO", "MS"}
