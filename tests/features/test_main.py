"""The ``python -m features`` command line: simulate, extract, and its refusals."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.__main__ import main
from tests import DATA


def test_simulate_then_extract(tmp_path, caplog):
    cohort = tmp_path / "cohort"
    assert main(["simulate", "--out", str(cohort), "--n", "12", "--seed", "3"]) == 0
    assert "SIMULATED" in (cohort / "README.txt").read_text()
    out = tmp_path / "some" / "missing" / "dir" / "features.csv"  # created
    assert main(["extract", str(cohort), "--out", str(out), "--jobs", "1"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 12
    assert {"participant_id", "diagnosis", "nfl_pg_ml", "has_dti"} <= set(table)


def test_existing_outputs_are_not_overwritten(tmp_path, caplog):
    cohort = tmp_path / "cohort"
    assert main(["simulate", "--out", str(cohort), "--n", "10"]) == 0
    assert main(["simulate", "--out", str(cohort), "--n", "10"]) == 2
    assert "--overwrite" in caplog.text
    out = tmp_path / "features.parquet"
    out.write_text("keep me")
    assert main(["extract", str(cohort), "--out", str(out), "--jobs", "1"]) == 2
    assert out.read_text() == "keep me"


def test_missing_participants_is_a_clear_error(tmp_path, caplog):
    assert main(["extract", str(tmp_path), "--out", str(tmp_path / "f.csv")]) == 2
    assert "participants.tsv not found" in caplog.text


def test_cohort_without_optional_tables(tmp_path):
    from features.extract import extract_features
    from features.simulate.cohort import simulate_cohort

    cohort = simulate_cohort(tmp_path / "c", n=10, seed=5)
    for name in ("nerve_conduction.tsv", "peripheral_mri.tsv", "clinical.tsv"):
        (cohort / name).unlink()
    table = extract_features(cohort, n_jobs=1).table
    assert len(table) == 10
    assert (table["has_ncs"] == 0).all() and (table["has_clinical"] == 0).all()
    assert table["source_ncs"].isna().all()


def test_links_and_special_files_are_named_once_per_kind(
    small_cohort, tmp_path, caplog
):
    import os
    import shutil

    cohort = Path(shutil.copytree(small_cohort, tmp_path / "c", symlinks=True))
    stats = sorted((cohort / "derivatives" / "freesurfer").glob("sub-*/stats"))
    outside = tmp_path / "aseg.stats"
    shutil.move(stats[0] / "aseg.stats", outside)
    (stats[0] / "aseg.stats").symlink_to(outside)  # followed, and said
    for folder in stats[1:3]:  # a DataLad dataset before `datalad get`
        (folder / "aseg.stats").unlink()
        (folder / "aseg.stats").symlink_to(cohort / ".git/annex/objects/MD5E-s1")
    (stats[3] / "aseg.stats").unlink()
    os.mkfifo(stats[3] / "aseg.stats")
    out = tmp_path / "f.csv"
    caplog.set_level("INFO")
    assert main(["extract", str(cohort), "--out", str(out), "--jobs", "1"]) == 0
    said = caplog.text
    assert "1 path(s) lead out of the cohort and were followed" in said
    assert f"aseg.stats -> {outside}" in said
    assert "2 path(s) lead to nothing" in said and "datalad get" in said
    assert "1 path(s) are not regular files" in said
    assert "sub-0002/stats: aseg.stats is a link to nothing" in said
    assert "sub-0004/stats: aseg.stats is a FIFO (found lh.aparc.stats" in said
    table = pd.read_csv(out).set_index("participant_id")
    assert table.loc["sub-0001", "fs_thalamus_l_mm3"] > 0  # the link was followed
    assert table.loc[["sub-0002", "sub-0004"], "fs_thalamus_l_mm3"].isna().all()


def test_real_lcmodel_outputs_under_other_names_are_read_and_named(
    small_cohort, tmp_path, caplog
):
    import shutil

    real = DATA / "real" / "lcmodel"
    cohort = Path(shutil.copytree(small_cohort, tmp_path / "c"))
    folders = sorted((cohort / "derivatives" / "lcmodel").glob("sub-*"))
    layouts = {  # as labs and LCModel itself name them
        0: {"svs_97.TABLE": "svs_97.TABLE", "svs_97.PS": None},
        1: {"svs_97.COORD": "svs_97.COORD"},
        2: {f"{folders[2].name}_voi-SMA_lcmodel.CSV": "svs_97.CSV", "notes.txt": None},
    }
    for i, files in layouts.items():
        for old in folders[i].iterdir():
            old.unlink()
        for name, source in files.items():
            if source is None:
                (folders[i] / name).write_text("x")
            else:
                shutil.copy(real / source, folders[i] / name)
    out = tmp_path / "f.csv"
    caplog.set_level("INFO")
    assert main(["extract", str(cohort), "--out", str(out), "--jobs", "1"]) == 0
    said = caplog.text
    table = pd.read_csv(out).set_index("participant_id")
    ids = [f.name for f in folders[:3]]
    assert table.loc[ids, "has_mrs"].tolist() == [1.0, 1.0, 1.0]
    assert "read svs_97.TABLE, the folder's only LCModel .table output" in said
    assert "read svs_97.COORD, the folder's only LCModel .coord output" in said
    assert f"not used: notes.txt (read {ids[2]}_voi-SMA_lcmodel.CSV)" in said
    # svs_97 was not scaled to water: a unit problem, not a concentration
    assert "not scaled to water" in said
    assert table.loc[ids, "mrs_naa"].isna().all()
    assert table.loc[ids[0], "mrs_snr"] == 13.0
