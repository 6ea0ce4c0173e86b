"""Extraction and scoring throughput: embedded vs Dask LocalCluster(1) vs (2).

Usage: ``python experiments/bench_scale.py [--subjects 400] [--rows 200000]
[--chunk-size 20000]``.

On the same data in one run: (a) ``features extract`` of the simulated cohort of
``experiments/bench_score.py`` (``--subjects``, cached under ``outputs/bench/``),
embedded (joblib, all cores) and with ``--dask local:1`` and ``local:2``, each
with fresh partitions; (b) ``serve score`` of a ``--rows`` Parquet file in
``--chunk-size`` chunks with that benchmark's XGBoost bundle, the same three ways.
Prints subject-visits (rows) per second, the ratio to embedded, the per-subject
(per-row) cost in core-seconds, and the peak resident memory of the driver and of
each worker process (VmHWM). The cluster's start-up is timed apart from the work
(a cluster is started once per job on a real system). docs/scaling.md turns the
per-subject and per-row costs into workers and hours for a biobank.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCH = Path("outputs/bench")


def _hwm_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(s.split()[1]) for s in status if s.startswith("VmHWM"))


def _children_hwm_kib() -> list[int]:
    """VmHWM of this process's living child processes (loky workers)."""
    import psutil

    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            with open(f"/proc/{child.pid}/status") as status:
                out.append(
                    next(int(s.split()[1]) for s in status if s.startswith("VmHWM"))
                )
        except (OSError, StopIteration):
            continue
    return out


def run(setting: str | None, work) -> tuple[float, float, list[int]]:
    """(seconds of the work, seconds to start the cluster, workers' peak KiB)."""
    from common.executor import executor

    start = time.perf_counter()
    with executor(setting) as client:
        ready = time.perf_counter()
        work(client)
        seconds = time.perf_counter() - ready
        peaks = (
            list(client.run(_hwm_kib).values())
            if client is not None
            else _children_hwm_kib()
        )
    return seconds, ready - start, peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=400)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    args = parser.parse_args()

    import bench_score

    from features.extract import extract_features
    from features.simulate.cohort import simulate_cohort
    from serve.bundle import load_bundle
    from serve.config import ModelSource, ScoreConfig
    from serve.score import score_file

    cohort = BENCH / f"score-cohort-n{args.subjects}-seed0"
    if not cohort.exists():
        simulate_cohort(cohort, n=args.subjects, seed=0)
    model = bench_score.build_model(args.subjects, 0)
    bundle = load_bundle(model, None)
    table = pd.read_parquet(BENCH / f"score-features-n{args.subjects}-seed0.parquet")
    rows_file = bench_score.features_file(table, args.rows, 0)

    settings = [None, "local:1", "local:2"]
    print(f"# bench_scale: {platform.machine()}, {os.cpu_count()} cores; "
          f"{args.subjects} subject-visits; {args.rows} rows scored in chunks of "
          f"{args.chunk_size}")  # fmt: skip
    print(f"{'stage':<8} {'setting':<9} {'start s':>7} {'work s':>7} {'per s':>8} "
          f"{'ratio':>6} {'core-ms/item':>12} {'worker peak MiB':>16}")  # fmt: skip
    extracted = {}
    for stage in ("extract", "score"):
        base = None
        for setting in settings:
            name = setting or "embedded"
            parts = BENCH / f"scale-partitions-{name}"
            shutil.rmtree(parts, ignore_errors=True)
            out = BENCH / f"scale-scores-{name}.parquet"
            if stage == "extract":
                n = args.subjects

                def work(client, parts=parts, name=name):
                    extracted[name] = extract_features(
                        cohort, partitions=parts if name != "embedded" else None
                    ).table
            else:
                n = args.rows
                cfg = ScoreConfig(
                    ModelSource(model),
                    out,
                    features=rows_file,
                    overwrite=True,
                    chunk_size=args.chunk_size,
                    progress=False,
                )

                def work(client, cfg=cfg, out=out):
                    out.unlink(missing_ok=True)
                    score_file(bundle, cfg, out, client)

            seconds, started, peaks = run(setting, work)
            base = base or seconds
            cores = {"local:1": 1, "local:2": 2}.get(setting, os.cpu_count() or 1)
            peak = max(peaks) / 1024 if peaks else float("nan")
            print(f"{stage:<8} {name:<9} {started:>7.1f} {seconds:>7.1f} "
                  f"{n / seconds:>8.1f} {base / seconds:>6.2f} "
                  f"{1000 * cores * seconds / n:>12.2f} {peak:>16.0f}")  # fmt: skip
            shutil.rmtree(parts, ignore_errors=True)
        if stage == "extract":
            same = all(extracted[k].equals(extracted["embedded"]) for k in extracted)
            print(f"  extraction tables identical to embedded: {same}")
    scores = [pd.read_parquet(BENCH / f"scale-scores-{s or 'embedded'}.parquet")
              for s in settings]  # fmt: skip
    print(f"  score files identical to embedded: "
          f"{all(s.equals(scores[0]) for s in scores)}")  # fmt: skip
    print(f"  driver peak: {_hwm_kib() / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
