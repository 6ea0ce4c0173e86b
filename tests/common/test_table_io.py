"""The one table reader and the atomic writer (common/table_io.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from common.table_io import iter_table, output_path, read_table, write_table
from tests import DATA

TABLES = DATA / "tables"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "participant_id": ["001", "002", "003"],
            "Site": ["01", "02", "01"],
            "nfl_pg_ml": [12.5, None, 40.0],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".xlsx"])
def test_identifiers_stay_text_in_every_format(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    frame = _frame()
    if suffix == ".xlsx":
        frame.to_excel(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="," if suffix == ".csv" else "\t", index=False)
    table = read_table(path)
    assert table["participant_id"].tolist() == ["001", "002", "003"]
    assert table["Site"].tolist() == ["01", "02", "01"]  # case-insensitive name
    assert table["nfl_pg_ml"].dtype.kind == "f"


def test_chunks_follow_the_same_rules(tmp_path):
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)
    _, chunks = iter_table(path, 2)
    parts = list(chunks)
    assert [first for first, _ in parts] == [0, 2]
    assert parts[1][1]["Site"].tolist() == ["01"]
    assert pd.api.types.is_string_dtype(parts[1][1]["participant_id"])


def test_named_text_columns_and_spreadsheet_numbers(tmp_path):
    path = tmp_path / "t.xlsx"
    pd.DataFrame({"Subject_ID": [7, 8], "Scanner": [1.0, 2.0]}).to_excel(
        path, index=False
    )
    table = read_table(path, text_columns=["subject_id", "SCANNER"])
    assert table["Subject_ID"].tolist() == ["7", "8"]
    assert table["Scanner"].tolist() == ["1", "2"]


def test_a_lab_export_reads_with_its_own_names():
    table = read_table(TABLES / "clinic_serum.csv", text_columns=["ID"])
    assert table["ID"].iloc[0] == "001" and table["Site"].iloc[0] in ("01", "02")
    assert table["NfL_pg_ml"].dtype.kind == "f"


def test_header_names_differing_only_in_case_are_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("age,Age\n1,2\n")
    with pytest.raises(ValueError, match=r"'age' and 'Age' differ only in case"):
        read_table(path)


def test_missing_and_unknown_inputs_name_the_fix(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"nope.csv not found.*features extract"
    ):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(ValueError, match=r"unsupported table type '.json'"):
        read_table(tmp_path / "t.json")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.csv: cannot read a header row"):
        read_table(tmp_path / "empty.csv")


def test_write_creates_the_folder_and_never_overwrites_unasked(tmp_path):
    out = tmp_path / "some" / "missing" / "dir" / "f.parquet"
    write_table(_frame(), out)
    assert read_table(out)["Site"].tolist() == ["01", "02", "01"]
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        write_table(_frame(), out)
    write_table(_frame().head(1), out, overwrite=True)
    assert len(read_table(out)) == 1
    assert [p.name for p in out.parent.iterdir()] == ["f.parquet"]  # no temp left


def test_output_path_refuses_bad_targets(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported output type '.xlsx'"):
        output_path(tmp_path / "f.xlsx", overwrite=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"cannot create the folder .*file/sub"):
        output_path(blocker / "sub" / "f.csv", overwrite=False)
