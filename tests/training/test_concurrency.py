"""Real ``python -m training`` processes: one killed mid-run, then two started at
the same moment into the same SQLite MLflow and Optuna stores and the same
simulated-cohort and features caches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow

from tests import ROOT

ARGS = [
    "--n",
    "60",
    "--models",
    "logreg",
    "--trials",
    "2",
    "--outer-folds",
    "2",
    "--repeats",
    "1",
    "--inner-folds",
    "2",
    "--bootstrap",
    "20",
    "--permutations",
    "0",
    "--jobs",
    "1",
]


def _start(folder: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "ALSDX_CACHE_DIR": str(folder / "cache"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "training", *ARGS],
        cwd=folder,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout=300) -> None:
    end = time.monotonic() + timeout
    while text not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < end, log.read_text()
        time.sleep(0.2)


def test_a_killed_training_then_two_at_once_into_the_same_stores(tmp_path):
    killed_log = tmp_path / "killed.log"
    killed = _start(tmp_path, killed_log)
    _wait_for(killed_log, "nested CV of logreg", killed)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()

    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_start(tmp_path, log) for log in logs]  # the same moment
    for proc in procs:
        proc.wait(timeout=600)
    texts = [log.read_text() for log in logs]
    for proc, text in zip(procs, texts, strict=True):
        assert proc.returncode == 0, text
        assert "Traceback" not in text
        assert "champion: logreg" in text
    # one simulated the cohort, the other waited and reused it
    assert sum("simulating the default cohort" in t for t in texts) <= 1
    assert len(list((tmp_path / "data" / "simulated").iterdir())) == 2  # + lock
    # the killed run is marked as such, and said
    assert any("marked KILLED" in t for t in texts)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(
        experiment_names=["als-mimics-dx"],
        filter_string="tags.pid != ''",
        output_format="list",
    )
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED", "KILLED"]
    versions = mlflow.MlflowClient().search_model_versions("name = 'als-mimics-dx'")
    assert len(versions) == 2  # the killed run registered nothing
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary file left behind
