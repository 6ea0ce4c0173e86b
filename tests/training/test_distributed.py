"""Training on a real Dask LocalCluster: the outer folds run on worker processes,
each fold's Optuna study in a shared journal file, MLflow written by this process
only; with the same seed the metrics equal the embedded run's."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from training.config import TrainConfig
from training.run import run

pytestmark = pytest.mark.distributed


def _train(cfg: TrainConfig, root: Path):
    cwd = Path.cwd()
    root.mkdir(parents=True)
    os.chdir(root)
    try:
        return run(cfg)
    finally:
        os.chdir(cwd)


def test_training_on_a_local_cluster_equals_the_embedded_run(small_cohort, tmp_path):
    pytest.importorskip("distributed")
    cfg = TrainConfig(
        cohort=small_cohort,
        models=("logreg", "xgboost"),
        outer_folds=3,
        inner_folds=2,
        repeats=1,
        n_permutations=0,
        n_bootstrap=50,
        n_trials=3,
        n_jobs=1,
        cache_dir=tmp_path / "cache",
    )
    embedded = _train(
        replace(
            cfg,
            tracking_uri=f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}",
            optuna_storage=f"sqlite:///{tmp_path / 'a' / 'optuna.db'}",
        ),
        tmp_path / "a",
    )
    journal = tmp_path / "b" / "optuna.log"
    distributed = _train(
        replace(
            cfg,
            n_jobs=-1,
            dask="local:2",
            tracking_uri=f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}",
            optuna_storage=f"journal:///{journal}",
        ),
        tmp_path / "b",
    )
    assert journal.stat().st_size > 0  # the folds' studies went to the journal
    for family, result in embedded.results.items():
        other = distributed.results[family]
        np.testing.assert_allclose(
            other.oof_proba, result.oof_proba, rtol=1e-9, atol=1e-12
        )
        assert other.metrics == pytest.approx(result.metrics, rel=1e-9)
    assert distributed.champion == embedded.champion


def _mlflow_server(backend: str, artifacts: Path, log: Path):
    """``mlflow server`` with ``backend`` as its store, on a free loopback port."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
           "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"mlflow server did not start:\n{log.read_text()}")


def test_shared_tracking_and_optuna_on_postgresql(small_cohort, postgres, tmp_path):
    """The docs/scaling.md recipe: an MLflow server on PostgreSQL with an artifacts
    destination, Optuna on PostgreSQL, training on a LocalCluster, then scoring
    with the model the server registered."""
    pytest.importorskip("distributed")
    import optuna
    import pandas as pd

    from serve.__main__ import main as serve_main

    optuna_url, backend = postgres("optuna"), postgres("mlflow")
    server, url = _mlflow_server(
        backend, tmp_path / "artifacts", tmp_path / "mlflow.log"
    )
    try:
        result = _train(
            TrainConfig(
                cohort=small_cohort,
                models=("logreg",),
                outer_folds=3,
                inner_folds=2,
                repeats=1,
                n_permutations=0,
                n_bootstrap=50,
                n_trials=2,
                dask="local:2",
                tracking_uri=url,
                optuna_storage=optuna_url,
                cache_dir=tmp_path / "cache",
            ),
            tmp_path / "run",
        )
        studies = optuna.get_all_study_names(storage=optuna_url)
        # one study per outer fold, and the final model's
        suffixes = sorted(name.rsplit("-", 1)[-1] for name in studies)
        assert suffixes == ["final", "outer0", "outer1", "outer2"]
        assert list((tmp_path / "artifacts").rglob("MLmodel"))  # on the server's side
        assert not (tmp_path / "run" / "mlruns").exists()  # nothing local
        out = tmp_path / "scores.csv"
        features = tmp_path / "features.parquet"
        from features.extract import extract_features

        extract_features(small_cohort, n_jobs=1).table.head(10).to_parquet(features)
        argv = ["score", "--model", result.model_uri, "--tracking-uri", url,
                "--features", str(features), "--out", str(out),
                "--no-progress"]  # fmt: skip
        assert serve_main(argv) == 0
        assert len(pd.read_csv(out)) == 10
    finally:
        server.terminate()
        server.wait(30)
