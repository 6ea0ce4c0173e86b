"""Mapping a lab's own column names and codes onto the features-table contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.lab_table import InputMapping, code, parse_map

CLASSES = ("ALS", "MMN", "NMO", "MS", "HC")


def _export() -> pd.DataFrame:
    """Shaped like a study spreadsheet: its own names, numeric codes, mixed case."""
    return pd.DataFrame(
        {
            "Subject_ID": ["7T-001", "7T-002", "7T-003"],
            "Group": [1, 0, np.nan],
            "AGE (years)": [61, "unknown", 58],
            "Gender": [1, 2, 2],
            "NFL_PG_ML": [80.0, 9.0, 12.0],
            "Notes": ["", "moved", None],
        }
    )


def _mapping(**kw) -> InputMapping:
    base = {
        "label_column": "group",
        "group_column": "subject_id",
        "age_column": "age (years)",
        "sex_column": "GENDER",
        "label_map": ["1=ALS", "0=HC"],
        "sex_map": ["1=M", "2=F"],
    }
    return InputMapping(**{**base, **kw})


def test_codes_names_and_dictionary_case_are_mapped():
    out, problems = _mapping().apply(_export(), "lab.xlsx", CLASSES)
    assert out["participant_id"].tolist() == ["7T-001", "7T-002", "7T-003"]
    assert out["diagnosis"].tolist()[:2] == ["ALS", "HC"]
    assert pd.isna(out["diagnosis"].iloc[2])  # an empty label leaves the row out
    assert out["male"].tolist() == [1.0, 0.0, 0.0]
    assert "nfl_pg_ml" in out and "NFL_PG_ML" not in out  # dictionary name
    assert problems == {
        1: [
            "AGE (years) = 'unknown' is not an age in years; write a number or "
            "leave the cell empty"
        ]
    }


def test_unmapped_codes_name_the_row_value_and_fix():
    table = _export().assign(Group=[1, 2, 0], Gender=[1, 3, 2])
    _, problems = _mapping().apply(table, "lab.xlsx", CLASSES)
    row = " | ".join(problems[1])
    assert "Group = 2: it has no entry in --label-map 1=ALS 0=HC" in row
    assert "Gender = 3 is not a sex; add it to --sex-map 1=M 2=F" in row


def test_labels_without_a_map_must_be_class_names():
    table = pd.DataFrame({"dx": ["als", "Control"], "sex": ["female", "M"]})
    out, problems = InputMapping("dx").apply(table, "t.csv", CLASSES)
    assert out["diagnosis"].iloc[0] == "ALS" and out["sex"].tolist() == ["F", "M"]
    assert "dx = 'Control': expected one of" in problems[1][0]
    assert "--label-map, e.g. --label-map 1=ALS 0=HC" in problems[1][0]
    _, problems = InputMapping("dx").apply(table.assign(sex=[1, 2]), "t.csv", CLASSES)
    assert "give the codes with --sex-map, e.g. --sex-map 1=M 2=F" in problems[0][0]


def test_a_near_miss_column_is_answered_with_the_closest_name():
    with pytest.raises(
        ValueError,
        match=r"no column 'Subject'.*closest is 'Subject_ID'.*--group-column",
    ):
        _mapping(group_column="Subject").apply(_export(), "lab.xlsx", CLASSES)
    with pytest.raises(ValueError, match=r"no column 'diagnosis'.*--label-column"):
        InputMapping().apply(_export(), "lab.xlsx", CLASSES)


def test_scoring_does_not_require_the_named_columns():
    mapping = _mapping()
    out, problems = mapping.apply(
        _export().drop(columns=["Subject_ID", "Group"]), "new.csv", required=False
    )
    assert "participant_id" not in out and "diagnosis" not in out
    assert out["male"].tolist() == [1.0, 0.0, 0.0]


def test_a_mapping_never_silently_replaces_a_canonical_column():
    table = _export().assign(age=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"--age-column 'age \(years\)' would replace"):
        _mapping().apply(table, "lab.xlsx", CLASSES)


def test_maps_parse_and_codes_normalise():
    assert parse_map(["1=ALS", " 0 = HC"], "--label-map") == {"1": "ALS", "0": "HC"}
    assert [code(v) for v in (1, 1.0, " 1 ", "1.0", True, "Als")] == [
        "1",
        "1",
        "1",
        "1",
        "1",
        "als",
    ]
    with pytest.raises(ValueError, match=r"--label-map 'ALS': write CODE=VALUE"):
        parse_map(["ALS"], "--label-map")
    with pytest.raises(ValueError, match=r"--sex-map \{'1': 'male'\}: map each code"):
        InputMapping(sex_map=["1=male"])
    with pytest.raises(ValueError, match="code '1.0' is mapped twice"):
        parse_map(["1=ALS", "1.0=HC"], "--label-map")


def test_the_mapping_round_trips_through_the_model_card():
    mapping = _mapping()
    assert InputMapping(**mapping.to_dict()) == mapping
    assert mapping.text_columns() == ["subject_id"]
