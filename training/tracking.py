"""MLflow tracking of a training run: parent run, nested runs, model registration.

The one module of ``training`` that imports MLflow: the rest of training records
through these functions.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import sqlalchemy
from mlflow.models import infer_signature

from common.files import HOST, process_alive, store_lock
from models import manifest
from models.pipelines import SKOPS_TRUSTED_TYPES

CHAMPION_ALIAS = "champion"
# Every type our pipelines hold, so skops (MLflow's safe default, no pickle) can
# write and read them.
TRUSTED_TYPES = list(SKOPS_TRUSTED_TYPES)


def start(
    tracking_uri: str, experiment: str, registry_uri: str | None = None
) -> list[str]:
    """Point MLflow at ``tracking_uri`` (and ``registry_uri``, else the tracking
    store), select the experiment, creating it if needed.

    A new experiment in a local SQLite store keeps its artifacts in ``mlruns/``
    beside the database file, not in the working directory's ``./mlruns``. A
    SQLite store is created (or migrated) under a lock, so two trainings starting
    together take turns, and every SQLite connection waits up to 120 s for
    another writer instead of failing with "database is locked".

    Returns
    -------
    list of str
        A note for each run of this experiment left RUNNING by a process of this
        host that is gone (killed mid-training); each is marked KILLED.
    """
    _wait_for_sqlite_writers()
    mlflow.set_tracking_uri(tracking_uri)
    if registry_uri:
        mlflow.set_registry_uri(registry_uri)
    with store_lock(tracking_uri):
        if mlflow.get_experiment_by_name(experiment) is None:
            location = artifact_location(tracking_uri)
            try:
                mlflow.create_experiment(experiment, artifact_location=location)
            except mlflow.exceptions.MlflowException:
                if mlflow.get_experiment_by_name(experiment) is None:
                    raise  # not a concurrent creation of the same experiment
    if registry_uri and registry_uri != tracking_uri:
        with store_lock(registry_uri):
            mlflow.MlflowClient().search_registered_models(max_results=1)  # schema
    mlflow.set_experiment(experiment)
    return close_stale_runs(experiment)


def _wait_for_sqlite_writers() -> None:
    """Every SQLite connection of this process waits for locks (busy timeout)."""
    if not sqlalchemy.event.contains(sqlalchemy.Engine, "connect", _busy_timeout):
        sqlalchemy.event.listen(sqlalchemy.Engine, "connect", _busy_timeout)


def _busy_timeout(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA busy_timeout = 120000")


def close_stale_runs(experiment: str) -> list[str]:
    """Mark KILLED the RUNNING runs of ``experiment`` started by a process of this
    host that no longer exists; one note per run."""
    found = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=f"attributes.status = 'RUNNING' and tags.host = '{HOST}'",
        output_format="list",
    )
    notes = []
    for stale in found:
        pid = stale.data.tags.get("pid", "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        mlflow.MlflowClient().set_terminated(stale.info.run_id, "KILLED")
        notes.append(
            f"run {stale.info.run_id} ({stale.info.run_name}) was left RUNNING by "
            f"process {pid}, which is gone (killed mid-run): marked KILLED"
        )
    return notes


def artifact_location(tracking_uri: str) -> str | None:
    """``file://<db folder>/mlruns`` for a local SQLite store; None (the server's
    default) for any other store.

    Examples
    --------
    >>> artifact_location("sqlite:////data/runs/mlflow.db")
    'file:///data/runs/mlruns'
    >>> artifact_location("http://127.0.0.1:5000") is None
    True
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    if str(db) in ("", ":memory:"):
        return None
    return (db.resolve().parent / "mlruns").as_uri()


@contextmanager
def run(name: str, nested: bool = False) -> Iterator[str]:
    """Start an MLflow run (nested in the active one when ``nested``); yields its
    id. A top-level run is tagged with this host and process id, so a run killed
    mid-way can be told from one still going (:func:`close_stale_runs`)."""
    tags = None if nested else {"host": HOST, "pid": str(os.getpid())}
    with mlflow.start_run(run_name=name, nested=nested, tags=tags) as active:
        yield active.info.run_id


def log_params(params: Mapping[str, Any]) -> None:
    """Log parameters of the active run, as text."""
    mlflow.log_params({k: str(v) for k, v in params.items()})


def log_metrics(metrics: Mapping[str, float], prefix: str = "") -> None:
    """Log the finite ``metrics`` of the active run, names prefixed with
    ``prefix``; a NaN (a metric not defined on these data) is not logged."""
    finite = {f"{prefix}{k}": float(v) for k, v in metrics.items() if _finite(v)}
    if finite:
        mlflow.log_metrics(finite)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Tag the active run (values as text)."""
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_figure(figure, name: str) -> None:
    """Log a matplotlib figure of the active run as ``name``."""
    mlflow.log_figure(figure, name)


def _finite(v) -> bool:
    try:
        return bool(abs(float(v)) < float("inf"))
    except (TypeError, ValueError):
        return False


def log_json(obj: Any, name: str) -> None:
    """Log ``obj`` as a JSON artifact of the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(obj, indent=2, default=str))
        mlflow.log_artifact(str(path))


def log_frame(frame: pd.DataFrame, name: str) -> None:
    """Log ``frame`` as a CSV artifact of the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path))


def log_champion(
    pipeline, X: pd.DataFrame, model_name: str, metadata: dict[str, Any]
) -> str:
    """Log the fitted ``pipeline`` as an MLflow model, register it, alias it champion.

    The SHA-256 of every file of the logged model (:mod:`models.manifest`) goes
    into ``manifest.json`` beside them and into the registered version's tag
    ``sha256_manifest``; serving refuses a model whose files differ from it.

    Returns
    -------
    str
        ``models:/<model_name>@champion``.
    """
    example = X.head(5)
    signature = infer_signature(example, pipeline.predict_proba(example))
    info = mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature,
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        metadata=metadata,
        registered_model_name=model_name,
        skops_trusted_types=TRUSTED_TYPES,
    )
    client = mlflow.MlflowClient()
    version = info.registered_model_version
    # a local store's own folder; a remote store's files are downloaded
    folder = mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri)
    hashes = manifest.file_hashes(Path(folder))
    with tempfile.TemporaryDirectory() as tmp:
        path = manifest.write_manifest(hashes, Path(tmp))
        client.log_model_artifact(info.model_id, str(path))
    client.set_model_version_tag(
        model_name, version, manifest.REGISTRY_TAG, manifest.dumps(hashes)
    )
    client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version)
    return f"models:/{model_name}@{CHAMPION_ALIAS}"
