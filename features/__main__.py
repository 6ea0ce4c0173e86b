"""Command line: ``python -m features simulate|extract``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from common.cli import run_command, setup_logging

log = logging.getLogger("features")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m features", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="write a simulated cohort directory")
    sim.add_argument(
        "--out", type=Path, required=True, help="cohort directory to create"
    )
    sim.add_argument("--n", type=int, default=400, help="number of subjects (400)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (0)")
    sim.add_argument(
        "--sessions",
        type=int,
        default=1,
        help="visits per subject, baseline included (1); > 1 simulates follow-up "
        "with dropout",
    )
    sim.add_argument(
        "--interval-months",
        type=float,
        default=6.0,
        help="months between planned visits (6)",
    )
    sim.add_argument(
        "--bold",
        action="store_true",
        help="also write fMRIPrep-style 4D BOLD (small, 8 mm) for the visits with "
        "rs-fMRI: the input of group ICA in analysis plans",
    )
    sim.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists"
    )
    ext = sub.add_parser("extract", help="extract the features table of a cohort")
    ext.add_argument("cohort", type=Path, help="cohort directory")
    ext.add_argument(
        "--out",
        type=Path,
        required=True,
        help="features table to write (.parquet, .csv or .tsv)",
    )
    ext.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad value instead of reporting it",
    )
    ext.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists"
    )
    ext.add_argument(
        "--jobs", type=int, default=-1, help="parallel workers (all cores)"
    )
    ext.add_argument(
        "--resample",
        action="store_true",
        help="resample maps not on the MNI152 2 mm grid (reported) instead of "
        "rejecting them",
    )
    ext.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="extract on a Dask cluster: 'local', 'local:N' (N worker processes "
        "here) or a scheduler address tcp://host:8786 (needs pip install '.[dask]')",
    )
    ext.add_argument(
        "--partitions",
        type=Path,
        help="keep each subject-visit's values in this folder as they are "
        "computed and reuse them on a rerun (with --dask the default is "
        "<out>.partitions/, removed once the table is written)",
    )
    doc = sub.add_parser("dictionary", help="write the features data dictionary")
    doc.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    args = parser.parse_args(argv)
    setup_logging()
    return run_command(log, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    """Run the subcommand of ``args``; returns 0 (errors are raised)."""
    if args.command == "simulate":
        from features.simulate.cohort import SIMULATED_NOTICE, simulate_cohort

        out = simulate_cohort(
            args.out,
            n=args.n,
            seed=args.seed,
            overwrite=args.overwrite,
            sessions=args.sessions,
            interval_months=args.interval_months,
            bold=args.bold,
        )
        log.info("wrote %d simulated subjects to %s\n%s", args.n, out, SIMULATED_NOTICE)
    elif args.command == "dictionary":
        from common.files import atomic_write
        from common.table_io import output_path
        from features.dictionary import to_markdown

        output_path(args.out, overwrite=True, types=(".md",))
        with atomic_write(args.out, overwrite=True) as tmp:
            tmp.write_text(to_markdown() + "\n", encoding="utf-8")
        log.info("wrote %s", args.out)
    else:
        import shutil

        from common.executor import executor
        from common.table_io import output_path, write_table
        from features.extract import extract_features

        output_path(args.out, overwrite=args.overwrite)  # before the work
        partitions = args.partitions
        if partitions is None and args.dask:
            partitions = args.out.with_name(args.out.name + ".partitions")
        with executor(args.dask):
            result = extract_features(
                args.cohort,
                strict=args.strict,
                n_jobs=args.jobs,
                resample=args.resample,
                progress=True,
                partitions=partitions,
            )
        write_table(result.table, args.out, overwrite=args.overwrite)
        if partitions is not None and args.partitions is None:
            shutil.rmtree(partitions, ignore_errors=True)
        log.info("%s\nwrote %s", result.summary(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
