"""Real ``python -m serve`` and ``python -m features`` processes killed with
SIGKILL mid-way: nothing at the target, and the next run succeeds and removes what
the killed one left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tests import ROOT


def _run(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill_when(proc: subprocess.Popen, appeared, timeout: float = 300) -> None:
    """SIGKILL ``proc`` as soon as ``appeared()`` is true (it must still run)."""
    end = time.monotonic() + timeout
    while not appeared():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < end
        time.sleep(0.01)
    assert proc.poll() is None, "finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    return out


def _serve(trained, command: str, *rest: str) -> list[str]:
    result, cfg = trained
    return ["-m", "serve", command, "--model", result.model_uri,
            "--tracking-uri", cfg.tracking_uri, *rest]  # fmt: skip


def test_score_killed_mid_write_leaves_nothing_then_reruns(
    trained, cohort_table, tmp_path
):
    features = tmp_path / "big.csv"
    pd.concat([cohort_table] * 40, ignore_index=True).to_csv(features, index=False)
    out = tmp_path / "scores.csv"
    args = _serve(trained, "score", "--features", str(features), "--out", str(out),
                  "--chunk-size", "20", "--no-progress")  # fmt: skip
    proc = _run(args, tmp_path)
    # killed while the scores are being written, chunk after chunk
    _kill_when(proc, lambda: any(p.stat().st_size for p in tmp_path.glob(".tmp-*")))
    assert not out.exists()
    [left] = tmp_path.glob(".tmp-*-scores.csv")  # what a killed writer leaves
    _finish(_run(args, tmp_path))
    assert len(pd.read_csv(out)) == 40 * len(cohort_table)
    assert not left.exists()


def test_explain_killed_mid_run_leaves_nothing(trained, cohort_table, tmp_path):
    features = tmp_path / "f.parquet"
    cohort_table.to_parquet(features)
    out = tmp_path / "report.html"
    args = _serve(trained, "explain", "--features", str(features), "--out", str(out))
    proc = _run(args, tmp_path)
    _kill_when(proc, lambda: time.sleep(3) or True)  # loading, explaining
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))
    _finish(_run(args, tmp_path))
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_extract_killed_mid_run_leaves_nothing_then_reruns(small_cohort, tmp_path):
    out = tmp_path / "features.tsv"
    args = ["-m", "features", "extract", str(small_cohort), "--out", str(out),
            "--jobs", "1"]  # fmt: skip
    proc = _run(args, tmp_path)
    _kill_when(proc, lambda: time.sleep(3) or True)  # reading the subjects' files
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))
    _finish(_run(args, tmp_path))
    assert len(pd.read_csv(out, sep="\t")) == 60


def test_two_scorings_to_one_output_never_replace_each_other(
    trained, cohort_table, tmp_path
):
    table = tmp_path / "in.parquet"
    pd.concat([cohort_table] * 20, ignore_index=True).to_parquet(table)
    out = tmp_path / "scores.csv"
    args = _serve(trained, "score", "--features", str(table), "--out", str(out))
    procs = [_run(args, tmp_path) for _ in range(2)]
    said = [p.communicate(timeout=600)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], said  # one wins; the other says so and keeps nothing
    loser = said[[p.returncode for p in procs].index(2)]
    assert str(out) in loser and ("exists" in loser or "appeared" in loser), loser
    assert "Traceback" not in "".join(said)
    assert len(pd.read_csv(out)) == len(cohort_table) * 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "scores.csv"]
