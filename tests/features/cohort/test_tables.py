"""Tests for features.cohort.tables: clinical.tsv, serum.tsv and peripheral_mri.tsv."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from features.cohort.cells import Rule
from features.cohort.participants import read_participants
from features.cohort.serology import TITRE_CUTOFFS
from features.cohort.tables import (
    CLINICAL_COLUMNS,
    PERIPHERAL_MRI_COLUMNS,
    SERUM_COLUMNS,
    read_clinical,
    read_peripheral_mri,
    read_serum,
)
from features.errors import CohortFormatError
from tests import ROOT


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write a small tab-separated table."""
    lines = ["\t".join(header), *("\t".join(map(str, row)) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def cohort(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A three-subject cohort directory and its participants table."""
    write_tsv(
        tmp_path / "participants.tsv",
        ["participant_id", "diagnosis", "age", "sex", "site"],
        [
            ["sub-01", "ALS", "60", "M", "A"],
            ["sub-02", "MMN", "45", "M", "A"],
            ["sub-03", "HC", "50", "F", "B"],
        ],
    )
    return tmp_path, read_participants(tmp_path)


CLINICAL_HEADER = [
    "participant_id",
    "alsfrs_r",
    "months_since_onset",
    "onset_region",
    "mrc_sum",
    "fvc_pct",
    "penn_umn",
    "edss",
    "umn_signs",
    "lmn_signs",
    "t2_lesion_volume_ml",
]


def test_read_clinical_parses_every_column(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "clinical.tsv",
        CLINICAL_HEADER,
        [
            [
                "sub-01",
                "40",
                "16",
                "Upper limb",
                "52",
                "85.5",
                "6",
                "",
                "YES",
                "y",
                "0.4",
            ],
            ["sub-02", "44", "0", "", "", "", "0", "", "no", "Yes", ""],
            ["sub-03", "48", "", "", "60", "101", "", "1.5", "n", "no", "0"],
        ],
    )
    frame, issues = read_clinical(cohort_dir, parts)
    assert issues == []
    assert list(frame.columns) == list(CLINICAL_COLUMNS)
    assert list(frame.index.names) == ["participant_id", "session"]
    assert frame.loc[("sub-01", ""), "alsfrs_r"] == 40.0
    assert frame["onset_region"].dtype == "string"
    assert frame.loc[("sub-01", ""), "onset_region"] == "upper_limb"
    assert frame["umn_signs"].tolist() == [1.0, 0.0, 0.0]
    assert frame["lmn_signs"].tolist() == [1.0, 1.0, 0.0]
    assert frame.loc[("sub-03", ""), "edss"] == 1.5
    rate = frame["alsfrs_r_progression_rate"]
    assert rate.iloc[0] == pytest.approx(0.5)  # (48 - 40) / 16
    assert math.isnan(rate.iloc[1]) and math.isnan(rate.iloc[2])  # 0 and missing months
    numeric = frame.drop(columns="onset_region")
    assert (numeric.dtypes == "float64").all()


def test_alsfrs_out_of_range_strict_raises(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "clinical.tsv",
        ["participant_id", "alsfrs_r"],
        [["sub-01", "40"], ["sub-02", "52"]],
    )
    pattern = (
        r"clinical\.tsv, row 3 \(sub-02\): alsfrs_r = 52; ALSFRS-R must be an integer "
        r"from 0 to 48\. Fix the value or leave the cell empty"
    )
    with pytest.raises(CohortFormatError, match=pattern):
        read_clinical(cohort_dir, parts, strict=True)


def test_alsfrs_out_of_range_lenient_records_issue_and_sets_nan(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "clinical.tsv",
        ["participant_id", "alsfrs_r", "edss"],
        [["sub-01", "40", "3.5"], ["sub-02", "52", "3.25"], ["sub-03", "4x", ""]],
    )
    frame, issues = read_clinical(cohort_dir, parts)
    assert frame.loc[("sub-01", ""), "alsfrs_r"] == 40.0
    assert math.isnan(frame.loc[("sub-02", ""), "alsfrs_r"])
    assert math.isnan(frame.loc[("sub-02", ""), "edss"])
    assert math.isnan(frame.loc[("sub-03", ""), "alsfrs_r"])
    found = [(i.file, i.participant_id, i.column, i.value) for i in issues]
    assert found == [
        ("clinical.tsv", "sub-02", "alsfrs_r", "52"),
        ("clinical.tsv", "sub-03", "alsfrs_r", "4x"),
        ("clinical.tsv", "sub-02", "edss", "3.25"),
    ]
    assert "not a number" in issues[1].message
    assert "EDSS must be a number from 0 to 10 in steps of 0.5" in issues[2].message


def test_non_integer_score_is_flagged(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "clinical.tsv", ["participant_id", "mrc_sum"], [["sub-01", "40.5"]]
    )
    with pytest.raises(CohortFormatError, match=r"mrc_sum = 40\.5; the MRC sum score"):
        read_clinical(cohort_dir, parts, strict=True)


def test_bad_onset_region_and_yes_no(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "clinical.tsv",
        ["participant_id", "onset_region", "umn_signs"],
        [["sub-01", "trunk", "maybe"]],
    )
    frame, issues = read_clinical(cohort_dir, parts)
    assert pd.isna(frame.iloc[0]["onset_region"]) and pd.isna(
        frame.iloc[0]["umn_signs"]
    )
    assert [i.column for i in issues] == ["onset_region", "umn_signs"]
    assert "onset_region = 'trunk'; expected bulbar, upper_limb" in issues[0].message


def test_missing_optional_file_gives_empty_frames(cohort):
    cohort_dir, parts = cohort
    for reader, columns in [
        (read_clinical, CLINICAL_COLUMNS),
        (read_serum, SERUM_COLUMNS),
        (read_peripheral_mri, PERIPHERAL_MRI_COLUMNS),
    ]:
        frame, issues = reader(cohort_dir, parts)
        assert frame.empty and issues == []
        assert list(frame.columns) == list(columns)
        assert list(frame.index.names) == ["participant_id", "session"]
    frame, _ = read_clinical(cohort_dir, parts)
    assert frame["onset_region"].dtype == "string"
    assert frame["alsfrs_r"].dtype == "float64"


def test_unknown_participant_row(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "serum.tsv",
        ["participant_id", "nfl_pg_ml"],
        [["sub-01", "40"], ["sub-77", "12"]],
    )
    frame, issues = read_serum(cohort_dir, parts)
    assert list(frame.index) == [("sub-01", "")]
    assert issues[0].participant_id == "sub-77"
    assert "not listed in participants.tsv" in issues[0].message
    with pytest.raises(CohortFormatError, match=r"serum\.tsv, row 3 \(sub-77\)"):
        read_serum(cohort_dir, parts, strict=True)


def test_duplicate_row_keeps_first(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "serum.tsv",
        ["participant_id", "nfl_pg_ml"],
        [["sub-01", "40"], ["sub-01", "12"]],
    )
    frame, issues = read_serum(cohort_dir, parts)
    assert frame["nfl_pg_ml"].tolist() == [40.0]
    assert "row 2 already holds this subject visit" in issues[0].message


def test_unknown_column_is_an_issue_even_when_strict(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "serum.tsv",
        ["participant_id", "nfl_pg_mL", "nfl"],
        [["sub-01", "40", "1"]],
    )
    frame, issues = read_serum(cohort_dir, parts, strict=True)
    assert frame.loc[("sub-01", ""), "nfl_pg_ml"] == 40.0  # header is case-insensitive
    assert [i.column for i in issues] == ["nfl"]
    assert "'nfl' is not part of the format" in issues[0].message


def test_missing_participant_id_column(cohort):
    cohort_dir, parts = cohort
    write_tsv(cohort_dir / "serum.tsv", ["subject", "nfl_pg_ml"], [["sub-01", "40"]])
    with pytest.raises(CohortFormatError, match=r"required column 'participant_id'"):
        read_serum(cohort_dir, parts)


def test_read_serum_values_and_serology_spellings(cohort):
    cohort_dir, parts = cohort
    header = [
        "participant_id",
        "nfl_pg_ml",
        "chi3l1_ng_ml",
        "anti_gm1_igm",
        "aqp4_igg",
        "oligoclonal_bands",
    ]
    write_tsv(
        cohort_dir / "serum.tsv",
        header,
        [
            ["sub-01", "85.2", "60", "Positive", "neg", "-"],
            ["sub-02", "12", "", "POS", "negative", "+"],
            ["sub-03", "0", "-5", "equivocal", "", ""],
        ],
    )
    frame, issues = read_serum(cohort_dir, parts)
    assert list(frame.columns) == list(SERUM_COLUMNS)
    assert (frame.dtypes == "float64").all()
    assert frame["anti_gm1_igm"].tolist()[:2] == [1.0, 1.0]
    assert frame["aqp4_igg"].tolist()[:2] == [0.0, 0.0]
    assert frame["oligoclonal_bands"].tolist()[:2] == [0.0, 1.0]
    assert frame.loc[("sub-01", ""), "nfl_pg_ml"] == 85.2
    assert frame.loc[["sub-03"]].isna().all(axis=None)
    assert [(i.column, i.value) for i in issues] == [
        ("nfl_pg_ml", "0"),
        ("chi3l1_ng_ml", "-5"),
        ("anti_gm1_igm", "equivocal"),
    ]
    assert "must be a number > 0" in issues[0].message


def test_read_peripheral_mri_aggregates_sides(cohort):
    cohort_dir, parts = cohort
    header = [
        "participant_id",
        "side",
        "plexus_t2_hyperintensity",
        "nerve_thickening",
        "muscle_oedema",
        "muscle_atrophy",
    ]
    write_tsv(
        cohort_dir / "peripheral_mri.tsv",
        header,
        [
            ["sub-01", "left", "1", "1", "0", ""],
            ["sub-01", "Right", "0", "1", "0", ""],
            ["sub-02", "L", "0", "0", "0", "0"],
            ["sub-03", "left", "", "", "", ""],
        ],
    )
    frame, issues = read_peripheral_mri(cohort_dir, parts)
    assert issues == []
    assert list(frame.columns) == list(PERIPHERAL_MRI_COLUMNS)
    one = frame.loc[("sub-01", "")]
    assert one["plexus_t2_hyperintensity_n_sides"] == 1.0
    assert one["plexus_t2_hyperintensity_asymmetric"] == 1.0
    assert one["nerve_thickening_n_sides"] == 2.0
    assert one["nerve_thickening_asymmetric"] == 0.0
    assert one["muscle_oedema_n_sides"] == 0.0
    assert math.isnan(one["muscle_atrophy_n_sides"])
    assert math.isnan(one["muscle_atrophy_asymmetric"])
    assert one["peripheral_mri_any"] == 1.0
    two = frame.loc[("sub-02", "")]
    assert two["peripheral_mri_any"] == 0.0
    assert math.isnan(two["nerve_thickening_asymmetric"])  # only one side rated
    assert math.isnan(frame.loc[("sub-03", ""), "peripheral_mri_any"])


def test_peripheral_mri_bad_side_and_rating(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "peripheral_mri.tsv",
        ["participant_id", "side", "nerve_thickening"],
        [["sub-01", "both", "1"], ["sub-01", "left", "2"], ["sub-01", "left", "1"]],
    )
    frame, issues = read_peripheral_mri(cohort_dir, parts)
    assert [(i.column, i.value) for i in issues] == [
        ("side", "both"),
        ("participant_id", "sub-01"),
        ("nerve_thickening", "2"),
    ]
    assert "already holds this subject visit and side left" in issues[1].message
    assert math.isnan(frame.loc[("sub-01", ""), "nerve_thickening_n_sides"])
    with pytest.raises(
        CohortFormatError,
        match=r"peripheral_mri\.tsv, row 2 \(sub-01\): side = 'both'; expected left",
    ):
        read_peripheral_mri(cohort_dir, parts, strict=True)


@pytest.mark.parametrize(
    ("rule", "value", "ok"),
    [
        (Rule("x", 0, 48, integer=True), 48.0, True),
        (Rule("x", 0, 48, integer=True), 48.5, False),
        (Rule("x", 0, low_open=True), 0.0, False),
        (Rule("x", 0), 0.0, True),
        (Rule("x", 0, 10, step=0.5), 9.5, True),
        (Rule("x", 0, 10, step=0.5), 9.4, False),
        (Rule("x", 0), math.inf, False),
    ],
)
def test_rule_accepts(rule, value, ok):
    assert rule.accepts(value) is ok


# --- serology titres ---------------------------------------------------------------


def _serum(cohort_dir: Path, header: list[str], rows: list[list[str]], **kw):
    write_tsv(cohort_dir / "serum.tsv", ["participant_id", *header], rows)
    return read_serum(cohort_dir, read_participants(cohort_dir), **kw)


def test_titre_cutoffs_are_the_documented_ones():
    assert TITRE_CUTOFFS == {"anti_gm1_igm": 800.0, "aqp4_igg": 10.0}
    doc = (ROOT / "docs" / "cohort-format.md").read_text()
    assert "1:800" in doc and "1:10" in doc


@pytest.mark.parametrize(
    ("cell", "result", "titre"),
    [
        ("1:800", 1.0, 800.0),  # at the cut-off
        ("1:400", 0.0, 400.0),
        ("1/1600", 1.0, 1600.0),
        ("3200", 1.0, 3200.0),
        ("200", 0.0, 200.0),
        ("positive (1:3200)", 1.0, 3200.0),
        ("Positive(1:3200)", 1.0, 3200.0),
        ("positive (1:400)", 1.0, 400.0),  # the lab's call wins over the cut-off
        ("negative (1:1600)", 0.0, 1600.0),
        ("negative (<1:100)", 0.0, math.nan),
        ("<1:400", 0.0, math.nan),  # below a bound under the cut-off
        (">1:3200", 1.0, math.nan),
        ("1:1", 0.0, 1.0),
        ("POS", 1.0, math.nan),
        ("-", 0.0, math.nan),
    ],
)
def test_anti_gm1_cells(cohort, cell, result, titre):
    cohort_dir, _ = cohort
    frame, issues = _serum(cohort_dir, ["anti_gm1_igm"], [["sub-01", cell]])
    assert issues == []
    row = frame.loc[("sub-01", "")]
    assert row["anti_gm1_igm"] == result
    assert row["anti_gm1_igm_titre"] == pytest.approx(titre, nan_ok=True)


def test_aqp4_uses_its_own_cutoff_and_titre_column(cohort):
    cohort_dir, _ = cohort
    frame, issues = _serum(
        cohort_dir,
        ["aqp4_igg", "aqp4_igg_titre", "anti_gm1_igm_titre"],
        [
            ["sub-01", "1:10", "", "1:800"],
            ["sub-02", "", "1:100", "400"],
            ["sub-03", "negative (<1:10)", "", ""],
        ],
    )
    assert issues == []
    assert frame["aqp4_igg"].tolist() == [1.0, 1.0, 0.0]
    assert frame["aqp4_igg_titre"].tolist()[:2] == [10.0, 100.0]
    assert math.isnan(frame.loc[("sub-03", ""), "aqp4_igg_titre"])
    # A titre column alone also decides positivity (against the cut-off).
    assert frame["anti_gm1_igm"].tolist()[:2] == [1.0, 0.0]
    assert frame["anti_gm1_igm_titre"].tolist()[:2] == [800.0, 400.0]
    assert math.isnan(frame.loc[("sub-03", ""), "anti_gm1_igm"])


def test_titre_column_agrees_or_conflicts_with_cell(cohort):
    cohort_dir, _ = cohort
    frame, issues = _serum(
        cohort_dir,
        ["anti_gm1_igm", "anti_gm1_igm_titre"],
        [["sub-01", "positive", "1:3200"], ["sub-02", "1:800", "800"],
         ["sub-03", "positive (1:3200)", "1:400"]],
    )  # fmt: skip
    assert frame["anti_gm1_igm"].tolist() == [1.0, 1.0, 1.0]
    assert frame["anti_gm1_igm_titre"].tolist()[:2] == [3200.0, 800.0]
    assert math.isnan(frame.loc[("sub-03", ""), "anti_gm1_igm_titre"])
    assert [(i.participant_id, i.column, i.value) for i in issues] == [
        ("sub-03", "anti_gm1_igm_titre", "1:400")
    ]
    with pytest.raises(
        CohortFormatError,
        match=r"serum\.tsv, row 2 \(sub-03\): anti_gm1_igm_titre = '1:400'; disagrees "
        r"with the titre in anti_gm1_igm = 'positive \(1:3200\)'\. Give the titre",
    ):
        _serum(
            cohort_dir,
            ["anti_gm1_igm", "anti_gm1_igm_titre"],
            [["sub-03", "positive (1:3200)", "1:400"]],
            strict=True,
        )


def test_borderline_is_missing_with_an_issue(cohort):
    cohort_dir, _ = cohort
    frame, issues = _serum(
        cohort_dir,
        ["anti_gm1_igm", "aqp4_igg", "oligoclonal_bands"],
        [["sub-01", "borderline", "Borderline (1:10)", "equivocal"]],
    )
    row = frame.loc[("sub-01", "")]
    assert row[["anti_gm1_igm", "aqp4_igg", "oligoclonal_bands"]].isna().all()
    assert row["aqp4_igg_titre"] == 10.0  # the titre is still reported
    assert [(i.column, i.value) for i in issues] == [
        ("anti_gm1_igm", "borderline"),
        ("aqp4_igg", "Borderline (1:10)"),
        ("oligoclonal_bands", "equivocal"),
    ]
    assert "neither positive nor negative, so it is left missing" in issues[0].message
    with pytest.raises(
        CohortFormatError,
        match=r"serum\.tsv, row 2 \(sub-01\): anti_gm1_igm = 'borderline'; a "
        r"borderline/equivocal result .* Enter the lab's titre",
    ):
        _serum(cohort_dir, ["anti_gm1_igm"], [["sub-01", "borderline"]], strict=True)


@pytest.mark.parametrize(
    ("header", "cell", "pattern"),
    [
        (
            "anti_gm1_igm",
            "weak",
            r"anti_gm1_igm = 'weak'; expected positive or negative \(or pos/neg, "
            r"\+/-\), a titre \(1:800 or 800\) or both, e\.g\. 'positive \(1:3200\)'",
        ),
        (
            "anti_gm1_igm",
            "1",
            r"anti_gm1_igm = 1; a bare 1 could be a yes/no code or a titre\. Write "
            r"positive or negative, or the titre as 1:N",
        ),
        ("aqp4_igg", "0", r"aqp4_igg = 0; a bare 0 could be a yes/no code"),
        ("aqp4_igg", "1:0", r"aqp4_igg = '1:0'; expected positive or negative"),
        (
            "anti_gm1_igm",
            "<1:1600",
            r"anti_gm1_igm = '<1:1600'; the bound <1:1600 does not say whether the "
            r"titre reaches the positivity cut-off 1:800 .*Enter the lab's positive",
        ),
        ("aqp4_igg", ">1:5", r"aqp4_igg = '>1:5'; the bound >1:5 .* cut-off 1:10 "),
        (
            "anti_gm1_igm_titre",
            "positive",
            r"anti_gm1_igm_titre = 'positive'; expected a titre such as 1:800 or 800",
        ),
        (
            "oligoclonal_bands",
            "1:800",
            r"oligoclonal_bands = '1:800'; expected positive or negative \(or pos/neg, "
            r"\+/-\)\. Fix the value",
        ),
    ],
)
def test_bad_serology_cells(cohort, header, cell, pattern):
    cohort_dir, _ = cohort
    frame, issues = _serum(cohort_dir, [header], [["sub-01", cell]])
    assert [(i.column, i.value) for i in issues] == [(header, cell)]
    assert frame.loc[("sub-01", "")].drop(["nfl_pg_ml", "chi3l1_ng_ml"]).isna().all()
    with pytest.raises(
        CohortFormatError, match=rf"serum\.tsv, row 2 \(sub-01\): {pattern}"
    ):
        _serum(cohort_dir, [header], [["sub-01", cell]], strict=True)


def test_bad_cell_falls_back_to_the_titre_column(cohort):
    cohort_dir, _ = cohort
    frame, issues = _serum(
        cohort_dir,
        ["anti_gm1_igm", "anti_gm1_igm_titre"],
        [["sub-01", "weak", "1:1600"]],
    )
    assert [i.column for i in issues] == ["anti_gm1_igm"]
    assert frame.loc[("sub-01", ""), "anti_gm1_igm"] == 1.0
    assert frame.loc[("sub-01", ""), "anti_gm1_igm_titre"] == 1600.0


def test_sessions_give_the_months_since_baseline_from_months_or_dates(tmp_path):
    from features.cohort.tables import read_sessions
    from features.extract import extract_features, feature_columns

    write_tsv(
        tmp_path / "participants.tsv",
        ["participant_id", "session", "diagnosis", "age", "sex", "site"],
        [
            ["sub-01", "ses-01", "ALS", "60", "M", "A"],
            ["sub-01", "ses-02", "ALS", "60.5", "M", "A"],
            ["sub-02", "ses-01", "HC", "50", "F", "A"],
            ["sub-02", "ses-02", "HC", "51", "F", "A"],
            ["sub-02", "ses-03", "HC", "52", "F", "A"],
        ],
    )
    write_tsv(
        tmp_path / "sessions.tsv",
        ["participant_id", "session", "months_since_baseline", "visit_date"],
        [
            ["sub-01", "ses-01", "0", ""],
            ["sub-01", "ses-02", "6.5", ""],
            ["sub-02", "ses-01", "", "2024-01-15"],
            ["sub-02", "ses-02", "", "2024-07-15"],
            ["sub-02", "ses-03", "", "15/01/2025"],  # a lab's date format
        ],
    )
    months, issues = read_sessions(tmp_path, read_participants(tmp_path))
    assert months["sub-01", "ses-02"] == 6.5
    assert months["sub-02", "ses-01"] == 0.0
    assert months["sub-02", "ses-02"] == pytest.approx(182 / (365.25 / 12), abs=0.01)
    assert math.isnan(months["sub-02", "ses-03"])
    (issue,) = issues
    assert "sessions.tsv, row 6 (sub-02, ses-03): visit_date = '15/01/2025'" in (
        issue.message
    )
    assert "YYYY-MM-DD" in issue.message
    table = extract_features(tmp_path, n_jobs=1).table
    assert table["months_since_baseline"].tolist()[:2] == [0.0, 6.5]
    assert "months_since_baseline" not in feature_columns(table)
