"""Round-trip tests: features.simulate.writers output read back by our readers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.imaging.freesurfer import read_aparc_stats, read_aseg_stats
from features.mrs import read_lcmodel_table
from features.simulate.writers import (
    ASEG_SEGMENT_IDS,
    DK_REGIONS,
    write_aparc_stats,
    write_aseg_stats,
    write_lcmodel_table,
)
from tests import DATA

REAL = DATA / "real"
BERT = REAL / "freesurfer" / "bert" / "stats"
SVS = REAL / "lcmodel" / "svs_97.TABLE"
SURFACE_HOLES = {"lhSurfaceHoles", "rhSurfaceHoles", "SurfaceHoles"}


def _rows(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]


def _measure_keys(path: Path) -> list[tuple[str, str]]:
    found = re.findall(r"^# Measure ([^,]+), ([^,]+),", path.read_text(), re.M)
    return [(a, b) for a, b in found]


def _header_line(path: Path, key: str) -> str:
    return next(ln for ln in path.read_text().splitlines() if ln.startswith(key))


@pytest.fixture(scope="module")
def bert_aseg():
    return read_aseg_stats(BERT / "aseg.stats")


# --- aseg.stats ------------------------------------------------------------------


def test_segment_ids_match_bert(bert_aseg) -> None:
    ids = {row.split()[4]: int(row.split()[1]) for row in _rows(BERT / "aseg.stats")}
    assert ids == ASEG_SEGMENT_IDS


def test_aseg_round_trip_with_all_measures(tmp_path: Path, bert_aseg) -> None:
    path = tmp_path / "sub-01" / "stats" / "aseg.stats"
    write_aseg_stats(path, bert_aseg.volumes, bert_aseg.measures, "sub-01")
    back = read_aseg_stats(path)
    assert back.measures == pytest.approx(bert_aseg.measures, abs=1e-6)
    assert back.volumes == pytest.approx(bert_aseg.volumes, abs=0.05)
    assert back.version == "7.2.0"
    assert _measure_keys(path) == _measure_keys(BERT / "aseg.stats")


def test_aseg_layout_matches_bert(tmp_path: Path, bert_aseg) -> None:
    path = tmp_path / "aseg.stats"
    write_aseg_stats(path, bert_aseg.volumes, {"eTIV": 1.5e6}, "sub-01")
    for key in ("# ColHeaders", "# NTableCols", "# NRows", "# Title"):
        assert _header_line(path, key) == _header_line(BERT / "aseg.stats", key)
    assert "# subjectname sub-01" in path.read_text()
    for ours, real in zip(_rows(path), _rows(BERT / "aseg.stats"), strict=True):
        assert len(ours) == len(real)
        # Index, SegId | Volume_mm3 | StructName at the same columns as FreeSurfer.
        assert (ours[:7], ours[18:28], ours[30:60]) == (
            real[:7],
            real[18:28],
            real[30:60],
        )


def test_aseg_nvoxels_differ_from_volume(tmp_path: Path, bert_aseg) -> None:
    path = tmp_path / "aseg.stats"
    write_aseg_stats(path, bert_aseg.volumes, {"eTIV": 1.5e6}, "sub-01")
    for row in _rows(path):
        nvox, volume = int(row.split()[2]), float(row.split()[3])
        assert nvox == round(1.04 * volume)
        assert nvox != volume or volume == 0


def test_aseg_derived_measures(tmp_path: Path, bert_aseg) -> None:
    path = tmp_path / "aseg.stats"
    write_aseg_stats(path, bert_aseg.volumes, {"eTIV": 1.5e6}, "sub-01")
    m = read_aseg_stats(path).measures
    assert set(m) == set(bert_aseg.measures) - SURFACE_HOLES
    assert m["CortexVol"] == pytest.approx(m["lhCortexVol"] + m["rhCortexVol"])
    assert m["BrainSegVol-to-eTIV"] == pytest.approx(m["BrainSegVol"] / 1.5e6, 1e-5)
    nvox = {row.split()[4]: int(row.split()[2]) for row in _rows(path)}
    subcortical = [
        f"{side}-{name}"
        for side in ("Left", "Right")
        for name in ("Thalamus", "Caudate", "Putamen", "Pallidum", "Hippocampus",
                     "Amygdala", "Accumbens-area", "VentralDC")
    ]  # fmt: skip
    assert m["SubCortGrayVol"] == sum(nvox[s] for s in subcortical)
    for key, value in m.items():  # plausible: within 10 % of bert scaled to eTIV
        scale = 1.5e6 / bert_aseg.measures["eTIV"] if "eTIV" not in key[-5:] else 1
        assert value == pytest.approx(bert_aseg.measures[key] * scale, rel=0.1), key


def test_aseg_without_structures_uses_etiv_fractions(tmp_path: Path) -> None:
    path = tmp_path / "aseg.stats"
    write_aseg_stats(path, {"Left-Thalamus-Proper": 7000.0}, {"eTIV": 1.6e6}, "s")
    back = read_aseg_stats(path)
    assert back.volumes == {"Left-Thalamus": 7000.0}
    assert back.measures["SubCortGrayVol"] == pytest.approx(61020 * 1.6e6 / 1520021.26)
    assert _rows(path)[0].split()[:2] == ["1", "10"]


def test_aseg_writer_errors(tmp_path: Path) -> None:
    path = tmp_path / "aseg.stats"
    with pytest.raises(ValueError, match=r"unknown structure 'Left-Thalamos'"):
        write_aseg_stats(path, {"Left-Thalamos": 1.0}, {"eTIV": 1.5e6}, "s")
    with pytest.raises(ValueError, match=r"volume of Brain-Stem = -1.0; .*>= 0"):
        write_aseg_stats(path, {"Brain-Stem": -1.0}, {"eTIV": 1.5e6}, "s")
    with pytest.raises(ValueError, match=r"measures has no 'eTIV'"):
        write_aseg_stats(path, {}, {"BrainSegVol": 1e6}, "s")
    with pytest.raises(ValueError, match=r"unknown measures \['ICV'\]"):
        write_aseg_stats(path, {}, {"eTIV": 1.5e6, "ICV": 1.5e6}, "s")


# --- ?h.aparc.stats --------------------------------------------------------------


def test_dk_regions_in_freesurfer_order() -> None:
    assert DK_REGIONS == tuple(read_aparc_stats(BERT / "lh.aparc.stats").regions.index)
    assert len(DK_REGIONS) == 34


@pytest.mark.parametrize("hemi", ["lh", "rh"])
def test_aparc_full_round_trip_reproduces_bert_rows(tmp_path: Path, hemi: str) -> None:
    real = read_aparc_stats(BERT / f"{hemi}.aparc.stats")
    path = tmp_path / f"{hemi}.aparc.stats"
    write_aparc_stats(path, hemi, real.regions, real.measures, "bert")
    assert _rows(path) == _rows(BERT / f"{hemi}.aparc.stats")
    back = read_aparc_stats(path)
    assert (back.hemi, back.atlas) == (hemi, "aparc")
    assert back.measures == pytest.approx(real.measures)
    assert _measure_keys(path) == _measure_keys(BERT / f"{hemi}.aparc.stats")
    assert _header_line(path, "# ColHeaders") == _header_line(
        BERT / f"{hemi}.aparc.stats", "# ColHeaders"
    )


def test_aparc_minimal_columns_are_filled(tmp_path: Path) -> None:
    regions = pd.DataFrame(
        {"GrayVol": [14392.4, 9091.0], "ThickAvg": [2.9391, 2.358]},
        index=["precuneus", "precentral"],
    )
    path = tmp_path / "lh.aparc.stats"
    write_aparc_stats(path, "lh", regions, {"eTIV": 1.5e6}, "sub-01")
    back = read_aparc_stats(path)
    assert list(back.regions.index) == ["precentral", "precuneus"]  # DK order
    assert back.regions.loc["precuneus", "GrayVol"] == 14392
    assert back.regions.loc["precuneus", "ThickAvg"] == pytest.approx(2.939)
    assert not back.regions.isna().any().any()
    assert back.measures["eTIV"] == 1.5e6
    assert back.measures["NumVert"] == back.regions["NumVert"].sum()
    assert np.isnan(back.regions["GrayVol"].reindex(["insula"])["insula"])


def test_aparc_other_atlas(tmp_path: Path) -> None:
    real = read_aparc_stats(BERT / "rh.aparc.DKTatlas.stats")
    path = tmp_path / "rh.aparc.DKTatlas.stats"
    write_aparc_stats(path, "rh", real.regions, {}, "bert", atlas="aparc.DKTatlas")
    back = read_aparc_stats(path)
    assert back.atlas == "aparc.DKTatlas"
    assert _rows(path) == _rows(BERT / "rh.aparc.DKTatlas.stats")


def test_aparc_writer_errors(tmp_path: Path) -> None:
    path = tmp_path / "lh.aparc.stats"
    ok = pd.DataFrame({"GrayVol": [1.0], "ThickAvg": [2.5]}, index=["precentral"])
    with pytest.raises(ValueError, match=r"hemi = 'left'; use 'lh' or 'rh'"):
        write_aparc_stats(path, "left", ok, {}, "s")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['ThickAvg'\]"):
        write_aparc_stats(path, "lh", ok[["GrayVol"]], {}, "s")
    with pytest.raises(ValueError, match=r"\['precentral_gyrus'\] are not Desikan"):
        write_aparc_stats(path, "lh", ok.rename(index=lambda n: n + "_gyrus"), {}, "s")
    with pytest.raises(ValueError, match=r"unknown measures \['ICV'\]"):
        write_aparc_stats(path, "lh", ok, {"ICV": 1.0}, "s")
    with pytest.raises(ValueError, match=r"missing values for parcels \['precentral'"):
        write_aparc_stats(path, "lh", ok.assign(ThickAvg=np.nan), {}, "s")


# --- LCModel .table --------------------------------------------------------------


@pytest.fixture(scope="module")
def svs():
    return read_lcmodel_table(SVS)


def _assert_printed_close(read: pd.Series, expected: pd.Series, digits: int) -> None:
    """Equal within LCModel's printing: 3 decimals, or E form with ``digits``."""
    fixed = expected.abs().between(0.1, 1e4, inclusive="left")
    tolerance = np.where(fixed, 5e-4, expected.abs() * 0.5 * 10.0**-digits)
    assert ((read - expected).abs() <= tolerance + 1e-12).all(), (read, expected)


def test_lcmodel_round_trip(tmp_path: Path, svs) -> None:
    given = svs.concentrations.drop(index="Cr+PCr")[["conc", "sd_pct"]]
    path = tmp_path / "sub-01.table"
    write_lcmodel_table(path, given, fwhm_ppm=0.043, snr=13.2, title="SVS_97\nx")
    back = read_lcmodel_table(path)
    assert (back.version, back.fwhm_ppm, back.snr) == ("6.3-1B", 0.043, 13.0)
    assert back.ratio_reference == "Cr+PCr"
    conc = back.concentrations
    assert list(conc.index) == [*given.index, "Cr+PCr"]
    pd.testing.assert_series_equal(conc["conc"][given.index], given["conc"])
    pd.testing.assert_series_equal(conc["sd_pct"][given.index], given["sd_pct"])
    assert conc.loc["Cr+PCr", ["conc", "ratio"]].tolist() == [0.251, 1.0]
    _assert_printed_close(conc["ratio"], conc["conc"] / 0.251, digits=1)


def test_lcmodel_layout_matches_real_table(tmp_path: Path, svs) -> None:
    path = tmp_path / "s.table"
    write_lcmodel_table(path, svs.concentrations, 0.043, 13, "SVS_97")
    ours, real = path.read_text().splitlines(), SVS.read_text().splitlines()
    assert ours[0] == real[0].rstrip()
    start = ours.index(real[5])  # "$$CONC 38 lines in following ... = NCONC+1"
    assert ours[start + 1] == real[6].rstrip()  # "    Conc.  %SD /Cr+PCr  Metabolite"
    for mine, theirs in zip(ours[start + 2 : start + 39], real[7:44], strict=True):
        assert mine[:14] == theirs[:14]  # conc and %SD fields as LCModel prints them
    assert "  FWHM = 0.043 ppm    S/N =  13" in ours
    for section in ("$$MISC", "$$DIAG", "$$INPU"):
        assert any(line.startswith(section) for line in ours)


def test_lcmodel_wide_value_range_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    conc = 10.0 ** rng.uniform(-4, 4.5, size=40)
    frame = pd.DataFrame(
        {"conc": conc, "sd_pct": rng.integers(0, 1200, size=40).astype(float)},
        index=[f"M{i}" for i in range(38)] + ["Cr", "PCr"],
    )
    path = tmp_path / "wide.table"
    write_lcmodel_table(path, frame, 0.05, 20, "wide")
    back = read_lcmodel_table(path).concentrations
    _assert_printed_close(back["conc"][frame.index], frame["conc"], digits=2)
    ratio = frame["conc"] / (frame.loc["Cr", "conc"] + frame.loc["PCr", "conc"])
    _assert_printed_close(back["ratio"][frame.index], ratio, digits=1)
    assert (back["sd_pct"][frame.index] == frame["sd_pct"].clip(upper=999)).all()


def test_lcmodel_writer_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.table"
    ok = pd.DataFrame({"conc": [0.1, 0.2], "sd_pct": [5, 4]}, index=["Cr", "PCr"])
    with pytest.raises(ValueError, match=r"lacks \['sd_pct', 'PCr'\]"):
        write_lcmodel_table(path, ok[["conc"]].iloc[:1], 0.04, 10, "t")
    with pytest.raises(ValueError, match=r"rows \['Cr'\] have a missing or negative"):
        write_lcmodel_table(path, ok.assign(conc=[-0.1, 0.2]), 0.04, 10, "t")
    with pytest.raises(ValueError, match=r"fwhm_ppm = nan, snr = 10; both must"):
        write_lcmodel_table(path, ok, float("nan"), 10, "t")
    with pytest.raises(ValueError, match=r"Cr\+PCr concentration is 0"):
        write_lcmodel_table(path, ok.assign(conc=0.0), 0.04, 10, "t")
