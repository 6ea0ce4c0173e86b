"""The ``python -m features`` command line: simulate, extract, and its refusals."""

from __future__ import annotations

import pandas as pd

from features.__main__ import main


def test_simulate_then_extract(tmp_path, caplog):
    cohort = tmp_path / "cohort"
    assert main(["simulate", "--out", str(cohort), "--n", "12", "--seed", "3"]) == 0
    assert "SIMULATED" in (cohort / "README.txt").read_text()
    out = tmp_path / "some" / "missing" / "dir" / "features.csv"  # created
    assert main(["extract", str(cohort), "--out", str(out), "--jobs", "1"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 12
    assert {"participant_id", "diagnosis", "nfl_pg_ml", "has_dti"} <= set(table)


def test_existing_outputs_are_not_overwritten(tmp_path, caplog):
    cohort = tmp_path / "cohort"
    assert main(["simulate", "--out", str(cohort), "--n", "10"]) == 0
    assert main(["simulate", "--out", str(cohort), "--n", "10"]) == 2
    assert "--overwrite" in caplog.text
    out = tmp_path / "features.parquet"
    out.write_text("keep me")
    assert main(["extract", str(cohort), "--out", str(out), "--jobs", "1"]) == 2
    assert out.read_text() == "keep me"


def test_missing_participants_is_a_clear_error(tmp_path, caplog):
    assert main(["extract", str(tmp_path), "--out", str(tmp_path / "f.csv")]) == 2
    assert "participants.tsv not found" in caplog.text


def test_cohort_without_optional_tables(tmp_path):
    from features.extract import extract_features
    from features.simulate.cohort import simulate_cohort

    cohort = simulate_cohort(tmp_path / "c", n=10, seed=5)
    for name in ("nerve_conduction.tsv", "peripheral_mri.tsv", "clinical.tsv"):
        (cohort / name).unlink()
    table = extract_features(cohort, n_jobs=1).table
    assert len(table) == 10
    assert (table["has_ncs"] == 0).all() and (table["has_clinical"] == 0).all()
    assert table["source_ncs"].isna().all()
