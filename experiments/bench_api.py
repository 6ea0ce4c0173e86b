"""Predict API under load: one-record ``POST /predict`` over loopback.

Usage: ``python experiments/bench_api.py [--requests 10000] [--concurrency 1 8 32]
[--workers 1 2] [--model URI --tracking-uri URI]``.

Without ``--model``, serves the XGBoost bundle of ``experiments/bench_score.py``
(training's default calibrated XGBoost, cached under ``outputs/bench/``). For each
``--workers`` setting it starts ``python -m serve api`` on a free loopback port,
then for each concurrency sends ``--requests`` one-record requests (rows of the
simulated cohort, in turn) from that many concurrent clients (aiohttp; the load
generator connects to 127.0.0.1 only and never sends more than ``--requests``).
It prints requests/s, p50/p99/max latency and errors per setting, the ratio of
throughput at the highest to the lowest concurrency, and checks that the answers
equal ``serve.predict.predict`` on the same rows, one record at a time (the server
batches concurrent requests together; each answer must be the one it gets alone).

Goals (issue 14): at concurrency 32 no lower throughput than at 1, >= 500
requests/s, p99 <= 100 ms, 0 errors.

Adversarial mix (issue 27, ``--attackers N``, default 2): at the highest
concurrency, valid clients again, beside N clients that send, one after the
other, bodies just under the body limit holding one record with as many unknown
keys as fit (~170,000 in 5 MB). Printed: the valid requests' p99 beside their
p99 without attackers (same server, same run), and the slowest attack answer.
Goals: every attack answered 422 in under 1 s; the valid p99 no more than 100 ms
above the p99 without attackers. ``--attack-interval S`` paces each attacker
(default 0: back to back; the load generator shares this machine's cores, so
back-to-back 5 MB uploads also measure the generator).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, tracking: str | None, workers: int, log: Path):
    import requests

    port = free_port()
    cmd = [sys.executable, "-m", "serve", "api", "--model", model, "--port", str(port)]
    cmd += ["--workers", str(workers)]
    if tracking:
        cmd += ["--tracking-uri", tracking]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the API exited {proc.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    stop(proc)
    sys.exit(f"the API did not answer in 180 s:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


async def load(url: str, bodies: list[bytes], n: int, concurrency: int):
    """Send ``n`` requests from ``concurrency`` clients; latencies (s), errors,
    the answers of the first ``len(bodies)`` requests, and the wall time."""
    import aiohttp

    assert url.startswith("http://127.0.0.1:")  # loopback only
    latencies = np.zeros(n)
    answers: dict[int, dict] = {}
    errors = 0
    counter = iter(range(n))

    async def client(session):
        nonlocal errors
        for i in counter:
            body = bodies[i % len(bodies)]
            t = time.perf_counter()
            try:
                async with session.post(
                    f"{url}/predict",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    payload = await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok, payload = False, b""
            latencies[i] = time.perf_counter() - t
            if not ok:
                errors += 1
            elif i < len(bodies):
                answers[i] = json.loads(payload)["predictions"][0]

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return latencies, errors, answers, wall


def attack_body(max_bytes: int) -> bytes:
    """One record of unknown keys, as many as fit under ``max_bytes``."""
    keys, size = [], 20
    while size + 30 < max_bytes - 1000:
        keys.append(f'"unknown_column_{len(keys):07d}": 1.5')
        size += len(keys[-1]) + 2
    return ('{"records": [{' + ", ".join(keys) + "}]}").encode()


async def adversarial(url: str, bodies, attack: bytes, n: int, concurrency: int,
                      attackers: int, interval: float):  # fmt: skip
    """``n`` valid requests from ``concurrency`` clients while ``attackers``
    clients send ``attack`` bodies (each waiting ``interval`` s between them; 0:
    back to back) until the valid ones are done: the valid latencies, the attack
    latencies and the attack status codes."""
    import aiohttp

    assert url.startswith("http://127.0.0.1:")  # loopback only
    latencies, counter, done = np.zeros(n), iter(range(n)), asyncio.Event()
    attack_times: list[float] = []
    attack_codes: list[int] = []
    headers = {"Content-Type": "application/json"}

    async def valid(session):
        for i in counter:
            t = time.perf_counter()
            async with session.post(
                f"{url}/predict", data=bodies[i % len(bodies)], headers=headers
            ) as response:
                await response.read()
            latencies[i] = time.perf_counter() - t

    async def attacker(session):
        while not done.is_set():
            t = time.perf_counter()
            async with session.post(
                f"{url}/predict", data=attack, headers=headers
            ) as response:
                await response.read()
                attack_codes.append(response.status)
            attack_times.append(time.perf_counter() - t)
            await asyncio.sleep(interval)

    connector = aiohttp.TCPConnector(limit=concurrency + attackers)
    async with aiohttp.ClientSession(connector=connector) as session:
        attacks = [asyncio.create_task(attacker(session)) for _ in range(attackers)]
        await asyncio.gather(*(valid(session) for _ in range(concurrency)))
        done.set()
        await asyncio.gather(*attacks)
    return latencies, np.array(attack_times), attack_codes


def expected_answers(model: str, tracking: str | None, records: list[dict]):
    """``predict`` on each record alone, as the server answers a lone request."""
    from serve.api import records_to_frame
    from serve.bundle import load_bundle
    from serve.predict import predict

    bundle = load_bundle(model, tracking)
    out = []
    for record in records:
        frame = records_to_frame([record], bundle)
        out.append(predict(bundle, frame, source="request").iloc[0].to_dict())
    return out


def same(answer: dict, expected: dict) -> bool:
    for key, want in expected.items():
        got = answer.get(key)
        if isinstance(want, float) and not isinstance(want, bool):
            if math.isnan(want):
                if got is not None and not (isinstance(got, float) and math.isnan(got)):
                    return False
            elif got is None or abs(got - want) > 1e-9:
                return False
        elif (
            key not in ("model",)
            and str(got) != str(want)
            and not (got is None and pd.isna(want))
        ):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default=None)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--check", type=int, default=200,
                        help="distinct records whose answers are checked")  # fmt: skip
    parser.add_argument("--attackers", type=int, default=2,
                        help="clients sending unknown keys (0: none)")  # fmt: skip
    parser.add_argument("--attack-interval", type=float, default=0.0,
                        help="seconds between an attacker's requests")  # fmt: skip
    parser.add_argument("--max-body-bytes", type=int, default=5_000_000,
                        help="the server's limit (its default)")  # fmt: skip
    args = parser.parse_args()

    import bench_score

    from serve.bundle import load_bundle

    model = args.model or bench_score.build_model(400, 0)
    features = sorted(Path("outputs/bench").glob("score-features-n400-seed0.parquet"))
    bundle = load_bundle(model, args.tracking_uri)
    if features:
        table = pd.read_parquet(features[0])
    else:
        from features.extract import extract_features
        from features.simulate.cohort import simulate_cohort

        cohort = Path("outputs/bench/api-cohort")
        if not cohort.exists():  # a second run reuses the first one's cohort
            simulate_cohort(cohort, n=400, seed=0)
        table = extract_features(cohort).table
    columns = ["participant_id", *bundle.feature_columns]
    records = []
    for row in table[columns].head(args.check).to_dict(orient="records"):
        records.append({k: (v.item() if hasattr(v, "item") else v)
                        for k, v in row.items() if not pd.isna(v)})  # fmt: skip
    bodies = [json.dumps({"records": [r]}).encode() for r in records]
    expected = expected_answers(model, args.tracking_uri, records)

    print(f"# bench_api: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; model {bundle.version}; "
          f"{args.requests} one-record requests per setting")  # fmt: skip
    print(f"{'workers':>7} {'conc':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'errors':>6} {'answers':>8}")  # fmt: skip
    log_dir = Path("outputs/bench")
    log_dir.mkdir(parents=True, exist_ok=True)
    for workers in args.workers:
        proc, url = start_server(
            model, args.tracking_uri, workers, log_dir / f"api-w{workers}.log"
        )
        rates, tails, failed = {}, {}, {}
        try:
            asyncio.run(load(url, bodies, min(200, args.requests), 4))  # warm-up
            for c in args.concurrency:
                lat, errors, answers, wall = asyncio.run(
                    load(url, bodies, args.requests, c)
                )
                wrong = sum(not same(a, expected[i]) for i, a in answers.items())
                rates[c] = args.requests / wall
                ms = 1000 * np.percentile(lat, [50, 99])
                tails[c], failed[c] = ms[1], errors + wrong
                print(f"{workers:>7} {c:>5} {rates[c]:>8.0f} {ms[0]:>8.1f} "
                      f"{ms[1]:>8.1f} {1000 * lat.max():>8.1f} {errors:>6} "
                      f"{len(answers) - wrong:>4}/{len(answers):<3}")  # fmt: skip
            if args.attackers:
                c = max(args.concurrency)
                attack = attack_body(args.max_body_bytes)
                lat, slow, codes = asyncio.run(adversarial(
                    url, bodies, attack, args.requests, c, args.attackers,
                    args.attack_interval,
                ))  # fmt: skip
                p99 = 1000 * np.percentile(lat, 99)
                print(f"  workers {workers}, adversarial: {c} valid clients beside "
                      f"{args.attackers} sending (every {args.attack_interval:g} s) "
                      f"{len(attack) / 1e6:.1f} MB bodies of "
                      f"unknown keys ({len(codes)} sent, status "
                      f"{sorted(set(codes))}): valid p99 {p99:.1f} ms (without "
                      f"attackers {tails[c]:.1f} ms, +{p99 - tails[c]:.1f}); slowest "
                      f"attack answer {1000 * slow.max():.0f} ms")  # fmt: skip
                delay = p99 - tails[c]
                attacks_refused = slow.max() < 1 and set(codes) == {422}
        finally:
            stop(proc)
        lo, hi = min(args.concurrency), max(args.concurrency)
        print(f"  workers {workers}: throughput at concurrency {hi} / at {lo} = "
              f"{rates[hi] / rates[lo]:.2f} (goal >= 1)")  # fmt: skip
        goals = {
            f"c{hi} >= c{lo} throughput": rates[hi] >= rates[lo],
            f"c{hi} >= 500 req/s": rates[hi] >= 500,
            f"c{hi} p99 <= 100 ms": tails[hi] <= 100,
            "no errors or wrong answers": not any(failed.values()),
        }
        if args.attackers:
            goals["every attack answered 422 in < 1 s"] = attacks_refused
            goals["valid p99 +<= 100 ms beside attackers"] = delay <= 100
        met = [f"{k}: {'met' if v else 'NOT met'}" for k, v in goals.items()]
        print(f"  workers {workers} goals: " + "; ".join(met))


if __name__ == "__main__":
    main()
