"""Obtain the training table: simulate or reuse the default cohort, extract, cache."""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.extract import extract_features, feature_columns, write_table

log = logging.getLogger(__name__)
CACHE_DIR = Path("outputs") / "cache"


@dataclass(frozen=True)
class TrainingData:
    """Features ``X``, labels ``y``, participant ``groups`` and the full table."""

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    table: pd.DataFrame
    cohort_dir: Path
    fingerprint: str


def default_cohort(simulated_dir: Path, n: int, seed: int) -> Path:
    """Return the cached simulated cohort for (n, seed), simulating it if needed."""
    from features.simulate.cohort import model_version, simulate_cohort

    path = Path(simulated_dir) / f"n{n}-seed{seed}-{model_version()}"
    for stale in Path(simulated_dir).glob(f"n{n}-seed{seed}-*"):
        if stale != path and (stale / "simulation").is_dir():
            log.info("removing %s, simulated by an older simulator version", stale)
            shutil.rmtree(stale)
    if not path.exists():
        log.info(
            "simulating the default cohort (%d subjects, seed %d) into %s ...",
            n,
            seed,
            path,
        )
        simulate_cohort(path, n=n, seed=seed)
    else:
        log.info("reusing the simulated cohort %s", path)
    return path


def cohort_fingerprint(cohort_dir: Path) -> str:
    """Hash of every input file's path, size and content-modification time.

    ``simulation/`` is excluded: ground truth never reaches the trainer.
    """
    digest = hashlib.sha256()
    for p in sorted(Path(cohort_dir).rglob("*")):
        rel = p.relative_to(cohort_dir)
        if p.is_file() and rel.parts[0] != "simulation":
            st = p.stat()
            digest.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def load_cohort(cohort_dir: Path, n_jobs: int = -1) -> TrainingData:
    """Extract (or reuse the cached extraction of) ``cohort_dir`` for training."""
    cohort_dir = Path(cohort_dir)
    fingerprint = cohort_fingerprint(cohort_dir)
    cache = CACHE_DIR / f"features-{fingerprint}.parquet"
    if cache.exists():
        table = pd.read_parquet(cache)
        log.info("reusing extracted features %s", cache)
    else:
        result = extract_features(cohort_dir, n_jobs=n_jobs)
        if result.issues:
            log.warning("%s", result.summary())
        table = result.table
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_table(table, cache, overwrite=True)
    labelled = table[table["diagnosis"].notna()].reset_index(drop=True)
    if len(labelled) < len(table):
        log.warning(
            "%d subject-visits without a diagnosis are left out of training.",
            len(table) - len(labelled),
        )
    X = labelled[feature_columns(labelled)]
    return TrainingData(
        X,
        labelled["diagnosis"].astype(str).to_numpy(),
        labelled["participant_id"].astype(str).to_numpy(),
        labelled,
        cohort_dir,
        fingerprint,
    )


def oracle_posteriors(
    cohort_dir: Path, participant_ids: np.ndarray
) -> pd.DataFrame | None:
    """The simulation's Bayes-optimal posteriors for these subjects, if it has them.

    Read only to print the oracle beside the model; never used for fitting.
    """
    truth = Path(cohort_dir) / "simulation" / "truth.tsv"
    if not truth.exists():
        return None
    frame = pd.read_csv(truth, sep="\t").set_index("participant_id")
    return frame.loc[participant_ids]
