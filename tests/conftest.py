"""Shared fixtures: one tiny simulated cohort and one trained model per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
os.environ.setdefault("DO_NOT_TRACK", "true")

#: The modules that take longest (measured with ``pytest --durations``), started
#: first: ``make test`` hands whole modules to its workers (pytest-xdist
#: ``--dist loadfile``), so a long module started last would run alone at the end.
LONGEST_FIRST = (
    "tests/training/analysis/test_published.py",
    "tests/training/analysis/test_run.py",
    "tests/training/test_run.py",
    "tests/training/test_distributed.py",
    "tests/features/simulate/test_longitudinal.py",
    "tests/serve/test_api.py",
    "tests/serve/test_foreign_tables.py",
    "tests/training/test_concurrency.py",
    "tests/serve/test_monitor.py",
    "tests/common/test_executor.py",
    "tests/test_corpus.py",
)


def pytest_collection_modifyitems(config, items):
    """Run :data:`LONGEST_FIRST` modules first, in that order (the others keep
    theirs)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def key(item) -> int:
        path = Path(str(item.path)).resolve()
        try:
            name = path.relative_to(Path(config.rootpath).resolve()).as_posix()
        except ValueError:
            return len(rank)
        return rank.get(name, len(rank))

    items.sort(key=key)  # stable: ties keep collection order


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """A 60-subject simulated cohort (real file formats), written once."""
    from features.simulate.cohort import simulate_cohort

    return simulate_cohort(tmp_path_factory.mktemp("cohort") / "sim", n=60, seed=21)


@pytest.fixture(scope="session")
def longitudinal_cohort(tmp_path_factory) -> Path:
    """A 30-subject simulated cohort followed for 3 visits 4 months apart."""
    from features.simulate.cohort import simulate_cohort

    folder = tmp_path_factory.mktemp("longitudinal") / "sim"
    return simulate_cohort(folder, n=30, seed=8, sessions=3, interval_months=4.0)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, small_cohort):
    """Run ``python -m training`` end to end on the small cohort (SQLite stores)."""
    from training.config import TrainConfig
    from training.run import run

    root = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        cohort=small_cohort,
        outer_folds=3,
        inner_folds=2,
        repeats=1,  # not the small-cohort defaults (tested on the lab tables)
        n_permutations=0,
        n_trials=2,
        n_jobs=1,
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        optuna_storage=f"sqlite:///{root / 'optuna.db'}",
        cache_dir=root / "cache",
    )
    cwd = Path.cwd()
    os.chdir(root)  # artifacts land in the temp run folder
    try:
        result = run(cfg)
    finally:
        os.chdir(cwd)
    return result, cfg


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server (Debian's package, as ``make test`` installs)
    on a loopback port, stopped after the session. Yields ``createdb(name)`` that
    creates a database and returns its SQLAlchemy URL."""
    import glob
    import shutil
    import subprocess
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; `make test` installs it.")
        pytest.skip("PostgreSQL is not installed (make test installs it)")
    bin_dir = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="alsdx-pg-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def pg(tool: str, *args: str) -> None:
        subprocess.run([*as_user, str(bin_dir / tool), *args], check=True,
                       capture_output=True, text=True)  # fmt: skip

    pg("initdb", "-D", str(data), "-U", "alsdx", "--auth=trust", "-E", "UTF8")
    options = f"-h 127.0.0.1 -p {port} -k {folder}"
    pg("pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
       "start")  # fmt: skip

    def createdb(name: str) -> str:
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "alsdx", name)
        return f"postgresql://alsdx@127.0.0.1:{port}/{name}"

    try:
        yield createdb
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
