"""Extraction on a real Dask LocalCluster (worker processes): the same table as the
embedded run, partitions reused on a rerun, and a worker killed mid-extraction
leaving no duplicate or missing row once the command is run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from common.executor import executor, parse_address
from features.extract import extract_features
from features.simulate.cohort import simulate_cohort
from tests import ROOT


def test_addresses_are_checked_before_any_work():
    assert parse_address("local") == ("local", None)
    assert parse_address(" local:3 ") == ("local", 3)
    assert parse_address("tcp://127.0.0.1:8786") == ("remote", None)
    for bad in ("locale", "local:0", "127.0.0.1:8786", "http://x:1"):
        with pytest.raises(ValueError, match="--dask"):
            parse_address(bad)


def test_embedded_runs_import_no_dask():
    code = (
        "import sys; from common.executor import executor\n"
        "with executor(None) as c: assert c is None\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_an_unreachable_scheduler_is_a_clear_error():
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="cannot reach the scheduler"):
        with executor("tcp://127.0.0.1:9"):
            pass


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("dask") / "sim", n=40, seed=5)


@pytest.fixture(scope="module")
def embedded(cohort):
    return extract_features(cohort, n_jobs=1)


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.table, b.table)
    assert [i.message for i in a.issues] == [i.message for i in b.issues]


@pytest.mark.distributed
def test_extraction_on_a_local_cluster_equals_the_embedded_run(
    cohort, embedded, tmp_path
):
    pytest.importorskip("distributed")
    parts = tmp_path / "parts"
    with executor("local:2") as client:
        assert len(client.scheduler_info()["workers"]) == 2
        first = extract_features(cohort, partitions=parts)
    _same(first, embedded)
    files = {p: p.stat().st_mtime_ns for p in parts.glob("*.pkl")}
    assert len(files) == len(embedded.table)
    # a rerun reads every subject-visit back, and gives the same table
    with executor("local:2"):
        again = extract_features(cohort, partitions=parts)
    _same(again, embedded)
    assert {p: p.stat().st_mtime_ns for p in parts.glob("*.pkl")} == files
    # a changed input makes a new key for its participant only
    stats = next((cohort / "derivatives" / "freesurfer").glob("sub-0001*/stats"))
    aseg = stats / "aseg.stats"
    os.utime(aseg, ns=(aseg.stat().st_atime_ns, aseg.stat().st_mtime_ns + 10**9))
    third = extract_features(cohort, n_jobs=1, partitions=parts)
    _same(third, embedded)
    assert len(list(parts.glob("*.pkl"))) == len(files) + 1


def _workers(pid: int) -> list[int]:
    """Dask worker processes under ``pid`` (their command lines name a worker)."""
    import psutil

    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "multiprocessing" in line or "spawn" in line:
            found.append(child.pid)
    return found


@pytest.mark.distributed
def test_a_worker_killed_mid_extraction_then_a_rerun(cohort, embedded, tmp_path):
    pytest.importorskip("distributed")
    out, parts = tmp_path / "f.parquet", tmp_path / "parts"
    cmd = [sys.executable, "-m", "features", "extract", str(cohort), "--out",
           str(out), "--dask", "local:2", "--partitions", str(parts)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while len(list(parts.glob("*.pkl"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = _workers(proc.pid)
    assert victims, "no worker process found"
    os.kill(victims[-1], signal.SIGKILL)
    text = proc.communicate(timeout=300)[0].decode()
    assert "Traceback" not in text
    if proc.returncode != 0:  # the cluster gave up on the lost tasks: run again
        assert proc.returncode == 2, text
        assert not out.exists()
        done = len(list(parts.glob("*.pkl")))
        rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert done <= len(list(parts.glob("*.pkl")))
    table = pd.read_parquet(out)
    assert not table.duplicated(["participant_id", "session"]).any()
    assert len(table) == len(embedded.table)
    assert list(table["participant_id"]) == list(embedded.table["participant_id"])
    assert not list(parts.glob(".tmp-*"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster(port: int) -> list[subprocess.Popen]:
    """A real scheduler and two worker processes on loopback (the dask CLI)."""
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
         "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )  # fmt: skip
    workers = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers",
         "2", "--nthreads", "1", "--no-dashboard"], **quiet
    )  # fmt: skip
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    return [scheduler, workers]


def _wait_for_partitions(parts: Path, n: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(parts.glob("*.pkl"))) < n and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.distributed
def test_a_scheduler_killed_mid_extraction_then_a_rerun(cohort, embedded, tmp_path):
    pytest.importorskip("distributed")
    port = _free_port()
    out, parts = tmp_path / "f.parquet", tmp_path / "parts"
    cmd = [sys.executable, "-m", "features", "extract", str(cohort), "--out",
           str(out), "--dask", f"tcp://127.0.0.1:{port}", "--partitions",
           str(parts)]  # fmt: skip
    cluster = _cluster(port)
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.STDOUT)  # fmt: skip
        _wait_for_partitions(parts, 3)
        cluster[0].kill()
        text = proc.communicate(timeout=300)[0]
    finally:
        for p in cluster:
            p.kill()
            p.wait()
    assert proc.returncode == 2, text
    assert "connection to the scheduler was lost" in text
    assert "Run the same command again" in text and "Traceback" not in text
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))
    done = {p: p.stat().st_mtime_ns for p in parts.glob("*.pkl")}
    assert done
    # a new scheduler: the rerun keeps what was done and completes the rest
    cluster = _cluster(port)
    try:
        rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    finally:
        for p in cluster:
            p.kill()
            p.wait()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    pd.testing.assert_frame_equal(pd.read_parquet(out), embedded.table)


@pytest.mark.distributed
def test_the_driver_killed_mid_extraction_takes_its_cluster_down(
    cohort, embedded, tmp_path
):
    import psutil

    pytest.importorskip("distributed")
    out, parts = tmp_path / "f.parquet", tmp_path / "parts"
    cmd = [sys.executable, "-m", "features", "extract", str(cohort), "--out",
           str(out), "--dask", "local:2", "--partitions", str(parts)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    _wait_for_partitions(parts, 3)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children
    proc.kill()
    proc.wait()
    # the LocalCluster's processes notice their parent is gone and exit
    gone, alive = psutil.wait_procs(children, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))
    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out), embedded.table)
