"""Command line: ``python -m training [--cohort DIR] [options]``.

With no arguments: simulate (or reuse) the default simulated cohort, extract its
features, run nested cross-validation of every model family, refit the champion and
register it in MLflow as ``models:/als-mimics-dx@champion``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training.config import TrainConfig

log = logging.getLogger("training")


def parse(argv: list[str] | None = None) -> TrainConfig:
    """Build the frozen config from command-line arguments."""
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cohort", type=Path, help="cohort directory (default: simulated)")
    p.add_argument(
        "--n",
        type=int,
        default=d.n_subjects,
        help=f"simulated cohort size ({d.n_subjects})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed ({d.seed})")
    p.add_argument(
        "--models",
        nargs="+",
        default=list(d.models),
        help=f"model families ({' '.join(d.models)})",
    )
    p.add_argument("--outer-folds", type=int, default=d.outer_folds)
    p.add_argument("--inner-folds", type=int, default=d.inner_folds)
    p.add_argument("--trials", type=int, default=d.n_trials, help="Optuna trials")
    p.add_argument(
        "--tracking-uri",
        default=d.tracking_uri,
        help=f"MLflow tracking URI ({d.tracking_uri})",
    )
    p.add_argument(
        "--optuna-storage",
        default=d.optuna_storage,
        help=f"Optuna storage URL ({d.optuna_storage})",
    )
    p.add_argument("--experiment", default=d.experiment)
    p.add_argument("--model-name", default=d.model_name)
    p.add_argument("--jobs", type=int, default=d.n_jobs, help="parallel outer folds")
    a = p.parse_args(argv)
    return TrainConfig(
        cohort=a.cohort,
        n_subjects=a.n,
        seed=a.seed,
        models=tuple(a.models),
        outer_folds=a.outer_folds,
        inner_folds=a.inner_folds,
        n_trials=a.trials,
        tracking_uri=a.tracking_uri,
        optuna_storage=a.optuna_storage,
        experiment=a.experiment,
        model_name=a.model_name,
        n_jobs=a.jobs,
    )


def main(argv: list[str] | None = None) -> int:
    """Run training; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("mlflow", "alembic", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        cfg = parse(argv)
        from training.run import run

        result = run(cfg)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        log.error("error: %s", exc)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
