"""Tests for features.lcmodel on the real LCModel 6.3-1B output svs_97."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.errors import CohortFormatError
from features.lcmodel import apply_crlb_threshold, read_lcmodel_csv, read_lcmodel_table

REAL = Path(__file__).resolve().parents[1] / "data" / "real" / "lcmodel"
TABLE = REAL / "svs_97.TABLE"
CSV = REAL / "svs_97.CSV"


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
