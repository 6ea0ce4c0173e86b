"""Command line: ``python -m serve score|explain --model URI --cohort DIR --out F``.

``--features FILE`` (a features table) may replace ``--cohort DIR``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("serve")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m serve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, what in (
        ("score", "predictions table (.csv or .parquet)"),
        ("explain", "self-contained HTML report"),
    ):
        p = sub.add_parser(name, help=f"write a {what}")
        p.add_argument(
            "--model",
            default="models:/als-mimics-dx@champion",
            help="model URI: models:/NAME@alias, runs:/ID/model or a path",
        )
        p.add_argument(
            "--tracking-uri",
            default=None,
            help="MLflow tracking URI (default sqlite:///mlflow.db)",
        )
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--cohort", type=Path, help="cohort directory")
        src.add_argument("--features", type=Path, help="features table")
        p.add_argument("--out", type=Path, required=True, help=what)
        p.add_argument("--overwrite", action="store_true", help="replace --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        if args.out.exists() and not args.overwrite:
            raise FileExistsError(f"{args.out} exists; pass --overwrite to replace it.")
        from serve.bundle import load_bundle
        from serve.predict import load_input, predict

        bundle = load_bundle(args.model, args.tracking_uri)
        table = load_input(args.cohort, args.features)
        if args.command == "score":
            from features.extract import write_table

            preds = predict(bundle, table, source=str(args.cohort or args.features))
            write_table(preds, args.out, overwrite=args.overwrite)
            log.info(
                "scored %d subject-visits with %s -> %s",
                len(preds),
                bundle.version,
                args.out,
            )
        else:
            from serve.explain import write_report

            write_report(bundle, table, args.out, overwrite=args.overwrite)
            log.info(
                "wrote the explanation report of %d subject-visits -> %s",
                len(table),
                args.out,
            )
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        log.error("error: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
