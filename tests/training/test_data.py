"""Training data from a features table (CSV/Excel) and per-task labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.extract import extract_features
from tests import DATA
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


TABLES = DATA / "tables"
LAB = {
    "features": TABLES / "lab_7t_export.xlsx",
    "label_column": "Group",
    "label_map": ("1=ALS", "0=HC"),
    "sex_column": "gender",
    "sex_map": ("1=M", "2=F"),
}


def test_a_lab_export_maps_its_codes_and_reports_what_it_lacks():
    data = load_training_data(TrainConfig(**LAB))
    assert data.classes == ["ALS", "HC"] and len(data.y) == 24
    assert data.covariates == ("age", "male") and {"age", "male"} <= set(data.X)
    assert "Notes" not in data.X and "Gender" not in data.X
    notes = " | ".join(data.notes)
    assert "no participant column: each row is one participant" in notes
    assert "column 'Notes' holds text (e.g. 'motion in run 2')" in notes
    assert "diagnosis task on the classes present: ALS, HC" in notes
    assert "no site column: ComBat harmonisation is off" in notes
    assert data.mapping["label_map"] == {"1": "ALS", "0": "HC"}


def test_a_one_class_table_is_refused(tmp_path):
    path = tmp_path / "als_only.csv"
    pd.DataFrame({"dx": ["ALS"] * 6, "nfl_pg_ml": np.arange(6.0)}).to_csv(path)
    with pytest.raises(ValueError, match=r"at least two classes.*found ALS \(6\)"):
        load_training_data(TrainConfig(features=path, label_column="dx"))


def test_an_unmapped_code_names_row_value_and_fix():
    cfg = TrainConfig(**{**LAB, "label_map": ("1=ALS",)})
    with pytest.raises(
        ValueError,
        match=r"12 row\(s\) have cells.*row 14: Group = 0: it has no entry in",
    ):
        load_training_data(cfg)


def test_a_covariate_the_data_lack_is_named_not_dropped(table):
    data = prepare(table.drop(columns=["age"]), TrainConfig(), "t.csv", "x")
    assert data.covariates == ("male",)
    assert any("no age in the data" in n and "for sex only" in n for n in data.notes)


def test_site_codes_stay_text(tmp_path, table):
    path = tmp_path / "f.csv"
    table.assign(site=np.where(np.arange(len(table)) % 2, "01", "02")).to_csv(
        path, index=False
    )
    data = load_training_data(TrainConfig(features=path))
    assert set(data.X["site"]) == {"01", "02"}


def test_objective_feature_set_keeps_imaging_mrs_serum_and_says_what_it_left(table):
    cfg = TrainConfig(feature_set=("objective",))
    data = prepare(table, cfg, "features.tsv", "x")
    kept = set(data.X)
    assert {"age", "male", "site", "nfl_pg_ml", "has_serum", "has_dti"} <= kept
    assert not any(c.startswith("ncs_") for c in kept)
    assert {"alsfrs_r", "penn_umn", "has_ncs", "has_clinical"}.isdisjoint(kept)
    note = next(n for n in data.notes if n.startswith("feature set objective"))
    assert "columns left out (" in note and "ncs " in note and "clinical " in note


def test_a_feature_set_of_modalities_and_its_clear_errors():
    cfg = TrainConfig().updated(feature_set="serum")  # a TOML string, not a list
    assert cfg.modalities() == ("serum",)
    with pytest.raises(ValueError, match="name sets .*objective.* or modalities"):
        TrainConfig(feature_set=("blood",))
    # a lab's own column names have no modality: the error says why
    with pytest.raises(ValueError, match="of the modalities of feature set"):
        load_training_data(TrainConfig(**LAB, feature_set=("serum",)))


def test_repeated_visits_train_on_the_baseline_unless_asked(table):
    later = table.assign(session="ses-02", months_since_baseline=6.0)
    later["nfl_pg_ml"] = later["nfl_pg_ml"] * 2  # the later visit differs
    first = table.assign(session="ses-01", months_since_baseline=0.0)
    visits = pd.concat([later, first], ignore_index=True)  # later rows first
    data = prepare(visits, TrainConfig(), "t", "x")
    n = int(table["diagnosis"].notna().sum())
    assert len(data.y) == n and (data.table["session"] == "ses-01").all()
    assert any("later visit(s) of 60 participant(s) left out" in s for s in data.notes)
    every = prepare(visits, TrainConfig(visits="all"), "t", "x")
    assert len(every.y) == 2 * n
    assert (pd.Series(every.groups).value_counts() == 2).all()  # grouped by person
    with pytest.raises(ValueError, match="visits = 'first'; choose one of"):
        TrainConfig(visits="first")


def test_a_table_with_values_in_another_unit_says_so_and_leaves_them_out(table):
    lab = table.copy()
    rows = lab.index[lab["nfl_pg_ml"].notna()][:4]
    lab.loc[rows, "nfl_pg_ml"] /= 1000  # ng/mL
    data = prepare(lab, TrainConfig(), "lab.csv", "x")
    [said] = [n for n in data.notes if "nfl_pg_ml" in n]  # one per column
    assert said.startswith("lab.csv: 4 values of nfl_pg_ml are implausible (row 2")
    assert "looks like ng/mL; multiply by 1000" in said
    kept = data.table.set_index("participant_id")["nfl_pg_ml"]
    assert kept.loc[lab.loc[rows, "participant_id"]].isna().all()


def test_a_lab_table_newest_visit_first_trains_on_each_baseline(table):
    """OASIS-style: repeated participants, a 'Visit' and an 'MR Delay' column,
    the table sorted newest visit first."""
    first = table.assign(Visit=1, **{"MR Delay": 0})
    later = first.assign(Visit=2, **{"MR Delay": 400}, nfl_pg_ml=first["nfl_pg_ml"] * 3)
    lab = pd.concat([later, first], ignore_index=True)  # newest first
    data = prepare(lab, TrainConfig(), "lab.csv", "x")
    kept = data.table.set_index("participant_id")["nfl_pg_ml"]
    np.testing.assert_allclose(
        kept.loc[first["participant_id"]], first["nfl_pg_ml"].to_numpy()
    )
    said = " | ".join(data.notes)
    assert "baseline visit (earliest MR Delay)" in said
    for c in ("Visit", "MR Delay"):
        assert f"column {c!r} dates or numbers the visit" in said
        assert c not in data.X.columns


def test_without_a_visit_column_the_first_row_is_said_to_be_file_order(table):
    lab = pd.concat([table, table], ignore_index=True)
    lab = lab.drop(
        columns=[c for c in ("session", "months_since_baseline") if c in lab]
    )
    data = prepare(lab, TrainConfig(), "lab.csv", "x")
    assert any("FIRST ROW IN FILE ORDER" in n for n in data.notes)


def test_excel_formulas_without_saved_results_are_named_per_column(table, tmp_path):
    import openpyxl

    from training.data import load_training_data

    path = tmp_path / "lab.xlsx"
    sheet = table[["participant_id", "diagnosis", "age", "sex", "site", "dti_cst_l_fa",
                   "nfl_pg_ml"]]  # fmt: skip
    book = openpyxl.Workbook()
    book.active.append(list(sheet.columns))
    for i, row in enumerate(sheet.itertuples(index=False), start=2):
        values = ["" if pd.isna(v) else v for v in row]
        values[-1] = f"=B{i}*0+12"  # written by a script: no cached result
        book.active.append(values)
    book.save(path)
    data = load_training_data(TrainConfig(features=path))
    [said] = [n for n in data.notes if "formula" in n]
    assert f"column 'nfl_pg_ml' holds {len(sheet)} formula(s) with no saved" in said
    assert "row 2: =B2*0+12" in said and "save it" in said
