"""Scoring throughput beside raw XGBoost, SHAP throughput, and peak memory.

Usage: ``python experiments/bench_score.py [--rows 100000] [--big-rows 1000000]
[--chunk-size 50000] [--repeats 5] [--model URI]``.

Without ``--model``, builds the bundle training would register for XGBoost (the
default sigmoid calibration: three boosters, one per internal fold) on a simulated
cohort (cached under ``outputs/bench/``) and saves it as a local MLflow model, so
every stage loads it the way ``serve`` does. Then, on the same features:

(a) ``serve.predict``: input checks, probabilities (column check, ComBat,
    normative z-scores, the calibrated boosters), conformal set, ALS-vs-mimics,
    out-of-distribution score and flag, unseen-site flag, modalities used;
(b) raw XGBoost: ``Booster.inplace_predict`` of every booster the pipeline holds,
    on the already-transformed feature matrix (the same trees, nothing else);
    (b1) one booster only, for reference;
(c) SHAP: ``serve.explain.shap_values`` (subjects per second);
(d) peak resident memory of ``python -m serve score`` on a ``--rows`` and a
    ``--big-rows`` Parquet file, chunked, each in a fresh process, beside reading
    the whole ``--rows`` file and scoring it in one call.

Stages (a)-(c) alternate over ``--repeats`` rounds; the best time counts.
Goals: (a) at least half of (b)'s throughput; (d) chunked peak memory flat in the
file size (bounded by the chunk).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path("outputs/bench")
# Peak RSS (KiB) of the measured process itself. Not getrusage's ru_maxrss: on
# Linux a child inherits its parent's high-water mark at fork, so every child of
# this (large) process would report at least the parent's size.
_HWM = (
    "next(int(s.split()[1]) for s in open('/proc/self/status') "
    "if s.startswith('VmHWM'))"
)


def build_model(n: int, seed: int) -> str:
    """Fit training's XGBoost bundle on a simulated cohort; save it; return its path."""
    import mlflow

    from common.schema import MIMICS
    from features.extract import extract_features, feature_columns
    from features.simulate.cohort import simulate_cohort
    from models.locked import LockedModel
    from models.ood import NearestClassDistance
    from models.pipelines import SKEWED, SKOPS_TRUSTED_TYPES, build_pipeline
    from training import card

    path = BENCH / f"score-model-n{n}-seed{seed}"
    if path.exists():
        return str(path)
    cohort = BENCH / f"score-cohort-n{n}-seed{seed}"
    if not cohort.exists():
        simulate_cohort(cohort, n=n, seed=seed)
    table = extract_features(cohort).table
    table.to_parquet(BENCH / f"score-features-n{n}-seed{seed}.parquet")
    columns = [*feature_columns(table.drop(columns=["participant_id"])), "site"]
    X = table[columns].assign(site=table["site"].astype("string"))
    y = table["diagnosis"].astype(str).to_numpy()
    classes = ["ALS", "MMN", "NMO", "MS", "HC"]
    params = {
        "n_estimators": 200,
        "max_depth": 4,
        "learning_rate": 0.1,
        "subsample": 0.9,
        "colsample_bytree": 0.8,
        "min_child_weight": 1.0,
        "reg_lambda": 1.0,
    }
    pipe = build_pipeline("xgboost", params, columns, seed=seed)
    model = LockedModel(pipe, NearestClassDistance(log_columns=SKEWED)).fit(X, y)
    facts = card.CardFacts(
        family="xgboost",
        task="diagnosis",
        classes=tuple(classes),
        mimics=MIMICS,
        conformal={"alpha": 0.1, "thresholds": dict.fromkeys(classes, 0.9)},
        sites=tuple(sorted(X["site"].dropna().unique())),
        simulated=True,
    )
    metadata = card.model_card(model, X, y, facts)
    mlflow.sklearn.save_model(
        model,
        path,
        metadata=metadata,
        skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
    )
    return str(path)


def features_file(source: pd.DataFrame, rows: int, seed: int) -> Path:
    """A Parquet file of ``rows`` subject-visits resampled from ``source``,
    written in slices so that making it needs little memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = BENCH / f"score-features-{rows}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    tmp = path.with_name(path.name + ".tmp")
    writer = None
    for lo in range(0, rows, 100_000):
        take = source.iloc[rng.integers(0, len(source), min(100_000, rows - lo))]
        take = take.assign(
            participant_id=[f"sub-{i:07d}" for i in range(lo, lo + len(take))]
        )
        table = pa.Table.from_pandas(take.reset_index(drop=True), preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table.cast(writer.schema))
    writer.close()
    tmp.replace(path)
    return path


def boosters(bundle) -> list:
    """Every XGBoost booster the pipeline's classifier holds."""
    clf = bundle.pipeline.steps[-1][1]
    inner = [c.estimator for c in clf.calibrated_.calibrated_classifiers_]
    return [b.estimator_.get_booster() for b in inner]


def best(fn, repeats: int) -> float:
    return min(_timed(fn) for _ in range(repeats))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_memory(args: list[str]) -> tuple[float, float]:
    """Peak RSS (MiB, VmHWM) and wall time of ``args`` run in a fresh process."""
    code = (
        "import runpy, sys, time; t = time.perf_counter(); "
        f"sys.argv = {args!r}; "
        "rc = 0\n"
        "try:\n    runpy.run_module(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as e:\n    rc = e.code\n"
        f"print('RESULT', rc, {_HWM}, "
        "time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    line = [s for s in out.stdout.splitlines() if s.startswith("RESULT")]
    if not line or line[0].split()[1] != "0":
        raise RuntimeError(f"{args} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    _, _, kib, secs = line[0].split()
    return int(kib) / 1024, float(secs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--big-rows", type=int, default=1_000_000)
    p.add_argument("--chunk-size", type=int, default=50_000)
    p.add_argument("--shap-rows", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--model", default=None, help="model URI (default: build one)")
    p.add_argument("--n", type=int, default=300, help="simulated training cohort")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    BENCH.mkdir(parents=True, exist_ok=True)
    import xgboost

    from serve.bundle import load_bundle
    from serve.explain import shap_values
    from serve.predict import predict, prepare_input

    uri = args.model or build_model(args.n, args.seed)
    bundle = load_bundle(uri)
    source = pd.read_parquet(
        BENCH / f"score-features-n{args.n}-seed{args.seed}.parquet"
    )
    small = features_file(source, args.rows, args.seed)
    big = features_file(source, args.big_rows, args.seed)
    frame = pd.read_parquet(small)
    inputs, _ = prepare_input(bundle, frame)
    matrix = bundle.pipeline[:-1].transform(inputs).to_numpy(np.float32)
    trees = boosters(bundle)
    n = len(frame)
    print(
        f"python {platform.python_version()}, xgboost {xgboost.__version__}, "
        f"{len(trees)} boosters x {trees[0].num_boosted_rounds()} rounds, "
        f"{matrix.shape[1]} model inputs, {n} rows"
    )
    times = {"serve": [], "raw": [], "raw1": [], "shap": []}
    shap_frame = inputs.head(args.shap_rows)
    for _ in range(args.repeats):
        times["serve"].append(_timed(lambda: predict(bundle, frame)))
        times["raw"].append(_timed(lambda: [b.inplace_predict(matrix) for b in trees]))
        times["raw1"].append(_timed(lambda: trees[0].inplace_predict(matrix)))
        times["shap"].append(_timed(lambda: shap_values(bundle, shap_frame)))
    rate = {
        k: (args.shap_rows if k == "shap" else n) / min(v) for k, v in times.items()
    }
    print(f"\nthroughput (subjects/s, best of {args.repeats}):")
    print(
        f"  (a)  serve.predict (probabilities + sets + flags) {rate['serve']:>10,.0f}"
    )
    print(f"  (b)  raw xgboost inplace_predict, all boosters    {rate['raw']:>10,.0f}")
    print(f"  (b1) raw xgboost inplace_predict, one booster     {rate['raw1']:>10,.0f}")
    print(f"  (c)  SHAP (permutation, whole pipeline)           {rate['shap']:>10,.1f}")
    print(f"  ratio (a)/(b) = {rate['serve'] / rate['raw']:.2f}   (goal >= 0.5)")

    print(f"\npeak memory of `python -m serve score` (chunk {args.chunk_size} rows):")
    runs = {}
    for label, path in (
        (f"{args.rows:,} rows", small),
        (f"{args.big_rows:,} rows", big),
    ):
        out = BENCH / f"scored-{path.stem}.parquet"
        runs[label] = peak_memory(
            [
                "serve",
                "score",
                "--model",
                uri,
                "--features",
                str(path),
                "--out",
                str(out),
                "--overwrite",
                "--no-progress",
                "--chunk-size",
                str(args.chunk_size),
            ]  # fmt: skip
        )
        mib, secs = runs[label]
        print(f"  chunked, {label:>24}: {mib:7.0f} MiB in {secs:6.1f} s")
    whole_mib, whole_s = _whole(small, uri)
    label = f"{args.rows:,} rows"
    print(
        f"  whole file at once, {label:>15}: {whole_mib:7.0f} MiB in {whole_s:6.1f} s"
    )
    small_mib, big_mib = (runs[k][0] for k in runs)
    print(
        f"  ratio chunked peak {args.big_rows:,} / {args.rows:,} rows = "
        f"{big_mib / small_mib:.2f}  (file {args.big_rows / args.rows:.0f}x larger; "
        "goal ~1)"
    )
    summary = {"rates": rate, "memory_mib": {k: v[0] for k, v in runs.items()}}
    (BENCH / "bench_score.json").write_text(json.dumps(summary, indent=2))


def _whole(path: Path, uri: str) -> tuple[float, float]:
    """Peak RSS (MiB) and time of reading ``path`` whole and scoring it at once."""
    code = (
        "import time, warnings; warnings.simplefilter('ignore'); "
        "import pandas as pd; t = time.perf_counter(); "
        "from serve.bundle import load_bundle; from serve.predict import predict; "
        f"predict(load_bundle({uri!r}), pd.read_parquet({str(path)!r})); "
        f"print('RESULT', {_HWM}, "
        "time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    _, kib, secs = next(
        s for s in out.stdout.splitlines() if s.startswith("RESULT")
    ).split()
    return int(kib) / 1024, float(secs)


if __name__ == "__main__":
    main()
