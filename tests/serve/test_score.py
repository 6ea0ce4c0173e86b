"""Batch scoring from the command line: chunked, atomic, identical to predict(),
on the training cohort, a cohort from a new site and one missing modalities."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from serve import predict
from serve.__main__ import main
from serve.config import ModelSource, ScoreConfig
from serve.score import run_score


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables: ``b``'s float columns to 1e-12, everything else as text."""
    assert a.columns.tolist() == b.columns.tolist()
    for c in a.columns:
        if pd.api.types.is_float_dtype(b[c]):
            np.testing.assert_allclose(a[c], b[c], rtol=1e-12, err_msg=c)
        else:
            left = a[c].astype("string").fillna("").tolist()
            assert left == b[c].astype("string").fillna("").tolist(), c


def _args(trained, *rest):
    result, cfg = trained
    return ["score", "--model", result.model_uri, "--tracking-uri", cfg.tracking_uri,
            "--no-progress", *rest]  # fmt: skip


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_chunked_scoring_equals_predict(trained, champion, cohort_table, tmp_path,
                                        suffix):  # fmt: skip
    features = tmp_path / f"features{suffix}"
    if suffix == ".csv":
        cohort_table.to_csv(features, index=False)
    else:
        cohort_table.to_parquet(features)
    out = tmp_path / f"pred{suffix}"
    assert main(_args(trained, "--features", str(features), "--out", str(out),
                      "--chunk-size", "7")) == 0  # fmt: skip
    scored = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    _same(scored, predict(champion, cohort_table))
    assert not list(tmp_path.glob(".tmp-*"))


def test_an_existing_output_is_kept_unless_overwrite(trained, cohort_table, tmp_path):
    features = tmp_path / "f.parquet"
    cohort_table.head(5).to_parquet(features)
    out = tmp_path / "pred.csv"
    out.write_text("precious\n")
    args = _args(trained, "--features", str(features), "--out", str(out))
    assert main(args) == 2
    assert out.read_text() == "precious\n"
    assert main([*args, "--overwrite"]) == 0
    assert len(pd.read_csv(out)) == 5


def test_identifiers_a_spreadsheet_would_run_are_quoted(
    trained, cohort_table, tmp_path
):
    table = cohort_table.head(4).copy()
    ids = ['=HYPERLINK("http://x","open")', "+1", "@SUM(A1)", "sub-9"]
    table["participant_id"] = ids
    features = tmp_path / "f.parquet"
    table.to_parquet(features)
    out = tmp_path / "pred.csv"
    assert main(_args(trained, "--features", str(features), "--out", str(out))) == 0
    got = pd.read_csv(out)["participant_id"].tolist()
    assert got == [f"'{i}" for i in ids[:3]] + ["sub-9"]  # OWASP: quoted as text
    assert np.isfinite(pd.read_csv(out)["p_ALS"]).all()


def test_bad_rows_are_kept_with_the_reason(trained, champion, cohort_table, tmp_path):
    table = cohort_table.head(8).copy()
    table["nfl_pg_ml"] = table["nfl_pg_ml"].astype(object)
    table.loc[3, "nfl_pg_ml"] = "high"
    features = tmp_path / "f.csv"
    table.to_csv(features, index=False)
    report = run_score(
        ScoreConfig(
            ModelSource(*_args(trained)[2:5:2]),
            tmp_path / "pred.csv",
            features=features,
            chunk_size=3,
            progress=False,
        )
    )
    assert (report.n_rows, report.n_scored) == (8, 7)
    assert "1 row(s) could not be scored" in report.summary()
    assert f"f.csv, row 4 ({table.loc[3, 'participant_id']})" in report.errors[0]
    out = pd.read_csv(tmp_path / "pred.csv", keep_default_na=False)
    expected = "nfl_pg_ml = 'high' is not a number; write it in pg/mL or leave"
    assert out.loc[3, "error"].endswith(f"{expected} the cell empty")
    assert (out.drop(index=3)["error"] == "").all()


def test_a_failed_run_leaves_nothing_behind(trained, cohort_table, tmp_path):
    features = tmp_path / "f.parquet"
    cohort_table.drop(columns=["dti_cst_l_fa"]).to_parquet(features)
    out = tmp_path / "pred.parquet"
    assert main(_args(trained, "--features", str(features), "--out", str(out))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet"]


def test_bad_arguments_are_clear(trained, tmp_path, caplog):
    assert main(_args(trained, "--features", str(tmp_path / "nope.parquet"),
                      "--out", str(tmp_path / "p.csv"))) == 2  # fmt: skip
    assert "features table" in caplog.text and "nope.parquet not found" in caplog.text
    assert main(_args(trained, "--features", "x.csv", "--out", "p.xlsx")) == 2
    assert "unsupported output type '.xlsx'" in caplog.text
    with pytest.raises(ValueError, match="--chunk-size 0; it must be a positive"):
        ScoreConfig(ModelSource(), tmp_path / "p.csv", features=tmp_path, chunk_size=0)
    with pytest.raises(ValueError, match="exactly one of --cohort DIR or --features"):
        ScoreConfig(ModelSource(), tmp_path / "p.csv")


def test_a_cohort_from_a_new_site_missing_modalities(trained, small_cohort, tmp_path):
    cohort = tmp_path / "new-site"
    shutil.copytree(small_cohort, cohort)
    shutil.rmtree(cohort / "derivatives" / "qsm")
    (cohort / "serum.tsv").unlink()
    participants = pd.read_csv(cohort / "participants.tsv", sep="\t")
    participants["site"] = "hospital-Z"
    participants.to_csv(cohort / "participants.tsv", sep="\t", index=False)
    out = tmp_path / "pred.csv"
    assert main(_args(trained, "--cohort", str(cohort), "--out", str(out))) == 0
    scored = pd.read_csv(out, keep_default_na=False)
    assert len(scored) == len(participants)
    assert (scored["error"] == "").all()
    assert (scored["unseen_site"].astype(str) == "True").all()
    assert not scored["modalities_used"].str.contains("qsm|serum").any()


@pytest.mark.distributed
def test_scoring_on_a_local_cluster_equals_the_embedded_run(
    trained, champion, cohort_table, tmp_path, caplog
):
    pytest.importorskip("distributed")
    table = cohort_table.copy()
    table.loc[:4, "site"] = "siteNEW"  # a warning raised on a worker reaches the log
    features = tmp_path / "features.parquet"
    table.to_parquet(features)
    out = tmp_path / "pred.parquet"
    assert main(_args(trained, "--features", str(features), "--out", str(out),
                      "--chunk-size", "7", "--dask", "local:2")) == 0  # fmt: skip
    _same(pd.read_parquet(out), predict(champion, table))
    assert "siteNEW" in caplog.text or "not seen in training" in caplog.text
    assert not list(tmp_path.glob(".tmp-*"))
