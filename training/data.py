"""Obtain the training table: a cohort (extracted, cached) or a ready-made table."""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.extract import extract_features, feature_columns, read_table, write_table
from training.config import TrainConfig

log = logging.getLogger(__name__)
CACHE_DIR = Path("outputs") / "cache"


@dataclass(frozen=True)
class TrainingData:
    """Features ``X``, task labels ``y``, participant ``groups``, the full table.

    ``diagnosis`` keeps the original class of each row (``y`` may pool classes, as
    in ALS vs mimics); ``cohort_dir`` is None for a features table.
    """

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    diagnosis: np.ndarray
    table: pd.DataFrame
    cohort_dir: Path | None
    source: str
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


def extractor_version() -> str:
    """Hash of the feature extractor's code: a changed extractor invalidates caches."""
    import features

    digest = hashlib.sha256()
    root = Path(features.__file__).parent
    for path in sorted(root.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def _extracted(cohort_dir: Path, n_jobs: int) -> tuple[pd.DataFrame, str]:
    """The features table of a cohort, from the cache when neither its files nor
    the extractor changed."""
    fingerprint = cohort_fingerprint(cohort_dir)
    cache = CACHE_DIR / f"features-{fingerprint}-{extractor_version()}.parquet"
    if cache.exists():
        log.info("reusing extracted features %s", cache)
        return pd.read_parquet(cache), fingerprint
    result = extract_features(cohort_dir, n_jobs=n_jobs)
    if result.issues:
        log.warning("%s", result.summary())
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_table(result.table, cache, overwrite=True)
    return result.table, fingerprint


def _features_file(cfg: TrainConfig) -> tuple[pd.DataFrame, str]:
    """A ready-made table with its label, group and site columns renamed."""
    path = Path(cfg.features)
    table = read_table(path)
    wanted = {cfg.label_column: "diagnosis", cfg.group_column: "participant_id"}
    for column in wanted:
        if column not in table:
            raise ValueError(
                f"{path}: no column {column!r} (columns: {list(table.columns)[:12]}"
                "...). Name the diagnosis and participant columns with "
                "--label-column and --group-column."
            )
    if cfg.site_column in table:
        wanted[cfg.site_column] = "site"
    table = table.rename(columns=wanted)
    table["participant_id"] = table["participant_id"].astype(str)
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return table, fingerprint


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """The cohort or table ``cfg`` names, restricted and labelled for its task."""
    cohort_dir = None
    if cfg.features is not None:
        table, fingerprint = _features_file(cfg)
        source = str(cfg.features)
    else:
        cohort_dir = cfg.cohort or default_cohort(
            cfg.simulated_dir, cfg.n_subjects, cfg.seed
        )
        table, fingerprint = _extracted(Path(cohort_dir), cfg.n_jobs)
        source = str(cohort_dir)
    return prepare(table, cfg, source, fingerprint, cohort_dir)


def prepare(
    table: pd.DataFrame,
    cfg: TrainConfig,
    source: str,
    fingerprint: str,
    cohort_dir: Path | None = None,
) -> TrainingData:
    """Select the task's rows, map labels, and split features from metadata."""
    diagnosis = table["diagnosis"].astype("string").str.strip().str.upper()
    known = set(cfg.classes)
    bad = diagnosis.notna() & ~diagnosis.isin(known)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{source}: row {row + 2} ({table['participant_id'].iloc[row]}): "
            f"diagnosis = {diagnosis.iloc[row]!r}; expected one of {sorted(known)} "
            "or empty. Fix the label, or list the class in `classes` of the config."
        )
    keep = diagnosis.isin(_task_rows(cfg)).fillna(False).to_numpy(dtype=bool)
    dropped = len(table) - int(keep.sum())
    if dropped:
        log.info(
            "%d subject-visits are not part of task %r (or have no diagnosis)",
            dropped,
            cfg.task,
        )
    rows = table[keep].reset_index(drop=True)
    diag = diagnosis[keep].to_numpy(dtype=str)
    y = (
        np.where(np.isin(diag, cfg.mimics), "mimic", diag)
        if (cfg.task == "als_vs_mimics")
        else diag
    )
    columns = feature_columns(rows.drop(columns=["participant_id"], errors="ignore"))
    if not columns:
        raise ValueError(f"{source}: no numeric feature columns to train on.")
    if cfg.harmonize and "site" in rows:  # read by ComBat, dropped after it
        rows["site"] = rows["site"].astype("string")
        columns.append("site")
    return TrainingData(
        rows[columns],
        np.asarray(y, dtype=str),
        rows["participant_id"].astype(str).to_numpy(),
        diag,
        rows,
        cohort_dir,
        source,
        fingerprint,
    )


def _task_rows(cfg: TrainConfig) -> tuple[str, ...]:
    if cfg.task == "als_vs_mimics":
        return ("ALS", *cfg.mimics)
    if cfg.task == "contrast":
        return tuple(cfg.contrast)
    return tuple(cfg.classes)


def oracle_posteriors(
    cohort_dir: Path | None, participant_ids: np.ndarray
) -> pd.DataFrame | None:
    """The simulation's Bayes-optimal posteriors for these subjects, if it has them.

    Read only to print the oracle beside the model; never used for fitting.
    """
    if cohort_dir is None:
        return None
    truth = Path(cohort_dir) / "simulation" / "truth.tsv"
    if not truth.exists():
        return None
    frame = pd.read_csv(truth, sep="\t").set_index("participant_id")
    return frame.loc[participant_ids]
