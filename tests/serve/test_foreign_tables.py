"""Tables this project did not write: train on them, then score them through the
command line, ``predict()`` and the API, with identical answers.

``tests/data/tables/`` holds two exports in the shapes labs send (see its
``make_tables.py``): a 24-row 7 T ALS-vs-control spreadsheet (``Subject_ID``,
``Group`` 1/0, ``Gender`` 1/2, mixed-case headers with units, empty cells, a text
``Notes`` column, no NfL, no ``has_*`` flags) and a 60-row clinic CSV (``ID`` with
leading zeros, ``Diagnosis`` as lower/upper-case words, ``Site`` codes ``01``/``02``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from common.table_io import read_table
from serve.__main__ import main as serve_main
from serve.bundle import load_bundle
from serve.predict import predict
from tests import DATA
from tests.serve.test_api import _free_port, _start, _stop
from training.__main__ import main as train_main
from training.run import fitted_covariates

TABLES = DATA / "tables"
LAB = TABLES / "lab_7t_export.xlsx"
CLINIC = TABLES / "clinic_serum.csv"
MODEL = "models:/als-mimics-dx@champion"
QUICK = ["--models", "logreg", "--trials", "2", "--inner-folds", "2"]
QUICK += ["--bootstrap", "50", "--permutations", "10", "--jobs", "1"]
LAB_FLAGS = ["--features", str(LAB), "--label-column", "Group"]
LAB_FLAGS += ["--label-map", "1=ALS", "0=HC", "--group-column", "subject_id"]
LAB_FLAGS += ["--sex-column", "Gender", "--sex-map", "1=M", "2=F"]


@pytest.fixture(scope="module")
def lab_model(tmp_path_factory):
    """The 7 T export trained by ``python -m training`` with MLFLOW_TRACKING_URI
    set and no --tracking-uri: the store is wherever the variable points."""
    root = tmp_path_factory.mktemp("lab")
    store = f"sqlite:///{root / 'elsewhere.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", store)
    patch.chdir(tmp_path_factory.mktemp("cwd"))  # nothing lands in the cwd's store
    try:
        status = train_main(
            [*LAB_FLAGS, *QUICK, "--optuna-storage", f"sqlite:///{root / 'o.db'}"]
        )
        yield root, store, status, Path.cwd()
    finally:
        patch.undo()


def test_the_lab_export_trains_with_the_environment_store(lab_model):
    root, store, status, cwd = lab_model
    assert status == 0
    assert not (cwd / "mlflow.db").exists() and not (cwd / "mlruns").exists()
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name("als-mimics-dx")
    assert experiment.artifact_location == (root / "mlruns").as_uri()  # beside it
    bundle = load_bundle(MODEL, store)
    assert bundle.classes == ["ALS", "HC"]
    notes = " ".join(bundle.metadata["notes"])
    assert "each row is one participant" not in notes  # --group-column given
    assert "'Notes' holds text" in notes and "no site column" in notes
    assert "small cohort (24 participants < 100)" in notes
    cv = bundle.metadata["nested_cv_metrics_ci"]
    assert 0.0 <= cv["macro_auc"]["ci_low"] <= cv["macro_auc"]["ci_high"] <= 1.0
    assert fitted_covariates(bundle.pipeline) == {"normative": ["age", "male"]}
    (run_id,) = mlflow.search_runs(
        [experiment.experiment_id], filter_string="attributes.run_name LIKE 'train-%'"
    ).run_id
    run = mlflow.get_run(run_id)
    skipped = run.data.tags["skipped_steps"]
    assert "baseline nfl_62" in skipped and "baseline criteria" in skipped


def test_the_lab_export_scores_identically_everywhere(lab_model, tmp_path, monkeypatch):
    root, store, _, _ = lab_model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # serve honours it too
    out = tmp_path / "not" / "yet" / "scores.csv"
    assert serve_main(["score", "--features", str(LAB), "--out", str(out)]) == 0
    cli = pd.read_csv(out, dtype={"participant_id": str})
    table = read_table(LAB)  # the export as it is, its own names and codes
    direct = predict(MODEL, table, tracking_uri=store)
    assert (cli["error"].fillna("") == "").all()
    assert cli["participant_id"].tolist() == table["Subject_ID"].tolist()
    classes = ["p_ALS", "p_HC"]
    np.testing.assert_allclose(cli[classes], direct[classes], rtol=1e-9)
    records = [
        {k: (None if _missing(v) else _plain(v)) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]
    port = _free_port()
    proc = _start(
        [sys.executable, "-m", "serve", "api", "--model", MODEL, "--port", str(port)],
        tmp_path / "api.log",
        f"http://127.0.0.1:{port}/health",
        timeout=90,
        env={"MLFLOW_TRACKING_URI": store},
    )
    try:
        answer = requests.post(
            f"http://127.0.0.1:{port}/predict", json={"records": records}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        api = pd.DataFrame(answer.json()["predictions"])
        bad = requests.post(
            f"http://127.0.0.1:{port}/predict",
            json={"records": [{**records[0], "Gendr": 1}]},
            timeout=60,
        )
    finally:
        _stop(proc)
    np.testing.assert_allclose(api[classes], direct[classes], rtol=1e-9)
    assert api["participant_id"].tolist() == table["Subject_ID"].tolist()
    assert bad.status_code == 422 and "did you mean 'gender'" in bad.text.lower()


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def test_the_clinic_csv_keeps_site_01_one_site_in_training_and_scoring(tmp_path):
    store = f"sqlite:///{tmp_path / 'm.db'}"
    status = train_main(
        [
            "--features",
            str(CLINIC),
            "--label-column",
            "diagnosis",
            "--label-map",
            "als=ALS",
            "mmn=MMN",
            "control=HC",
            "--group-column",
            "ID",
            "--age-column",
            "age_years",
            *QUICK,
            "--tracking-uri",
            store,
            "--optuna-storage",
            f"sqlite:///{tmp_path / 'o.db'}",
        ]
    )
    assert status == 0
    bundle = load_bundle(MODEL, store)
    assert bundle.sites == {"01", "02"} and bundle.classes == ["ALS", "MMN", "HC"]
    covariates = fitted_covariates(bundle.pipeline)
    assert covariates == {"harmonize": ["age", "male"], "normative": ["age", "male"]}
    preds = predict(bundle, read_table(CLINIC, text_columns=["ID"]))
    assert not preds["unseen_site"].any()
    assert preds["participant_id"].iloc[0] == "001"
