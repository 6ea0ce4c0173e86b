"""Command line: ``python -m serve score|explain|monitor|api --model URI ...``.

- ``score (--cohort DIR | --features FILE) --out FILE``: predictions table (.csv or
  .parquet), written atomically; rows that cannot be scored are kept with the reason.
- ``explain (--cohort DIR | --features FILE) --out report.html``: self-contained
  HTML explanation report.
- ``monitor (--cohort DIR | --features FILE) --out monitor.html|.csv``: each
  participant's visits scored, key markers against the controls and the expected
  course of ALS, rates per year with intervals, flags.
- ``api [--host 127.0.0.1] [--port 8000] [--token-file F | --insecure]``: the
  predict API (FastAPI on uvicorn); a non-loopback host needs a bearer token.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from common.cli import run_command, setup_logging
from serve.config import (
    DEFAULT_MODEL,
    DEFAULT_TRACKING_URI,
    ApiConfig,
    ExplainConfig,
    ModelSource,
    MonitorConfig,
    ScoreConfig,
)

log = logging.getLogger("serve")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "score": "write a predictions table (.csv or .parquet)",
        "explain": "write a self-contained HTML explanation report",
        "monitor": "follow each participant over visits (.html, .csv or .parquet)",
        "api": "serve the predict API over HTTP",
    }
    for name, what in commands.items():
        p = sub.add_parser(name, help=what)
        p.add_argument(
            "--model",
            default=DEFAULT_MODEL,
            help="models:/NAME@alias, models:/NAME/VERSION, runs:/ID/model or a "
            f"local model directory (default {DEFAULT_MODEL})",
        )
        p.add_argument(
            "--tracking-uri",
            default=None,
            help="MLflow tracking URI (precedence: this option > "
            f"$MLFLOW_TRACKING_URI > {DEFAULT_TRACKING_URI})",
        )
        p.add_argument(
            "--registry-uri",
            default=None,
            help="MLflow model registry URI (this option > $MLFLOW_REGISTRY_URI > "
            "the tracking URI)",
        )
        p.add_argument(
            "--trust-unverified-model",
            action="store_true",
            help="load a model folder that has no manifest.json: its card and model "
            "file are then NOT checked against the hashes its trainer wrote (it is "
            "still read only as skops with this package's trusted types)",
        )
        if name == "api":
            p.add_argument("--host", default="127.0.0.1", help="default loopback")
            p.add_argument("--port", type=int, default=8000)
            p.add_argument(
                "--token-file",
                type=Path,
                default=None,
                help="file holding a bearer token that every request but /health "
                "must send; required to bind a non-loopback --host",
            )
            p.add_argument(
                "--insecure",
                action="store_true",
                help="allow a non-loopback --host without --token-file",
            )
            p.add_argument(
                "--max-body-bytes",
                type=int,
                default=5_000_000,
                help="refuse larger requests with 413",
            )
            p.add_argument("--max-records", type=int, default=10_000)
            p.add_argument(
                "--workers",
                type=int,
                default=1,
                help="server processes, each with the model loaded (e.g. one per core)",
            )
            p.add_argument(
                "--max-explain",
                type=int,
                default=100,
                help="records per /explain request",
            )
            continue
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--cohort", type=Path, help="cohort directory")
        src.add_argument(
            "--features", type=Path, help="features table (.parquet .csv .tsv .xlsx)"
        )
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--overwrite", action="store_true", help="replace --out")
        if name == "score":
            p.add_argument(
                "--chunk-size",
                type=int,
                default=50_000,
                help="rows read, scored and written at a time",
            )
            p.add_argument("--no-progress", action="store_true")
            _dask_option(p, "score the chunks")
        elif name == "monitor":
            p.add_argument(
                "--max-subjects",
                type=int,
                default=200,
                help="participants given their own section of the HTML (first N)",
            )
        else:
            p.add_argument(
                "--max-subjects",
                type=int,
                default=200,
                help="subjects given their own section (the first N)",
            )
            p.add_argument("--top", type=int, default=12, help="features per chart")
            p.add_argument("--seed", type=int, default=0)
            _dask_option(p, "compute the SHAP values")
    return parser


def _dask_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help=f"{what} on a Dask cluster: 'local', 'local:N' or tcp://host:8786 "
        "(needs pip install '.[dask]')",
    )


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Recoverable data problems, as one log line each (no source line)."""
    log.warning("warning: %s", message)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit status."""
    args = _parser().parse_args(argv)
    setup_logging(quiet=("mlflow", "alembic", "shap", "matplotlib"))
    if args.command != "api":  # the API logs no warning text (it may hold values)
        warnings.showwarning = _log_warning
    source = ModelSource(
        args.model,
        args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None,
        args.registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or None,
        unverified=args.trust_unverified_model,
    )
    return run_command(log, lambda: _run(args, source))


def _run(args: argparse.Namespace, source: ModelSource) -> int:
    """Run the command of ``args``; returns its exit status (errors are raised)."""
    if args.command == "score":
        from serve.score import run_score

        report = run_score(
            ScoreConfig(
                source,
                args.out,
                cohort=args.cohort,
                features=args.features,
                overwrite=args.overwrite,
                chunk_size=args.chunk_size,
                progress=not args.no_progress,
                dask=args.dask,
            )
        )
        log.info("%s", report.summary())
        return 0 if report.n_scored else 1
    if args.command == "explain":
        from serve.report import run_explain

        out = run_explain(
            ExplainConfig(
                source,
                args.out,
                cohort=args.cohort,
                features=args.features,
                overwrite=args.overwrite,
                max_subjects=args.max_subjects,
                top=args.top,
                seed=args.seed,
                dask=args.dask,
            )
        )
        log.info("wrote the explanation report -> %s", out)
        return 0
    if args.command == "monitor":
        from serve.monitor import run_monitor

        out, result = run_monitor(
            MonitorConfig(
                source,
                args.out,
                cohort=args.cohort,
                features=args.features,
                overwrite=args.overwrite,
                max_subjects=args.max_subjects,
            )
        )
        v = result.visits
        log.info(
            "monitored %d participants over %d visits (%d flagged) -> %s",
            v["participant_id"].nunique(),
            len(v),
            int((v["flags"] != "").sum()),
            out,
        )
        return 0
    from serve.api import run_api

    run_api(
        ApiConfig(
            source,
            host=args.host,
            port=args.port,
            max_body_bytes=args.max_body_bytes,
            max_records=args.max_records,
            max_explain=args.max_explain,
            token_file=args.token_file,
            insecure=args.insecure,
            workers=args.workers,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
