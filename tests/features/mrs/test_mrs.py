"""Tests for features.mrs on the real LCModel 6.3-1B output svs_97 and mrs.tsv."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.cohort.participants import read_participants
from features.errors import CohortFormatError
from features.mrs import (
    MRS_COLUMNS,
    apply_crlb_threshold,
    find_lcmodel_output,
    mrs_features,
    read_lcmodel_csv,
    read_lcmodel_table,
    read_mrs_table,
)
from tests import DATA

REAL = DATA / "real" / "lcmodel"
TABLE = REAL / "svs_97.TABLE"
CSV = REAL / "svs_97.CSV"
COORD = REAL / "svs_97.COORD"
MRS_COHORT = DATA / "mrs"


def _edited(tmp_path: Path, source: Path, old: bytes, new: bytes) -> Path:
    data = source.read_bytes()
    assert old in data
    path = tmp_path / source.name
    path.write_bytes(data.replace(old, new))
    return path


def test_real_table_values() -> None:
    res = read_lcmodel_table(TABLE)
    conc = res.concentrations
    assert list(conc.columns) == ["conc", "sd_pct", "ratio"]
    assert conc.loc["NAA"].tolist() == pytest.approx([7.97e-02, 11, 0.318])
    assert conc.loc["Glu"].tolist() == pytest.approx([3.27e-02, 55, 0.131])
    assert conc.loc["GABA"].tolist() == pytest.approx([4.05e-02, 32, 0.162])
    assert res.ratio_reference == "Cr+PCr"
    assert res.fwhm_ppm == pytest.approx(0.043)
    assert res.snr == 13
    assert res.version == "6.3-1B"
    assert res.path == TABLE


def test_real_table_awkward_fields() -> None:
    conc = read_lcmodel_table(TABLE).concentrations
    assert len(conc) == 37  # "$$CONC 38 lines ... = NCONC+1"
    assert conc.loc["Cr", "sd_pct"] == 999  # failed fit, "999%"
    assert conc.loc["GPC", "sd_pct"] == 2  # " 2%"
    assert conc.loc["Ala", "ratio"] == pytest.approx(5.5e-02)  # ratio in E form
    assert conc.loc["-CrCH2", "conc"] == pytest.approx(6.78e-02)
    assert conc.loc["MM14+Lip13a+Lip13b+MM12", "conc"] == pytest.approx(0.357)
    assert conc.loc["Cr+PCr", "ratio"] == 1.0


def test_header_bytes_that_are_not_utf8_do_not_fail(tmp_path: Path) -> None:
    # The real header has "Women\xe2\x80\x99s" (UTF-8); cp1252 exports write 0x92.
    path = _edited(tmp_path, TABLE, "Women\u2019s".encode(), b"Women\x92s")
    res = read_lcmodel_table(path)
    assert res.version == "6.3-1B"
    assert res.concentrations.loc["NAA", "conc"] == pytest.approx(0.0797)


def test_table_with_other_ratio_reference(tmp_path: Path) -> None:
    path = _edited(tmp_path, TABLE, b"%SD /Cr+PCr  Met", b"%SD /Cr  Met")
    assert read_lcmodel_table(path).ratio_reference == "Cr"


def test_real_csv_matches_table() -> None:
    csv, table = read_lcmodel_csv(CSV), read_lcmodel_table(TABLE)
    assert "MM14+Lip13a+L" in csv.concentrations.index  # truncated as written
    assert (csv.fwhm_ppm, csv.snr, csv.version) == (None, None, None)
    assert csv.ratio_reference == "Cr+PCr"
    np.testing.assert_allclose(
        csv.concentrations.to_numpy(), table.concentrations.to_numpy()
    )
    assert csv.concentrations.loc["NAA"].tolist() == pytest.approx([0.0797, 11, 0.318])


def test_crlb_threshold() -> None:
    conc, rejected = apply_crlb_threshold(read_lcmodel_table(TABLE), max_sd_pct=20)
    assert rejected["Glu"] and rejected["GABA"] and rejected["Cr"]
    assert not rejected["NAA"] and not rejected["Cr+PCr"]
    assert np.isnan(conc["Glu"])
    assert conc["NAA"] == pytest.approx(0.0797)
    assert rejected.dtype == bool and rejected.name == "rejected"
    _, loose = apply_crlb_threshold(read_lcmodel_table(TABLE), max_sd_pct=60.0)
    assert not loose["Glu"] and not loose["Lip09"]  # 55 % and 60 % kept
    assert loose["2HG"]  # 88 % rejected


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), "20%"])
def test_crlb_threshold_rejects_bad_limit(bad) -> None:
    with pytest.raises(ValueError, match=r"max_sd_pct = .*positive number"):
        apply_crlb_threshold(read_lcmodel_table(TABLE), max_sd_pct=bad)


@pytest.mark.parametrize("reader", [read_lcmodel_table, read_lcmodel_csv])
def test_missing_file(tmp_path: Path, reader) -> None:
    with pytest.raises(FileNotFoundError, match=r"not found: .*nothing\.out"):
        reader(tmp_path / "nothing.out")


def test_table_without_conc_section(tmp_path: Path) -> None:
    path = _edited(tmp_path, TABLE, b"$$CONC 38 lines", b"$$XXXX 38 lines")
    with pytest.raises(CohortFormatError, match=r"no '\$\$CONC' section.*LCModel \.t"):
        read_lcmodel_table(path)


def test_table_without_ratio_column(tmp_path: Path) -> None:
    path = _edited(tmp_path, TABLE, b"%SD /Cr+PCr  Met", b"%SD  Met")
    with pytest.raises(CohortFormatError, match=r"line 7: expected the column header"):
        read_lcmodel_table(path)


def test_unparseable_conc_row(tmp_path: Path) -> None:
    path = _edited(tmp_path, TABLE, b" 7.97E-02  11%", b" 7.97E-02  11 ")
    with pytest.raises(
        CohortFormatError, match=r"svs_97\.TABLE, line 20: cannot parse .*'7\.97E-02"
    ):
        read_lcmodel_table(path)


def test_truncated_conc_table(tmp_path: Path) -> None:
    path = _edited(tmp_path, TABLE, b"$$CONC 38 lines", b"$$CONC 40 lines")
    with pytest.raises(CohortFormatError, match=r"line 45: .*announces 39 .* only 37"):
        read_lcmodel_table(path)


def test_csv_with_wrong_header(tmp_path: Path) -> None:
    path = _edited(tmp_path, CSV, b"Row, Col, ", b"")
    with pytest.raises(CohortFormatError, match=r"line 1: header starts '2HG, 2HG %SD"):
        read_lcmodel_csv(path)


def test_csv_with_mismatched_triple(tmp_path: Path) -> None:
    path = _edited(tmp_path, CSV, b"Ala %SD", b"Alx %SD")
    with pytest.raises(CohortFormatError, match=r"columns 'Ala', 'Alx %SD'"):
        read_lcmodel_csv(path)


def test_csv_with_colliding_truncated_names(tmp_path: Path) -> None:
    path = _edited(tmp_path, CSV, b"Asp, Asp %SD, Asp/", b"Ala, Ala %SD, Ala/")
    with pytest.raises(CohortFormatError, match=r"\['Ala'\] appear more than once"):
        read_lcmodel_csv(path)


def test_csv_with_several_voxels(tmp_path: Path) -> None:
    lines = CSV.read_bytes().splitlines()
    path = tmp_path / "csi.CSV"
    path.write_bytes(b"\n".join([*lines, lines[1].replace(b"  1,   1", b"  1,   2")]))
    with pytest.raises(CohortFormatError, match=r"holds 2 voxel rows.*one file per"):
        read_lcmodel_csv(path)


def test_csv_with_missing_values(tmp_path: Path) -> None:
    path = _edited(tmp_path, CSV, b",    0.187,   26,    0.745", b",    0.187,   26")
    with pytest.raises(CohortFormatError, match=r"line 2: 112 values for 113 header"):
        read_lcmodel_csv(path)


def test_csv_with_non_number(tmp_path: Path) -> None:
    path = _edited(tmp_path, CSV, b"7.97E-02,   11,", b"7.97E-02,  n/a,")
    with pytest.raises(CohortFormatError, match=r"column 'NAA %SD' = 'n/a'"):
        read_lcmodel_csv(path)


# --- mrs_features ------------------------------------------------------------------


def test_mrs_features_on_real_table() -> None:
    feats = mrs_features(TABLE)
    assert list(feats) == list(MRS_COLUMNS)
    assert feats["mrs_naa"] == pytest.approx(0.0797)
    assert feats["mrs_cr"] == pytest.approx(0.251)
    assert feats["mrs_naa_rejected"] == 0.0 and feats["mrs_cr_rejected"] == 0.0
    assert np.isnan(feats["mrs_glu"]) and feats["mrs_glu_rejected"] == 1.0  # 55 %
    assert np.isnan(feats["mrs_gaba"]) and feats["mrs_gaba_rejected"] == 1.0  # 32 %
    assert np.isnan(feats["mrs_glu_naa"]) and np.isnan(feats["mrs_glu_gaba"])
    assert feats["mrs_naa_cr"] == pytest.approx(0.0797 / 0.251)
    assert feats["mrs_fwhm_ppm"] == pytest.approx(0.043)
    assert feats["mrs_snr"] == 13.0


def test_mrs_features_threshold_is_applied() -> None:
    feats = mrs_features(TABLE, max_crlb_pct=60)
    assert feats["mrs_glu"] == pytest.approx(0.0327)
    assert feats["mrs_glu_naa"] == pytest.approx(0.0327 / 0.0797)
    assert feats["mrs_glu_gaba"] == pytest.approx(0.0327 / 0.0405)


@pytest.mark.parametrize("name", ["svs_97.CSV", "svs_97.csv"])
def test_mrs_features_reads_the_csv_by_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    shutil.copy(CSV, path)
    from_csv, from_table = mrs_features(path), mrs_features(TABLE)
    assert list(from_csv) == list(MRS_COLUMNS)
    assert np.isnan(from_csv["mrs_fwhm_ppm"]) and np.isnan(from_csv["mrs_snr"])
    for name in MRS_COLUMNS[:-2]:
        assert from_csv[name] == pytest.approx(from_table[name], nan_ok=True)


def test_mrs_features_sums_cr_and_pcr_without_combination(tmp_path: Path) -> None:
    # Real svs_97: Cr 0.000 (999 %), PCr 0.251 (3 %); LCModel's own Cr+PCr is
    # 0.251 (3 %). Without the combination the sum must give the same.
    table = _edited(tmp_path, TABLE, b"1.000 Cr+PCr", b"1.000 tCr   ")
    feats = mrs_features(table)
    assert feats["mrs_cr"] == pytest.approx(0.251)
    assert feats["mrs_cr_rejected"] == 0.0
    assert feats["mrs_naa_cr"] == pytest.approx(0.0797 / 0.251)
    csv = _edited(
        tmp_path, CSV, b"Cr+PCr, Cr+PCr %SD, Cr+PCr/Cr+PCr", b"tCr, tCr %SD, tCr/Cr+PCr"
    )
    assert mrs_features(csv)["mrs_cr"] == pytest.approx(0.251)


@pytest.mark.parametrize(
    ("cr_row", "rejected"),
    [
        (b"    0.100  10%   0.398 Cr  ", 0.0),  # sum %SD = 3.6
        (b"    0.100  90%   0.398 Cr  ", 1.0),  # sum %SD = 25.7
    ],
)
def test_summed_creatine_propagates_sd(tmp_path: Path, cr_row, rejected) -> None:
    source = tmp_path / "source"
    source.mkdir()
    edited = _edited(source, TABLE, b"    0.000 999%   0.000 Cr  ", cr_row)
    table = _edited(tmp_path, edited, b"1.000 Cr+PCr", b"1.000 tCr   ")
    feats = mrs_features(table)
    assert feats["mrs_cr_rejected"] == rejected
    if not rejected:
        assert feats["mrs_cr"] == pytest.approx(0.351)


def test_a_metabolite_without_a_row_is_missing_not_rejected(tmp_path: Path) -> None:
    table = _edited(tmp_path, TABLE, b"1.000 Cr+PCr", b"1.000 tCr   ")
    table.write_bytes(table.read_bytes().replace(b"1.000 PCr ", b"1.000 XCr "))
    with pytest.warns(UserWarning, match=r"no Cr\+PCr row .* missing, not rejected"):
        feats = mrs_features(table)
    assert np.isnan(feats["mrs_cr"]) and np.isnan(feats["mrs_cr_rejected"])
    assert feats["mrs_glu_rejected"] == 1.0  # a real CRLB rejection stays one


def test_mrs_features_missing_file_gives_nothing(tmp_path: Path) -> None:
    assert mrs_features(tmp_path / "sub-01_voi-SMA_lcmodel.table") == {}


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "20%"])
def test_mrs_features_rejects_bad_limit(bad) -> None:
    with pytest.raises(ValueError, match=r"max_crlb_pct = .*positive number of perc"):
        mrs_features(TABLE, max_crlb_pct=bad)


# --- read_mrs_table ----------------------------------------------------------------


@pytest.fixture
def mrs_cohort(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A copy of the tests/data/mrs cohort and its participants table."""
    cohort = tmp_path / "cohort"
    shutil.copytree(MRS_COHORT, cohort)
    return cohort, read_participants(cohort)


def _rewrite(cohort: Path, old: str, new: str) -> None:
    path = cohort / "mrs.tsv"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_read_mrs_table_fixture(mrs_cohort) -> None:
    cohort, parts = mrs_cohort
    frame, issues = read_mrs_table(cohort, parts)
    assert issues == []
    assert list(frame.columns) == list(MRS_COLUMNS)
    assert (frame.dtypes == "float64").all()
    assert list(frame.index.names) == ["participant_id", "session"]
    assert list(frame.index) == [
        ("sub-01", "ses-01"),
        ("sub-01", "ses-02"),
        ("sub-02", "ses-01"),
        ("sub-03", "ses-01"),
    ]
    first = frame.loc[("sub-01", "ses-01")]
    assert first["mrs_naa"] == 9.84 and first["mrs_naa_rejected"] == 0.0
    assert np.isnan(first["mrs_gaba"]) and first["mrs_gaba_rejected"] == 1.0  # 24 %
    assert np.isnan(first["mrs_glu_gaba"])
    assert first["mrs_glu_naa"] == pytest.approx(7.91 / 9.84)
    assert first["mrs_naa_cr"] == pytest.approx(9.84 / 7.62)
    assert first["mrs_fwhm_ppm"] == 0.052 and first["mrs_snr"] == 22.0
    second = frame.loc[("sub-01", "ses-02")]
    assert second["mrs_glu_gaba"] == pytest.approx(8.33 / 1.35)  # 18 % kept


def test_read_mrs_table_matches_mrs_features_on_the_same_fit(mrs_cohort) -> None:
    cohort, parts = mrs_cohort
    frame, _ = read_mrs_table(cohort, parts)
    from_table = frame.loc[("sub-03", "ses-01")]
    for name, value in mrs_features(TABLE).items():
        assert from_table[name] == pytest.approx(value, nan_ok=True), name


def test_read_mrs_table_threshold(mrs_cohort) -> None:
    cohort, parts = mrs_cohort
    frame, _ = read_mrs_table(cohort, parts, max_crlb_pct=30)
    assert frame.loc[("sub-01", "ses-01"), "mrs_gaba"] == 1.21
    assert frame.loc[("sub-01", "ses-01"), "mrs_gaba_rejected"] == 0.0
    assert frame.loc[("sub-03", "ses-01"), "mrs_gaba_rejected"] == 1.0  # 32 %


def test_read_mrs_table_missing_file(tmp_path: Path, mrs_cohort) -> None:
    cohort, parts = mrs_cohort
    (cohort / "mrs.tsv").unlink()
    frame, issues = read_mrs_table(cohort, parts)
    assert frame.empty and issues == []
    assert list(frame.columns) == list(MRS_COLUMNS)
    assert list(frame.index.names) == ["participant_id", "session"]
    assert (frame.dtypes == "float64").all()


def test_read_mrs_table_partial_columns(tmp_path: Path) -> None:
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tdiagnosis\tage\tsex\tsite\nsub-01\tALS\t60\tM\tA\n"
    )
    (tmp_path / "mrs.tsv").write_text("participant_id\tnaa\tcr\nsub-01\t10.2\t8.0\n")
    frame, issues = read_mrs_table(tmp_path, read_participants(tmp_path))
    row = frame.loc[("sub-01", "")]
    assert issues == []
    assert row["mrs_naa"] == 10.2 and row["mrs_naa_rejected"] == 0.0  # no %SD: kept
    assert row["mrs_naa_cr"] == pytest.approx(10.2 / 8.0)
    assert np.isnan(row["mrs_glu"]) and row["mrs_glu_rejected"] == 1.0  # absent
    assert np.isnan(row["mrs_fwhm_ppm"]) and np.isnan(row["mrs_snr"])


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        (
            "9.84\t4",
            "-9.84\t4",
            r"mrs\.tsv, row 2 \(sub-01, ses-01\): naa = -9\.84; the NAA concentration "
            r"must be a number > 0\. Fix the value or leave the cell empty",
        ),
        (
            "7.91\t7",
            "7.91\t1200",
            r"row 2 \(sub-01, ses-01\): glu_sd_pct = 1200; %SD \(CRLB\) must be a "
            r"number from 0 to 999",
        ),
        (
            "0.052\t22",
            "52\t22",
            r"row 2 \(sub-01, ses-01\): fwhm_ppm = 52; FWHM \(ppm\) must be a number "
            r"from 0 to 1",
        ),
        (
            "0.052\t22",
            "0.052\t-3",
            r"row 2 \(sub-01, ses-01\): snr = -3; S/N must be a number >= 0",
        ),
        (
            "7.62\t3",
            "7,62\t3",
            r"row 2 \(sub-01, ses-01\): cr = '7,62'; not a number \(the Cr\+PCr conc",
        ),
    ],
)
def test_read_mrs_table_range_checks_strict(mrs_cohort, old, new, pattern) -> None:
    cohort, parts = mrs_cohort
    _rewrite(cohort, old, new)
    with pytest.raises(CohortFormatError, match=pattern):
        read_mrs_table(cohort, parts, strict=True)


def test_read_mrs_table_range_checks_lenient(mrs_cohort) -> None:
    cohort, parts = mrs_cohort
    _rewrite(cohort, "9.84\t4", "0\t4")
    _rewrite(cohort, "8.33\t6", "8.33\t-6")
    _rewrite(cohort, "0.045\t27", "1.5\t27")
    frame, issues = read_mrs_table(cohort, parts)
    assert [(i.participant_id, i.session, i.column, i.value) for i in issues] == [
        ("sub-01", "ses-01", "naa", "0"),
        ("sub-01", "ses-02", "glu_sd_pct", "-6"),
        ("sub-02", "ses-01", "fwhm_ppm", "1.5"),
    ]
    first = frame.loc[("sub-01", "ses-01")]
    assert np.isnan(first["mrs_naa"]) and first["mrs_naa_rejected"] == 1.0
    assert np.isnan(first["mrs_glu_naa"]) and np.isnan(first["mrs_naa_cr"])
    # A bad %SD is dropped with an issue; the concentration stays (no QC possible).
    assert frame.loc[("sub-01", "ses-02"), "mrs_glu"] == 8.33
    assert math.isnan(frame.loc[("sub-02", "ses-01"), "mrs_fwhm_ppm"])


def test_read_mrs_table_rows_outside_the_cohort(mrs_cohort) -> None:
    cohort, parts = mrs_cohort
    with (cohort / "mrs.tsv").open("a") as handle:
        handle.write("sub-09\tses-01\t9.1\t4\t\t\t\t\t\t\t\t\n")
        handle.write("sub-02\tses-01\t9.1\t4\t\t\t\t\t\t\t\t\n")
    frame, issues = read_mrs_table(cohort, parts)
    assert [i.participant_id for i in issues] == ["sub-09", "sub-02"]
    assert "not listed in participants.tsv" in issues[0].message
    assert "already holds this subject visit" in issues[1].message
    assert frame.loc[("sub-02", "ses-01"), "mrs_naa"] == 10.6  # first row kept
    with pytest.raises(CohortFormatError, match=r"mrs\.tsv, row 6 \(sub-09, ses-01\)"):
        read_mrs_table(cohort, parts, strict=True)


def test_read_mrs_table_unknown_column_and_missing_id(mrs_cohort) -> None:
    cohort, parts = mrs_cohort
    _rewrite(cohort, "\tsnr\n", "\tsn_ratio\n")
    frame, issues = read_mrs_table(cohort, parts)
    assert [i.column for i in issues] == ["sn_ratio"]
    assert frame["mrs_snr"].isna().all()
    _rewrite(cohort, "participant_id\t", "subject\t")
    with pytest.raises(CohortFormatError, match=r"mrs\.tsv: required column 'partic"):
        read_mrs_table(cohort, parts)


@pytest.mark.parametrize("bad", [0, float("inf"), None])
def test_read_mrs_table_rejects_bad_limit(mrs_cohort, bad) -> None:
    cohort, parts = mrs_cohort
    with pytest.raises(ValueError, match=r"max_crlb_pct = .*20 is the usual CRLB"):
        read_mrs_table(cohort, parts, max_crlb_pct=bad)


def test_the_real_coord_holds_the_tables_values() -> None:
    coord, table = read_lcmodel_table(COORD), read_lcmodel_table(TABLE)
    pd.testing.assert_frame_equal(coord.concentrations, table.concentrations)
    assert (coord.fwhm_ppm, coord.snr, coord.version) == (0.043, 13.0, "6.3-1B")


def test_a_fatal_fit_quotes_lcmodels_diagnostic(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_voi-SMA_lcmodel.table"
    head = TABLE.read_bytes().split(b"$$CONC")[0]
    diag = b"$$DIAG  1 lines in following diagnostic table:\n 1 FATAL    MYBASI  7\n"
    path.write_bytes(head + diag)
    with pytest.raises(CohortFormatError, match=r"fit failed.*diagnostic: 1 FATAL"):
        read_lcmodel_table(path)


@pytest.mark.parametrize("name", ["x.csv", "x.table"])
def test_an_empty_output_says_the_fit_probably_failed(tmp_path: Path, name) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(CohortFormatError, match=r"empty: the LCModel fit probably"):
        mrs_features(tmp_path / name)


def test_a_metabolite_listed_twice_is_named(tmp_path: Path) -> None:
    path = _edited(tmp_path, TABLE, b"0.131 Glu ", b"0.131 NAA ")
    with pytest.raises(CohortFormatError, match=r"line 20: metabolite 'NAA' appears a"):
        read_lcmodel_table(path)


def _folder(tmp_path: Path, files: dict[str, Path | str]) -> Path:
    folder = tmp_path / "sub-01"
    folder.mkdir()
    for name, content in files.items():
        target = folder / name
        if isinstance(content, Path):
            shutil.copy(content, target)
        else:
            target.write_text(content)
    return folder


@pytest.mark.parametrize(
    ("files", "chosen", "said"),
    [
        ({"sub-01_voi-SMA_lcmodel.TABLE": TABLE}, "sub-01_voi-SMA_lcmodel.TABLE", []),
        (
            {"sub-01_voi-SMA_lcmodel.CSV": CSV, "sub-01_voi-SMA_lcmodel.PS": "%!PS"},
            "sub-01_voi-SMA_lcmodel.CSV",
            [],
        ),
        (
            {"svs_97.TABLE": TABLE, "svs_97.COORD": COORD, "svs_97.PS": "%!PS"},
            "svs_97.TABLE",
            ["read svs_97.TABLE, the folder's only LCModel .table output"],
        ),
        ({"svs_97.COORD": COORD}, "svs_97.COORD", ["only LCModel .coord output"]),
        (
            {"sub-01_voi-SMA_lcmodel.table": TABLE, "old_fit.table": TABLE},
            "sub-01_voi-SMA_lcmodel.table",
            ["not used: old_fit.table (read sub-01_voi-SMA_lcmodel.table)"],
        ),
        (
            {"a.table": TABLE, "b.TABLE": TABLE},
            None,
            ["2 LCModel .table outputs (a, b) and none named"],
        ),
        ({"spectrum.rda": "x"}, None, ["no LCModel .table, .csv or .coord output"]),
    ],
)
def test_the_lcmodel_output_is_found_and_the_rest_named(
    tmp_path: Path, files, chosen, said
) -> None:
    path, notes = find_lcmodel_output(_folder(tmp_path, files), "sub-01")
    assert (path.name if path else None) == chosen
    assert len(notes) == len(said)
    for fragment, note in zip(said, notes, strict=True):
        assert fragment in note


def test_a_coord_alone_gives_the_tables_features(tmp_path: Path) -> None:
    path, _ = find_lcmodel_output(_folder(tmp_path, {"x.COORD": COORD}), "s")
    got, expected = mrs_features(path), mrs_features(TABLE)
    assert got.keys() == expected.keys()
    np.testing.assert_array_equal(list(got.values()), list(expected.values()))
