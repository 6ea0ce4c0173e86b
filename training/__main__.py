"""Command line: ``python -m training [--config F] [--cohort DIR | --features F]``
and ``python -m training analyze [--plan PLAN.toml] (--cohort DIR | --features F)
--out DIR``.

With no arguments: simulate (or reuse) the default simulated cohort, extract its
features, run nested cross-validation of every model family, refit the champion and
register it in MLflow as ``models:/als-mimics-dx@champion``. Options override the
``--config`` TOML file (keys documented in experiments/default.toml).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from common.cli import run_command, setup_logging
from models.estimators import FoldFallbackWarning
from training.config import DEFAULT_TRACKING_URI, TASKS, TrainConfig

log = logging.getLogger("training")

# option -> config key (None: same name with dashes turned into underscores)
_OPTIONS = {
    "--cohort": ("cohort", Path, "cohort directory (default: simulated)"),
    "--features": ("features", Path, "features table: .csv .tsv .parquet .xlsx"),
    "--label-column": ("label_column", str, "diagnosis column of --features"),
    "--group-column": (
        "group_column",
        str,
        "participant column of --features (default participant_id; without one "
        "each row is one participant)",
    ),
    "--site-column": ("site_column", str, "site column of --features"),
    "--age-column": ("age_column", str, "age column (years) of --features"),
    "--sex-column": ("sex_column", str, "sex column of --features"),
    "--n": ("n_subjects", int, "simulated cohort size"),
    "--seed": ("seed", int, "the seed of every random choice"),
    "--task": ("task", str, f"one of {', '.join(TASKS)}"),
    "--visits": (
        "visits",
        str,
        "repeated visits: baseline (default; each participant's first) or all",
    ),
    "--outer-folds": ("outer_folds", int, "outer CV folds"),
    "--repeats": ("repeats", int, "outer CV repeats"),
    "--inner-folds": ("inner_folds", int, "inner CV folds"),
    "--trials": ("n_trials", int, "Optuna trials per search"),
    "--calibrate": ("calibrate", str, "temperature (default), sigmoid, isotonic, none"),
    "--alpha": ("alpha", float, "conformal miscoverage per class"),
    "--bootstrap": ("n_bootstrap", int, "bootstrap resamples for CIs"),
    "--permutations": ("n_permutations", int, "permutation-test resamples"),
    "--tracking-uri": (
        "tracking_uri",
        str,
        "MLflow tracking URI (precedence: this option > --config > "
        f"$MLFLOW_TRACKING_URI > {DEFAULT_TRACKING_URI})",
    ),
    "--registry-uri": (
        "registry_uri",
        str,
        "MLflow model registry URI (option > --config > $MLFLOW_REGISTRY_URI > "
        "the tracking URI)",
    ),
    "--optuna-storage": ("optuna_storage", str, "Optuna storage URL"),
    "--experiment": ("experiment", str, "MLflow experiment"),
    "--model-name": ("model_name", str, "registered model name"),
    "--jobs": ("n_jobs", int, "parallel outer folds"),
    "--dask": (
        "dask",
        str,
        "run extraction, outer folds and permutations on a Dask cluster: local, "
        "local:N or tcp://host:8786 (needs pip install '.[dask]')",
    ),
    "--cache-dir": (
        "cache_dir",
        Path,
        "where extracted cohort features are cached (default "
        "$ALSDX_CACHE_DIR/features or ~/.cache/als-mimics-dx/features)",
    ),
}
_LISTS = {
    "--models": ("models", "model families"),
    "--classes": ("classes", "classes of the diagnosis task"),
    "--mimics": ("mimics", "classes pooled as mimics"),
    "--contrast": ("contrast", "two classes, e.g. --contrast ALS MMN"),
    "--label-map": ("label_map", "label codes to classes, e.g. --label-map 1=ALS 0=HC"),
    "--sex-map": ("sex_map", "sex codes to M/F, e.g. --sex-map 1=M 2=F"),
    "--covariates": ("covariates", "covariates of ComBat and the normative model"),
    "--feature-set": (
        "feature_set",
        "modalities the model sees: all (default), objective (imaging, MRS, serum), "
        "imaging, and/or modality names (e.g. --feature-set serum mrs)",
    ),
}
#: Environment variables read when neither an option nor --config sets the key.
ENVIRONMENT = {
    "tracking_uri": "MLFLOW_TRACKING_URI",
    "registry_uri": "MLFLOW_REGISTRY_URI",
}


def parse(
    argv: list[str] | None = None, env: dict[str, str] | None = None
) -> TrainConfig:
    """Build the frozen config: defaults < environment (``MLFLOW_TRACKING_URI``,
    ``MLFLOW_REGISTRY_URI``; ``env`` or ``os.environ``) < ``--config`` file <
    options."""
    p = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="TOML config (experiments/*.toml)")
    for flag, (dest, kind, text) in _OPTIONS.items():
        p.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    for flag, (dest, text) in _LISTS.items():
        p.add_argument(flag, dest=dest, nargs="+", default=None, help=text)
    p.add_argument(
        "--no-harmonize",
        dest="harmonize",
        action="store_false",
        default=None,
        help="skip ComBat site harmonisation",
    )
    p.add_argument(
        "--no-normative",
        dest="normative",
        action="store_false",
        default=None,
        help="skip control-referenced z-scores",
    )
    p.add_argument(
        "--no-covariate-inputs",
        dest="covariates_as_features",
        action="store_false",
        default=None,
        help="age and sex adjust ComBat and the normative model but are not "
        "classifier inputs",
    )
    args = vars(p.parse_args(argv))
    config = args.pop("config")
    given = {k: v for k, v in args.items() if v is not None}
    from_file = TrainConfig.read_toml(config) if config is not None else {}
    environ = os.environ if env is None else env
    for key, variable in ENVIRONMENT.items():
        if key not in given and key not in from_file and environ.get(variable):
            given[key] = environ[variable]
    if config is not None:
        return TrainConfig.from_toml(config, **given)
    return TrainConfig().updated(**given)


def parse_analyze(argv: list[str]):
    """The frozen config of ``python -m training analyze``."""
    from training.analysis.run import DEFAULT_PLAN, AnalyzeConfig

    p = argparse.ArgumentParser(
        prog="python -m training analyze",
        description="Run an analysis plan (group comparisons, correlations, "
        "regressions, single-marker AUCs, Fisher tests, EFNS/PNS criteria) on a "
        "cohort and write results.csv, one CSV per measure and report.html. "
        "Shipped plans: experiments/analyses/. Without --cohort or --features, the "
        "default simulated cohort.",
    )
    p.add_argument("--plan", type=Path, default=DEFAULT_PLAN, help="plan TOML file")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--cohort", type=Path, help="cohort directory")
    src.add_argument("--features", type=Path, help="features table")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--label-column", help="diagnosis column (overrides the plan's)")
    p.add_argument(
        "--tracking-uri",
        help="log the outputs to this MLflow store (default $MLFLOW_TRACKING_URI "
        "when set, else no logging)",
    )
    p.add_argument("--experiment", default="als-mimics-analyses")
    p.add_argument("--n", dest="n_subjects", type=int, default=400,
                   help="size of the default simulated cohort")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated cohort")
    p.add_argument("--jobs", dest="n_jobs", type=int, default=-1)
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="extract the cohort on a Dask cluster: local, local:N or "
        "tcp://host:8786 (needs pip install '.[dask]')",
    )
    p.add_argument("--overwrite", action="store_true", help="replace outputs in --out")
    args = vars(p.parse_args(argv))
    if args["tracking_uri"] is None and os.environ.get("MLFLOW_TRACKING_URI"):
        args["tracking_uri"] = os.environ["MLFLOW_TRACKING_URI"]
    return AnalyzeConfig(**args)


def _report(work: Callable[[], str]) -> int:
    """Run ``work`` and print what it returns: 0; a problem with the inputs: one
    line, 2; a bug: one line (the traceback with ALSDX_DEBUG=1), 3."""

    def printed() -> int:
        print(work())
        return 0

    return run_command(log, printed)


def _analyze(argv: list[str]) -> str:
    from training.analysis.run import run, summary

    cfg = parse_analyze(argv)
    analysis = run(cfg)
    logged = f"; logged to MLflow at {cfg.tracking_uri}" if cfg.tracking_uri else ""
    return (
        f"{summary(analysis)}\nwrote {cfg.out}/results.csv, one CSV per measure and "
        f"report.html{logged}"
    )


def _train(argv: list[str]) -> str:
    from training.run import run

    return run(parse(argv)).summary()


def main(argv: list[str] | None = None) -> int:
    """Run training (or ``analyze``); returns the exit status."""
    setup_logging(quiet=("mlflow", "alembic", "optuna"))
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["analyze"]:
        return _report(lambda: _analyze(argv[1:]))
    # The fitted steps' fallbacks on small folds are counted into the run's notes
    # (run_notes.json) rather than printed once per fold; other warnings show.
    warnings.filterwarnings("ignore", category=FoldFallbackWarning)
    return _report(lambda: _train(argv))


if __name__ == "__main__":
    sys.exit(main())
