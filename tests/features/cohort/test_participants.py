"""Tests for features.cohort.participants: participants.tsv, raw TSV reading, keys and
paths."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.cohort.participants import (
    DIAGNOSES,
    CohortPaths,
    IssueLog,
    attach_keys,
    read_participants,
    read_tsv,
    subject_key,
)
from features.errors import CohortFormatError

HEADER = ["participant_id", "diagnosis", "age", "sex", "site"]


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """Write a small tab-separated table."""
    lines = ["\t".join(header), *("\t".join(map(str, row)) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def participants(tmp_path: Path, rows: list[list[str]], header=HEADER) -> Path:
    write_tsv(tmp_path / "participants.tsv", header, rows)
    return tmp_path


def test_diagnoses_are_the_five_classes():
    assert DIAGNOSES == ("ALS", "MMN", "NMO", "MS", "HC")


def test_read_participants_normalises_and_types(tmp_path):
    cohort = participants(
        tmp_path,
        [
            ["sub-01", "als", "61", "m", "siteA"],
            ["sub-02", "hc", "45.5", "F", "siteB"],
            ["sub-03", "", "", "", ""],
            ["sub-04", "n/a", "n/a", "n/a", "siteA"],
        ],
    )
    frame = read_participants(cohort)
    assert list(frame.index.names) == ["participant_id", "session"]
    assert list(frame.index) == [(f"sub-0{i}", "") for i in range(1, 5)]
    assert list(frame.columns) == ["diagnosis", "age", "sex", "site"]
    assert frame["diagnosis"].dtype == "string"
    assert frame["age"].dtype == "float64"
    assert frame["diagnosis"].tolist()[:2] == ["ALS", "HC"]
    assert frame["diagnosis"].isna().tolist() == [False, False, True, True]
    assert frame.loc[("sub-02", ""), "age"] == 45.5
    assert frame.loc[("sub-01", ""), "sex"] == "M"
    assert pd.isna(frame.loc[("sub-03", ""), "site"])


def test_read_participants_with_sessions(tmp_path):
    cohort = participants(
        tmp_path,
        [
            ["sub-01", "ALS", "60", "M", "A", "ses-1"],
            ["sub-01", "ALS", "61", "M", "A", "ses-2"],
        ],
        header=[*HEADER, "session"],
    )
    frame = read_participants(cohort)
    assert list(frame.index) == [("sub-01", "ses-1"), ("sub-01", "ses-2")]


def test_missing_participants_file_names_path_and_doc(tmp_path):
    with pytest.raises(CohortFormatError, match=r"participants\.tsv not found") as err:
        read_participants(tmp_path)
    assert str(tmp_path / "participants.tsv") in str(err.value)
    assert "docs/cohort-format.md" in str(err.value)


@pytest.mark.parametrize("label", ["ALS?", "CIDP"])
def test_unknown_diagnosis_label(tmp_path, label):
    cohort = participants(
        tmp_path, [["sub-01", "ALS", "60", "M", "A"], ["sub-02", label, "50", "F", "A"]]
    )
    pattern = (
        rf"participants\.tsv, row 3 \(sub-02\): diagnosis = '{label}'.*"
        r"ALS, MMN, NMO, MS, HC.*empty"
    )
    with pytest.raises(CohortFormatError, match=pattern.replace("?", r"\?")):
        read_participants(cohort)


def test_missing_required_column_lists_columns_found(tmp_path):
    cohort = participants(tmp_path, [["sub-01", "ALS", "60", "M"]], header=HEADER[:4])
    pattern = (
        r"participants\.tsv: required column 'site' is missing; columns found: "
        r"participant_id, diagnosis, age, sex"
    )
    with pytest.raises(CohortFormatError, match=pattern):
        read_participants(cohort)


@pytest.mark.parametrize("bad", ["sub_01", "01", "sub-0 1", "sub-"])
def test_bad_participant_id(tmp_path, bad):
    cohort = participants(tmp_path, [[bad, "ALS", "60", "M", "A"]])
    with pytest.raises(
        CohortFormatError,
        match=rf"participants\.tsv, row 2: participant_id = '?{bad}'?; identifiers",
    ):
        read_participants(cohort)


def test_bad_session_label(tmp_path):
    cohort = participants(
        tmp_path, [["sub-01", "ALS", "60", "M", "A", "visit1"]], [*HEADER, "session"]
    )
    with pytest.raises(CohortFormatError, match=r"session = 'visit1'; sessions must"):
        read_participants(cohort)


def test_duplicate_participant(tmp_path):
    cohort = participants(
        tmp_path, [["sub-01", "ALS", "60", "M", "A"], ["sub-01", "ALS", "60", "M", "A"]]
    )
    with pytest.raises(
        CohortFormatError,
        match=r"row 3 \(sub-01\): participant_id = 'sub-01'.*already listed in row 2",
    ):
        read_participants(cohort)


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        (["sub-01", "ALS", "60", "X", "A"], r"sex = 'X'; sex must be M or F"),
        (["sub-01", "ALS", "130", "M", "A"], r"age = 130; age must be"),
        (["sub-01", "ALS", "old", "M", "A"], r"age = 'old'; age must be"),
    ],
)
def test_bad_sex_or_age(tmp_path, row, pattern):
    cohort = participants(tmp_path, [row])
    with pytest.raises(CohortFormatError, match=r"participants\.tsv, row 2 \(sub-01\)"):
        read_participants(cohort)
    with pytest.raises(CohortFormatError, match=pattern):
        read_participants(cohort)


def test_empty_participants_table(tmp_path):
    cohort = participants(tmp_path, [])
    with pytest.raises(CohortFormatError, match="no subjects"):
        read_participants(cohort)


def test_read_tsv_reads_text_with_line_numbers(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("\ufeffA\tB \t\n x \t\n\n y\n", encoding="utf-8")
    table = read_tsv(path)
    assert list(table.columns) == ["a", "b"]
    assert table.index.tolist() == [2, 4]
    assert table.loc[2].tolist() == ["x", ""]
    assert table.loc[4].tolist() == ["y", ""]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("a\tb\n1\t2\t3\n", r"t\.tsv, row 2: has 3 cells but the header has 2"),
        ("a,b\n1,2\n", r"looks comma-separated"),
        ("", r"has no header row"),
        ("a\tA\n1\t2\n", r"column\(s\) 'a' appear more than once"),
    ],
)
def test_read_tsv_errors(tmp_path, text, pattern):
    path = tmp_path / "t.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CohortFormatError, match=pattern):
        read_tsv(path)


def test_read_tsv_not_utf8(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_bytes(b"a\tb\n\xff\xfe\t1\n")
    with pytest.raises(CohortFormatError, match="is not UTF-8"):
        read_tsv(path)


def test_subject_key():
    assert subject_key("sub-01") == "sub-01"
    assert subject_key("sub-01", "") == "sub-01"
    assert subject_key("sub-01", "ses-2") == "sub-01_ses-2"


def test_cohort_paths_follow_the_format(tmp_path):
    paths = CohortPaths(tmp_path, "sub-01_ses-2")
    der = tmp_path / "derivatives"
    space = "space-MNI152NLin2009cAsym_res-2"
    key = "sub-01_ses-2"
    assert paths.freesurfer_stats_dir == der / "freesurfer" / key / "stats"
    for name in ("FA", "MD", "AD", "RD"):
        expected = der / "dti" / key / f"{key}_{space}_{name}.nii.gz"
        assert paths.dti_map(name) == expected
    assert paths.qsm_map == der / "qsm" / key / f"{key}_{space}_Chimap.nii.gz"
    assert paths.lcmodel_dir == der / "lcmodel" / key


def test_cohort_paths_unknown_dti_map(tmp_path):
    with pytest.raises(ValueError, match=r"dti map 'fa' is not one of FA, MD, AD, RD"):
        CohortPaths(tmp_path, "sub-01").dti_map("fa")


def test_issue_log_lenient_records_and_strict_raises():
    log = IssueLog("serum.tsv")
    log.flag(14, "sub-0031", "nfl_pg_ml", "-3.0", "concentrations must be > 0")
    (issue,) = log.issues
    assert issue.message == (
        "serum.tsv, row 14 (sub-0031): nfl_pg_ml = -3.0; concentrations must be > 0. "
        "Fix the value or leave the cell empty to mark it missing."
    )
    assert (issue.file, issue.participant_id, issue.column, issue.value) == (
        "serum.tsv",
        "sub-0031",
        "nfl_pg_ml",
        "-3.0",
    )
    with pytest.raises(CohortFormatError, match=r"serum\.tsv, row 14 \(sub-0031\)"):
        IssueLog("serum.tsv", strict=True).flag(14, "sub-0031", "x", "1", "bad")


def _cohort_with_sessions(tmp_path: Path) -> pd.DataFrame:
    rows = [
        ["sub-01", "ALS", "60", "M", "A", "ses-1"],
        ["sub-01", "ALS", "61", "M", "A", "ses-2"],
        ["sub-02", "HC", "50", "F", "A", "ses-1"],
    ]
    return read_participants(participants(tmp_path, rows, [*HEADER, "session"]))


def test_attach_keys_matches_visits_and_flags_the_rest(tmp_path):
    parts = _cohort_with_sessions(tmp_path)
    path = write_tsv(
        tmp_path / "serum.tsv",
        ["participant_id", "nfl_pg_ml"],
        [["sub-02", "10"], ["sub-01", "20"], ["sub-99", "30"], ["bad", "1"]],
    )
    log = IssueLog("serum.tsv")
    keyed = attach_keys(read_tsv(path), parts, log)
    assert list(keyed.index) == [("sub-02", "ses-1")]
    assert keyed["row"].tolist() == [2]
    messages = [issue.message for issue in log.issues]
    assert "lists sessions ses-1, ses-2" in messages[0]
    assert "add a session column to serum.tsv".lower() in messages[0].lower()
    assert "participant_id = 'sub-99'; this subject visit is not listed" in messages[1]
    assert "participant_id = 'bad'" in messages[2]


def test_attach_keys_with_session_column_strict(tmp_path):
    parts = _cohort_with_sessions(tmp_path)
    path = write_tsv(
        tmp_path / "serum.tsv",
        ["participant_id", "session", "nfl_pg_ml"],
        [["sub-01", "ses-2", "10"], ["sub-01", "ses-3", "20"]],
    )
    with pytest.raises(
        CohortFormatError,
        match=r"serum\.tsv, row 3 \(sub-01, ses-3\): session = 'ses-3'; this subject",
    ):
        attach_keys(read_tsv(path), parts, IssueLog("serum.tsv", strict=True))
    keyed = attach_keys(read_tsv(path), parts, IssueLog("serum.tsv"))
    assert list(keyed.index) == [("sub-01", "ses-2")]
