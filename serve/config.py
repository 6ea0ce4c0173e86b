"""Configuration of the serving commands: one frozen dataclass per command.

The command line (``python -m serve``) builds one of these and passes it to the
command's ``run`` function; nothing below the command line reads argv or the
environment.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost).

    Examples
    --------
    >>> [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0")]
    [True, True, True, False]
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


DEFAULT_MODEL = "models:/als-mimics-dx@champion"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@dataclass(frozen=True)
class ModelSource:
    """Where the locked model lives: a URI and the MLflow stores that resolve it
    (``tracking_uri`` None: ``sqlite:///mlflow.db``; ``registry_uri`` None: the
    tracking store), and whether a folder without a manifest may load."""

    model: str = DEFAULT_MODEL
    tracking_uri: str | None = None
    registry_uri: str | None = None
    #: load a model folder without a manifest (its files then go unchecked)
    unverified: bool = False


def _one_input(cohort: Path | None, features: Path | None) -> None:
    if (cohort is None) == (features is None):
        raise ValueError("give exactly one of --cohort DIR or --features FILE.")


def _check_dask(address: str | None) -> None:
    if address is not None:
        from common.executor import parse_address

        parse_address(address)


@dataclass(frozen=True)
class ScoreConfig:
    """``python -m serve score``: score a cohort directory or a features table.

    Exactly one of ``cohort`` and ``features`` is set. ``chunk_size`` rows of a
    features table are read, scored and written at a time, so memory is bounded by
    the chunk, not the file.
    """

    source: ModelSource
    out: Path
    cohort: Path | None = None
    features: Path | None = None
    overwrite: bool = False
    chunk_size: int = 50_000
    progress: bool = True
    dask: str | None = None

    def __post_init__(self) -> None:
        _one_input(self.cohort, self.features)
        _check_dask(self.dask)
        if self.chunk_size < 1:
            raise ValueError(
                f"--chunk-size {self.chunk_size}; it must be a positive number of "
                "rows, e.g. 50000."
            )


@dataclass(frozen=True)
class ExplainConfig:
    """``python -m serve explain``: the HTML explanation report of a cohort."""

    source: ModelSource
    out: Path
    cohort: Path | None = None
    features: Path | None = None
    overwrite: bool = False
    max_subjects: int = 200
    top: int = 12
    seed: int = 0
    dask: str | None = None

    def __post_init__(self) -> None:
        _one_input(self.cohort, self.features)
        _check_dask(self.dask)
        if self.max_subjects < 1:
            raise ValueError(
                f"--max-subjects {self.max_subjects}; it must be at least 1."
            )


@dataclass(frozen=True)
class MonitorConfig:
    """``python -m serve monitor``: each participant's visits, scored and followed
    (``out``: .html page, or a .csv/.tsv/.parquet table of subject-visits)."""

    source: ModelSource
    out: Path
    cohort: Path | None = None
    features: Path | None = None
    overwrite: bool = False
    max_subjects: int = 200

    def __post_init__(self) -> None:
        _one_input(self.cohort, self.features)
        if self.max_subjects < 1:
            raise ValueError(
                f"--max-subjects {self.max_subjects}; it must be at least 1."
            )


@dataclass(frozen=True)
class ApiConfig:
    """``python -m serve api``: the predict API on ``host:port`` (loopback default).

    Requests larger than ``max_body_bytes`` are refused with 413; one request may
    hold at most ``max_records`` records to predict, ``max_explain`` to explain
    (SHAP costs about half a second per record). ``workers`` server processes
    each load the model and answer requests (one per CPU core is the usual choice).
    """

    source: ModelSource
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 5_000_000
    max_records: int = 10_000
    max_explain: int = 100
    token_file: Path | None = None
    insecure: bool = False
    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers {self.workers}; give 1 or more processes.")
        if not is_loopback(self.host) and self.token_file is None and not self.insecure:
            raise ValueError(
                f"--host {self.host} is not a loopback address: anyone who can reach "
                "it could query the model. Give --token-file FILE (a secret of at "
                "least 16 characters; clients send 'Authorization: Bearer <secret>') "
                "or, on a network you trust, --insecure."
            )
        if not 0 <= self.port < 65536:
            raise ValueError(f"--port {self.port}; it must lie in 0-65535.")
        if min(self.max_body_bytes, self.max_records, self.max_explain) < 1:
            raise ValueError(
                "--max-body-bytes, --max-records and --max-explain must be positive."
            )
