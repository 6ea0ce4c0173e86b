"""Tests for features.imaging.freesurfer on real FreeSurfer 7.2 (bert) and quirk
fixtures."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from features.errors import CohortFormatError
from features.imaging.freesurfer import (
    APARC_COLUMNS,
    freesurfer_features,
    read_aparc_stats,
    read_aseg_stats,
    read_thalamic_nuclei,
)
from tests import DATA

BERT = DATA / "real" / "freesurfer" / "bert" / "stats"
QUIRKS = DATA / "freesurfer_quirks"
NUCLEI = QUIRKS / "thalamic_nuclei"
LH_NUCLEI = NUCLEI / "stats" / "thalamic-nuclei.lh.v13.T1.stats"
RH_NUCLEI = NUCLEI / "stats" / "thalamic-nuclei.rh.v13.T1.stats"
VOLUMES_TXT = NUCLEI / "mri" / "ThalamicNuclei.v13.T1.volumes.txt"
PULVINAR_L = 227.317872 + 1252.526558 + 211.323299 + 316.199687
PULVINAR_R = 237.521340 + 1202.860683 + 215.482298 + 272.346834
BERT_ETIV = 1520021.264474


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


# --- thalamic nuclei ---------------------------------------------------------------


def test_thalamic_stats_without_colheaders_as_segment_script_writes_them() -> None:
    left = read_thalamic_nuclei(LH_NUCLEI)
    assert len(left) == 26  # 25 nuclei + Whole_thalamus
    assert left["Left-PuM"] == pytest.approx(1252.526558)
    assert left["Left-L-Sg"] == pytest.approx(28.052934)  # hyphen inside the name
    assert left["Left-MV(Re)"] == pytest.approx(11.463548)
    assert left["Left-Whole_thalamus"] == pytest.approx(7145.382416)
    right = read_thalamic_nuclei(str(RH_NUCLEI))
    assert set(right) == {n.replace("Left-", "Right-") for n in left}
    assert right["Right-PuA"] == pytest.approx(237.521340)


def test_thalamic_volumes_txt_holds_both_hemispheres() -> None:
    volumes = read_thalamic_nuclei(VOLUMES_TXT)
    assert len(volumes) == 52
    assert volumes == {
        **read_thalamic_nuclei(LH_NUCLEI),
        **read_thalamic_nuclei(RH_NUCLEI),
    }


def test_thalamic_stats_with_colheaders_and_prefixed_names(tmp_path: Path) -> None:
    # mri_segstats layout: columns from '# ColHeaders', names keep 'Left-'.
    path = tmp_path / "thalamic-nuclei.lh.v12.T1.stats"
    path.write_text(
        "# Title Segmentation Statistics\n"
        "# ColHeaders  Index SegId NVoxels Volume_mm3 StructName\n"
        "  1 8120  0  227.3  Left-PuA\n"
        "  2 8123  0 1252.5  Left-PuM\n"
    )
    assert read_thalamic_nuclei(path) == {"Left-PuA": 227.3, "Left-PuM": 1252.5}


def test_thalamic_stats_row_with_wrong_field_count(tmp_path: Path) -> None:
    path = tmp_path / LH_NUCLEI.name
    path.write_text(LH_NUCLEI.read_text().replace("16 16  0 227", "16 16  227"))
    with pytest.raises(
        CohortFormatError, match=r"lh\.v13\.T1\.stats, line 17: table row has 4 fields"
    ):
        read_thalamic_nuclei(path)


def test_thalamic_stats_non_numeric_volume(tmp_path: Path) -> None:
    path = tmp_path / LH_NUCLEI.name
    path.write_text(LH_NUCLEI.read_text().replace("227.317872 PuA", "nan? PuA"))
    with pytest.raises(
        CohortFormatError, match=r"line 17: column Volume_mm3 = 'nan\?'"
    ):
        read_thalamic_nuclei(path)


def test_thalamic_stats_with_other_hemisphere_names(tmp_path: Path) -> None:
    path = tmp_path / LH_NUCLEI.name
    path.write_text("# swapped\n1 1  0 237.5 Right-PuA\n")
    with pytest.raises(
        CohortFormatError, match=r"line 2: structure 'Right-PuA' is in the lh file"
    ):
        read_thalamic_nuclei(path)


def test_thalamic_stats_without_any_hemisphere(tmp_path: Path) -> None:
    path = tmp_path / "thalamic-nuclei.v13.T1.stats"
    path.write_text(LH_NUCLEI.read_text())
    with pytest.raises(
        CohortFormatError, match=r"line 2: structure 'AV' has no Left-/Right- prefix"
    ):
        read_thalamic_nuclei(path)


def test_thalamic_stats_colheaders_without_volume(tmp_path: Path) -> None:
    path = tmp_path / LH_NUCLEI.name
    path.write_text("# ColHeaders Index StructName\n1 Left-PuA\n")
    with pytest.raises(
        CohortFormatError, match=r"lh\.v13\.T1\.stats: '# ColHeaders' has no Volume_mm3"
    ):
        read_thalamic_nuclei(path)


def test_thalamic_volumes_txt_bad_line(tmp_path: Path) -> None:
    path = tmp_path / VOLUMES_TXT.name
    path.write_text("Left-LGN 303.2\nLeft-PuA\n")
    with pytest.raises(
        CohortFormatError,
        match=r"volumes\.txt, line 2: expected 'name volume'.*'Left-PuA'",
    ):
        read_thalamic_nuclei(path)
    path.write_text("Left-LGN 3O3.2\n")
    with pytest.raises(CohortFormatError, match=r"line 1: column volume = '3O3\.2'"):
        read_thalamic_nuclei(path)


@pytest.mark.parametrize("name", [LH_NUCLEI.name, VOLUMES_TXT.name])
def test_thalamic_missing_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError, match=r"not found: .*segmentThalamicNuclei"):
        read_thalamic_nuclei(tmp_path / name)


# --- freesurfer_features -----------------------------------------------------------


def _subject(tmp_path: Path, *drop: str) -> Path:
    """A copy of bert's recon-all folder (stats/ and an empty mri/), minus ``drop``."""
    stats = tmp_path / "sub-01" / "stats"
    shutil.copytree(BERT, stats)
    (stats.parent / "mri").mkdir()
    for name in drop:
        (stats / name).unlink()
    return stats


def test_features_on_bert(tmp_path: Path) -> None:
    feats = freesurfer_features(_subject(tmp_path))
    assert feats["fs_etiv_mm3"] == pytest.approx(BERT_ETIV)
    assert feats["fs_thalamus_l_mm3"] == pytest.approx(8066.3)
    assert feats["fs_precentral_l_mm3"] == 14392
    assert feats["fs_mean_thickness_l_mm"] == pytest.approx(2.60273)
    assert feats["fs_m1_precuneus_ratio"] == pytest.approx(29025 / 19052)
    assert feats["qc_fs_parcellation_dkt"] == 0.0
    assert not any("pulvinar" in name for name in feats)  # no thalamic nuclei
    assert all(isinstance(v, float) for v in feats.values())


def test_etiv_normalised_volumes(tmp_path: Path) -> None:
    feats = freesurfer_features(_subject(tmp_path))
    volumes = [n for n in feats if n.endswith("_mm3") and n != "fs_etiv_mm3"]
    normalised = [n for n in feats if n.endswith("_etiv_pct")]
    assert len(volumes) == 13
    assert normalised == [n.replace("_mm3", "_etiv_pct") for n in volumes]
    assert "fs_etiv_etiv_pct" not in feats
    assert feats["fs_thalamus_l_etiv_pct"] == pytest.approx(100 * 8066.3 / BERT_ETIV)
    assert feats["fs_total_gray_etiv_pct"] == pytest.approx(
        100 * 675696.964762 / BERT_ETIV
    )
    assert 0.4 < feats["fs_thalamus_l_etiv_pct"] < 0.7


def test_etiv_pct_is_nan_without_etiv(tmp_path: Path) -> None:
    stats = _subject(tmp_path)
    aseg = stats / "aseg.stats"
    aseg.write_text(
        "".join(
            line
            for line in aseg.read_text().splitlines(keepends=True)
            if ", eTIV," not in line
        )
    )
    feats = freesurfer_features(stats)
    assert np.isnan(feats["fs_etiv_mm3"]) and np.isnan(feats["fs_thalamus_l_etiv_pct"])
    assert feats["fs_thalamus_l_mm3"] == pytest.approx(8066.3)


def test_dkt_fallback_when_aparc_missing(tmp_path: Path) -> None:
    stats = _subject(tmp_path, "lh.aparc.stats")
    feats = freesurfer_features(stats)
    assert feats["qc_fs_parcellation_dkt"] == 1.0
    # Both hemispheres switch to DKT, so the ratio never mixes two atlases.
    assert feats["fs_precentral_l_mm3"] == 14289
    assert feats["fs_precentral_r_mm3"] == 14531
    assert feats["fs_precuneus_l_mm3"] == 8834
    assert feats["fs_mean_thickness_r_mm"] == pytest.approx(2.59422)
    assert feats["fs_m1_precuneus_ratio"] == pytest.approx(
        (14289 + 14531) / (8834 + 10080)
    )


def test_freesurfer_53_dkt40_names_are_the_dkt_fallback(tmp_path: Path) -> None:
    stats = _subject(tmp_path, "lh.aparc.stats", "rh.aparc.stats")
    for h in ("lh", "rh"):  # as FreeSurfer 5.3 names the DKT files
        (stats / f"{h}.aparc.DKTatlas.stats").rename(
            stats / f"{h}.aparc.DKTatlas40.stats"
        )
    feats = freesurfer_features(stats)
    assert feats["qc_fs_parcellation_dkt"] == 1.0
    assert feats["fs_precentral_l_mm3"] == 14289


def test_missing_aparc_and_dkt_names_expected_files(tmp_path: Path) -> None:
    stats = _subject(tmp_path, "lh.aparc.stats", "lh.aparc.DKTatlas.stats")
    with pytest.raises(
        FileNotFoundError,
        match=r"sub-01/stats: aseg\.stats is there but lh\.aparc\.stats, "
        r"lh\.aparc\.DKTatlas\.stats are not.*-autorecon3",
    ):
        freesurfer_features(stats)


def test_no_stats_files_gives_no_features(tmp_path: Path) -> None:
    stats = tmp_path / "sub-01" / "stats"
    stats.mkdir(parents=True)
    assert freesurfer_features(stats) == {}


FS6_NO_ASEG = DATA / "freesurfer_quirks" / "fs6_no_aseg"


def test_freesurfer6_without_aseg_gives_cortical_features_and_names_the_rest():
    with pytest.warns(UserWarning) as caught:
        feats = freesurfer_features(FS6_NO_ASEG / "stats")
    (message,) = [str(w.message) for w in caught]
    assert "no aseg.stats (found lh.aparc.stats, rh.aparc.stats)" in message
    assert "eTIV from lh.aparc.stats" in message
    assert "thalamus, caudate, putamen and pallidum volumes" in message
    assert feats["fs_precentral_l_mm3"] == 14392.0
    assert feats["fs_m1_precuneus_ratio"] == pytest.approx(1.52, abs=0.01)
    assert feats["fs_etiv_mm3"] == pytest.approx(BERT_ETIV)
    assert feats["fs_precentral_l_etiv_pct"] == pytest.approx(100 * 14392.0 / BERT_ETIV)
    assert np.isnan(feats["fs_total_gray_mm3"]) and np.isnan(feats["fs_putamen_l_mm3"])


def test_freesurfer6_without_aseg_is_a_reported_problem_of_extraction(tmp_path):
    from features.extract import extract_features
    from features.simulate.cohort import simulate_cohort

    cohort = simulate_cohort(tmp_path / "c", n=10, seed=3)
    pid = sorted(p.name for p in (cohort / "derivatives" / "freesurfer").iterdir())[0]
    stats = cohort / "derivatives" / "freesurfer" / pid / "stats"
    shutil.rmtree(stats)
    shutil.copytree(FS6_NO_ASEG / "stats", stats)
    result = extract_features(cohort, n_jobs=1)
    row = result.table.set_index("participant_id").loc[pid]
    assert row["fs_precentral_l_mm3"] == 14392.0 and row["has_freesurfer"] == 1.0
    assert "no problems" not in result.summary()
    assert any(pid in i.message and "no aseg.stats" in i.message for i in result.issues)


def test_pulvinar_from_stats_files(tmp_path: Path) -> None:
    stats = _subject(tmp_path)
    shutil.copy(LH_NUCLEI, stats)
    shutil.copy(RH_NUCLEI, stats)
    feats = freesurfer_features(stats)
    assert feats["fs_pulvinar_l_mm3"] == pytest.approx(PULVINAR_L)
    assert feats["fs_pulvinar_r_mm3"] == pytest.approx(PULVINAR_R)
    assert feats["fs_pulvinar_l_etiv_pct"] == pytest.approx(
        100 * PULVINAR_L / BERT_ETIV
    )


def test_pulvinar_from_volumes_txt_of_older_versions(tmp_path: Path) -> None:
    stats = _subject(tmp_path)
    shutil.copy(VOLUMES_TXT, stats.parent / "mri" / "ThalamicNuclei.v12.T1.volumes.txt")
    feats = freesurfer_features(stats)
    assert feats["fs_pulvinar_l_mm3"] == pytest.approx(PULVINAR_L)
    assert feats["fs_pulvinar_r_mm3"] == pytest.approx(PULVINAR_R)


def test_pulvinar_prefers_stats_and_newest_version(tmp_path: Path) -> None:
    stats = _subject(tmp_path)
    shutil.copy(LH_NUCLEI, stats)
    old = LH_NUCLEI.read_text().replace("227.317872 PuA", "1.0 PuA")
    (stats / "thalamic-nuclei.lh.v9.T1.stats").write_text(old)
    txt = VOLUMES_TXT.read_text().replace("Right-PuA 237.521340", "Right-PuA 1.0")
    (stats.parent / "mri" / VOLUMES_TXT.name).write_text(txt)
    feats = freesurfer_features(stats)
    assert feats["fs_pulvinar_l_mm3"] == pytest.approx(PULVINAR_L)  # v13 over v9
    # No rh stats file: the right side comes from volumes.txt.
    assert feats["fs_pulvinar_r_mm3"] == pytest.approx(PULVINAR_R - 237.521340 + 1.0)


def test_pulvinar_nan_when_a_nucleus_or_hemisphere_is_missing(tmp_path: Path) -> None:
    stats = _subject(tmp_path)
    lines = LH_NUCLEI.read_text().splitlines(keepends=True)
    (stats / LH_NUCLEI.name).write_text("".join(x for x in lines if "PuI" not in x))
    feats = freesurfer_features(stats)
    assert np.isnan(feats["fs_pulvinar_l_mm3"])
    assert np.isnan(feats["fs_pulvinar_r_mm3"])  # no rh file, no volumes.txt


def test_bad_thalamic_file_is_an_error_of_the_subject(tmp_path: Path) -> None:
    stats = _subject(tmp_path)
    (stats / LH_NUCLEI.name).write_text("# t\n1 1 0 PuA\n")
    with pytest.raises(CohortFormatError, match=r"line 2: table row has 4 fields"):
        freesurfer_features(stats)
