"""Tests for features.freesurfer on real FreeSurfer 7.2 (bert) and quirk fixtures."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from features.errors import CohortFormatError
from features.freesurfer import (
    APARC_COLUMNS,
    read_aparc_stats,
    read_aseg_stats,
)

DATA = Path(__file__).resolve().parents[1] / "data"
BERT = DATA / "real" / "freesurfer" / "bert" / "stats"
QUIRKS = DATA / "freesurfer_quirks"


def _bert_text(name: str) -> str:
    return (BERT / name).read_text(encoding="utf-8")


def test_bert_aseg_volumes_come_from_volume_column_not_nvoxels() -> None:
    stats = read_aseg_stats(BERT / "aseg.stats")
    assert stats.volumes["Left-Thalamus"] == pytest.approx(8066.3)
    assert stats.volumes["Left-Thalamus"] != 8431  # NVoxels of the same row
    assert stats.volumes["Right-Thalamus"] == pytest.approx(8287.8)
    assert len(stats.volumes) == 45
    assert stats.path == BERT / "aseg.stats"


def test_bert_aseg_measures_keyed_by_second_field() -> None:
    stats = read_aseg_stats(str(BERT / "aseg.stats"))
    assert stats.measures["eTIV"] == pytest.approx(1520021.264474)
    assert stats.measures["BrainSegVol"] == pytest.approx(1218061.0)
    assert stats.measures["TotalGrayVol"] == pytest.approx(675696.964762)
    assert stats.measures["lhCortexVol"] == pytest.approx(244352.047461)
    assert stats.measures["BrainSegVol-to-eTIV"] == pytest.approx(0.801345)
    assert stats.version == "7.2.0-beta"


def test_aseg_columns_are_located_from_colheaders(tmp_path: Path) -> None:
    text = _bert_text("aseg.stats").replace(
        "# ColHeaders  Index SegId NVoxels Volume_mm3 StructName",
        "# ColHeaders  Index SegId Volume_mm3 NVoxels StructName",
    )
    path = tmp_path / "aseg.stats"
    path.write_text(text)
    # The swapped header now says the 3rd column (6943, ...) is the volume.
    assert read_aseg_stats(path).volumes["Left-Lateral-Ventricle"] == 6943.0


def test_freesurfer_53_aseg_is_normalised() -> None:
    stats = read_aseg_stats(QUIRKS / "fs53_aseg.stats")
    assert stats.version.startswith("$Id: mri_segstats.c,v 1.75.2.9 2013/02/16")
    assert stats.volumes["Left-Thalamus"] == pytest.approx(8066.3)
    assert stats.volumes["Right-Thalamus"] == pytest.approx(8287.8)
    assert "Left-Thalamus-Proper" not in stats.volumes
    assert stats.measures["eTIV"] == pytest.approx(1520021.264474)  # was ICV
    assert "ICV" not in stats.measures
    assert stats.measures["lhCerebralWhiteMatterVol"] == pytest.approx(248495.5)


def test_version_falls_back_to_generating_program(tmp_path: Path) -> None:
    path = tmp_path / "aseg.stats"
    path.write_text(_bert_text("aseg.stats").replace("# cvs_version 7.2.0-beta\n", ""))
    assert read_aseg_stats(path).version == "mri_segstats"


def test_malformed_measure_lines_are_skipped_with_warning() -> None:
    path = QUIRKS / "malformed_measure_aseg.stats"
    with pytest.warns(UserWarning) as caught:
        stats = read_aseg_stats(path)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert all(str(path) in m for m in messages)
    assert any("line 24" in m and "'n/a' is not a number" in m for m in messages)
    assert any("line 28" in m and "7 comma-separated fields" in m for m in messages)
    assert any("line 31" in m and "4 comma-separated fields" in m for m in messages)
    for key in ("SubCortGrayVol", "MaskVol", "lhSurfaceHoles"):
        assert key not in stats.measures
    assert stats.measures["eTIV"] == pytest.approx(1520021.264474)
    assert stats.volumes["Left-Thalamus"] == pytest.approx(8066.3)


def test_real_bert_files_read_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_aseg_stats(BERT / "aseg.stats")
        read_aparc_stats(BERT / "lh.aparc.stats")


def test_bert_lh_aparc_regions_and_measures() -> None:
    stats = read_aparc_stats(BERT / "lh.aparc.stats")
    assert stats.hemi == "lh"
    assert stats.atlas == "aparc"
    assert list(stats.regions.columns) == list(APARC_COLUMNS)
    assert stats.regions.index.name == "StructName"
    assert len(stats.regions) == 34
    assert stats.regions.loc["precentral", "GrayVol"] == 14392
    assert stats.regions.loc["precentral", "ThickAvg"] == pytest.approx(2.939)
    assert stats.measures["MeanThickness"] == pytest.approx(2.60273)
    assert stats.measures["WhiteSurfArea"] == pytest.approx(84499.5)
    assert stats.measures["eTIV"] == pytest.approx(1520021.264474)


def test_bert_precentral_to_precuneus_gray_volume_ratio() -> None:
    lh = read_aparc_stats(BERT / "lh.aparc.stats").regions["GrayVol"]
    rh = read_aparc_stats(BERT / "rh.aparc.stats").regions["GrayVol"]
    assert rh["precentral"] == 14633 and rh["precuneus"] == 9961
    ratio = (lh["precentral"] + rh["precentral"]) / (lh["precuneus"] + rh["precuneus"])
    assert ratio == pytest.approx((14392 + 14633) / (9091 + 9961))
    assert round(ratio, 2) == 1.52


def test_dkt_atlas_lacks_some_dk_regions() -> None:
    stats = read_aparc_stats(BERT / "rh.aparc.DKTatlas.stats")
    assert (stats.hemi, stats.atlas) == ("rh", "aparc.DKTatlas")
    assert len(stats.regions) == 31
    assert "bankssts" not in stats.regions.index
    values = stats.regions["GrayVol"].reindex(["bankssts", "precentral"])
    assert np.isnan(values["bankssts"]) and values["precentral"] > 0


def test_hemi_and_atlas_fall_back_to_file_name() -> None:
    stats = read_aparc_stats(QUIRKS / "no_hemi_header" / "rh.aparc.stats")
    assert (stats.hemi, stats.atlas) == ("rh", "aparc")
    assert stats.regions.loc["precentral", "GrayVol"] == 14633


@pytest.mark.parametrize("reader", [read_aseg_stats, read_aparc_stats])
def test_missing_file_names_path_and_expected_location(tmp_path: Path, reader) -> None:
    missing = tmp_path / "sub-01" / "stats" / "aseg.stats"
    with pytest.raises(
        FileNotFoundError, match=r"not found: .*sub-01.*derivatives/freesurfer/sub-X"
    ):
        reader(missing)


def test_missing_colheaders_is_a_format_error() -> None:
    with pytest.raises(
        CohortFormatError, match=r"no_colheaders_aseg\.stats: no '# ColH"
    ):
        read_aseg_stats(QUIRKS / "no_colheaders_aseg.stats")


def test_missing_volume_column_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "aseg.stats"
    path.write_text(_bert_text("aseg.stats").replace("Volume_mm3 StructName", "Vol S"))
    with pytest.raises(CohortFormatError, match=r"aseg\.stats: .* no StructName col"):
        read_aseg_stats(path)
    path.write_text(_bert_text("aseg.stats").replace("Volume_mm3 Struct", "Vol Struct"))
    with pytest.raises(CohortFormatError, match=r"no Volume_mm3 column .*mri_segstats"):
        read_aseg_stats(path)


def test_row_with_wrong_field_count_names_line(tmp_path: Path) -> None:
    path = tmp_path / "aseg.stats"
    path.write_text(
        _bert_text("aseg.stats").replace("  7316.9  Left-Lat", "  Left-Lat")
    )
    with pytest.raises(CohortFormatError, match=r"line 80: table row has 9 fields"):
        read_aseg_stats(path)


def test_non_numeric_cell_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "lh.aparc.stats"
    path.write_text(
        _bert_text("lh.aparc.stats").replace("14392  2.939", "14392  2.9x9")
    )
    with pytest.raises(CohortFormatError, match=r"line \d+: column ThickAvg = '2.9x9'"):
        read_aparc_stats(path)


def test_aparc_without_structname_column(tmp_path: Path) -> None:
    path = tmp_path / "lh.aparc.stats"
    path.write_text(
        _bert_text("lh.aparc.stats").replace("ColHeaders StructName", "ColHeaders Name")
    )
    with pytest.raises(
        CohortFormatError, match=r"no StructName column .*mris_anatomical"
    ):
        read_aparc_stats(path)


def test_aparc_with_unknown_hemisphere(tmp_path: Path) -> None:
    path = tmp_path / "aparc.stats"
    path.write_text(_bert_text("lh.aparc.stats").replace("# hemi lh\n", ""))
    with pytest.raises(CohortFormatError, match=r"aparc\.stats: cannot tell the hemi"):
        read_aparc_stats(path)
