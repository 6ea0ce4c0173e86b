"""Obtain the training table: a cohort (extracted, cached) or a ready-made table."""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from common.files import file_lock
from common.schema import META_COLUMNS, VISIT_TIME_NAMES
from features.dictionary import (
    MODALITIES,
    UNDOCUMENTED,
    in_feature_set,
    modality_of,
)
from features.extract import (
    check_units,
    feature_columns,
)
from features.load import FeaturesInput, load_features
from training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """Features ``X``, task labels ``y``, participant ``groups``, the full table.

    ``diagnosis`` keeps the original class of each row (``y`` may pool classes, as
    in ALS vs mimics); ``classes`` are the task's labels that have rows;
    ``covariates`` those of the configured covariates the data hold; ``notes`` say
    what the data could not give (each is logged and recorded in MLflow);
    ``mapping`` is how a features table was read (None for a cohort directory),
    ``source_columns`` the table's own column names;
    ``cohort_dir`` is None for a features table.
    """

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    diagnosis: np.ndarray
    table: pd.DataFrame
    cohort_dir: Path | None
    source: str
    fingerprint: str
    classes: list[str] = field(default_factory=list)
    covariates: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    mapping: dict | None = None
    source_columns: tuple[str, ...] = ()


def default_cohort(simulated_dir: Path, n: int, seed: int) -> Path:
    """Return the cached simulated cohort for (n, seed), simulating it if needed."""
    from features.simulate.cohort import model_version, simulate_cohort

    root = Path(simulated_dir)
    path = root / f"n{n}-seed{seed}-{model_version()}"
    # one process simulates, any other waits and reuses (never two at once into
    # the same folder, never one removing the folder another is reading)
    with file_lock(root / f".n{n}-seed{seed}.lock", f"the simulated cohort {path}"):
        for stale in root.glob(f"n{n}-seed{seed}-*"):
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


def load_input(cfg, text_columns=(), cache_dir: Path | None = None) -> FeaturesInput:
    """The table a training or analysis configuration names: ``cfg.features``,
    ``cfg.cohort``, or else the default simulated cohort (simulated once, then
    reused), through :func:`features.load.load_features`."""
    cohort = None
    if cfg.features is None:
        cohort = cfg.cohort or default_cohort(
            cfg.simulated_dir, cfg.n_subjects, cfg.seed
        )
    return load_features(
        cohort=cohort,
        features=cfg.features,
        text_columns=text_columns,
        cache_dir=cache_dir,
        n_jobs=cfg.n_jobs,
    )


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """The cohort or table ``cfg`` names, restricted and labelled for its task."""
    loaded = load_input(cfg, cfg.input_mapping().text_columns(), cfg.cache_dir)
    cohort_dir = Path(loaded.source) if cfg.features is None else None
    return prepare(
        loaded.table,
        cfg,
        loaded.source,
        loaded.fingerprint,
        cohort_dir,
        list(loaded.notes),
    )


#: Rows quoted when a table's cells cannot be read.
SHOWN_PROBLEMS = 5


def prepare(
    table: pd.DataFrame,
    cfg: TrainConfig,
    source: str,
    fingerprint: str,
    cohort_dir: Path | None = None,
    read_notes: list[str] | tuple = (),
) -> TrainingData:
    """Map the table's metadata, select the task's rows, split features from
    metadata, and note everything the data cannot give.

    Raises
    ------
    ValueError
        A cell that cannot be read (an unmapped code, an age that is not a
        number), fewer than two classes with rows, or a class with a single
        participant.
    """
    mapping = cfg.input_mapping()
    source_columns = tuple(str(c) for c in table.columns)
    table, problems = mapping.apply(table, source, classes=cfg.classes)
    ids = table["participant_id"] if "participant_id" in table else None
    if problems:
        rows = sorted(problems)
        quoted = [
            f"row {i + 2}"
            + (f" ({ids.iloc[i]})" if ids is not None and pd.notna(ids.iloc[i]) else "")
            + ": "
            + "; ".join(problems[i])
            for i in rows[:SHOWN_PROBLEMS]
        ]
        more = (
            f" (and {len(rows) - SHOWN_PROBLEMS} more rows)"
            if len(rows) > SHOWN_PROBLEMS
            else ""
        )
        raise ValueError(
            f"{source}: {len(rows)} row(s) have cells that cannot be read{more}: "
            + " | ".join(quoted)
        )
    notes: list[str] = list(read_notes)
    # values in another unit than the dictionary's (extraction already left its
    # own missing; a lab's table is checked here)
    notes += [i.message for i in check_units(table, file=source)]
    if ids is None:
        table["participant_id"] = [f"row-{i + 2}" for i in range(len(table))]
        notes.append(
            "no participant column: each row is one participant (name one with "
            "--group-column if participants have repeated visits)"
        )
    if cfg.visits == "baseline":
        table = _baseline_visits(table, notes)
    elif cohort_dir is not None and table["participant_id"].duplicated().any():
        notes.append(
            "no oracle: the simulation's Bayes-optimal posteriors are for baseline "
            "visits, and --visits all trains on later visits too"
        )
    diagnosis = table["diagnosis"]
    keep = diagnosis.isin(_task_rows(cfg)).fillna(False).to_numpy(dtype=bool)
    dropped = len(table) - int(keep.sum())
    if dropped:
        notes.append(
            f"{dropped} of {len(table)} subject-visits are left out: no diagnosis, "
            f"or a class outside task {cfg.task!r}"
        )
    rows = table[keep].reset_index(drop=True)
    diag = diagnosis[keep].to_numpy(dtype=str)
    y = (
        np.where(np.isin(diag, cfg.mimics), "mimic", diag)
        if (cfg.task == "als_vs_mimics")
        else diag
    )
    classes = _classes(cfg, y, rows, source, notes)
    columns, covariates = _columns(rows, cfg, notes)
    if all(modality_of(c) in ("demographics", "metadata") for c in columns):
        raise ValueError(
            f"{source}: no numeric feature columns to train on besides age, sex and "
            "site; the model inputs are the numeric columns other than the "
            "identifiers and the diagnosis"
            + (
                f", of the modalities of feature set {list(cfg.feature_set)}."
                if cfg.modalities() != MODALITIES
                else "."
            )
        )
    return TrainingData(
        rows[columns],
        np.asarray(y, dtype=str),
        rows["participant_id"].astype(str).to_numpy(),
        diag,
        rows,
        cohort_dir,
        source,
        fingerprint,
        classes,
        covariates,
        tuple(notes),
        mapping.to_dict() if cfg.features is not None else None,
        source_columns,
    )


def visit_time_column(columns) -> str | None:
    """The first of ``columns`` that dates or numbers a visit, or None.

    >>> visit_time_column(["Subject", "MR Delay", "nWBV"])
    'MR Delay'
    >>> visit_time_column(["participant_id", "nfl_pg_ml"]) is None
    True
    """
    names = {re.sub(r"[^a-z0-9]", "", str(c).lower()): c for c in columns}
    return next((names[n] for n in VISIT_TIME_NAMES if n in names), None)


def _visit_order(values: pd.Series) -> pd.Series:
    """A visit time column as sortable numbers (dates as days)."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() >= values.notna().sum() / 2:
        return numbers
    dates = pd.to_datetime(values, errors="coerce", format="mixed")
    return (dates - pd.Timestamp("1900-01-01")).dt.days.astype(float)


def _baseline_visits(table: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Each participant's baseline visit: its earliest ``months_since_baseline``
    or other visit time column (:func:`visit_time_column`; missing times last),
    ties and tables without times by session label, and the first row in file
    order when there is neither (said as such)."""
    table = table.reset_index(drop=True)
    ids = table["participant_id"].astype(str)
    if not ids.duplicated().any():
        return table
    meta = [c for c in table.columns if c not in ("participant_id", "session")]
    by = visit_time_column(meta)
    sessions = table.get("session", pd.Series("", table.index)).astype("string")
    order = pd.DataFrame(
        {
            "pid": ids,
            "t": _visit_order(table[by]) if by else np.nan,
            "s": sessions.fillna(""),
            "row": np.arange(len(table)),
        }
    )
    first = order.sort_values(["pid", "t", "s", "row"], na_position="last")
    kept = table.loc[sorted(first.drop_duplicates("pid").index)].reset_index(drop=True)
    if by is None:
        by = "session" if (order["s"] != "").any() else None
    repeated = ids[ids.duplicated()].nunique()
    how = (
        f"earliest {by}"
        if by
        else "the FIRST ROW IN FILE ORDER: the table has no session or visit time "
        "column, so which visit is the baseline is not known (add one, or sort the "
        "table oldest visit first)"
    )
    notes.append(
        f"{len(table) - len(kept)} later visit(s) of {repeated} participant(s) left "
        f"out: training uses each participant's baseline visit ({how}); "
        "--visits all uses every visit"
    )
    return kept


def _classes(cfg: TrainConfig, y, rows, source: str, notes: list[str]) -> list[str]:
    """The task's classes with rows; refuse fewer than two or too few per fold."""
    counts = pd.Series(rows["participant_id"].to_numpy()).groupby(y).nunique()
    classes = [c for c in cfg.task_classes() if c in counts.index]
    if len(classes) < 2:
        found = ", ".join(f"{c} ({counts[c]})" for c in classes) or "none"
        raise ValueError(
            f"{source}: task {cfg.task!r} needs at least two classes with "
            f"participants; found {found}. Check --label-column and --label-map, "
            f"or choose another --task."
        )
    absent = [c for c in cfg.task_classes() if c not in counts.index]
    if absent and cfg.task == "diagnosis":
        notes.append(
            f"diagnosis task on the classes present: {', '.join(classes)} "
            f"({', '.join(absent)} have no rows)"
        )
    single = [c for c in classes if counts[c] < 2]
    if single:
        raise ValueError(
            f"{source}: class {single[0]!r} has one participant; cross-validation "
            "needs at least two per class (one to train on, one to test). Add "
            "participants of that class or leave its rows out."
        )
    for c in classes:
        if counts[c] < cfg.outer_folds:
            notes.append(
                f"class {c} has {counts[c]} participants, fewer than the "
                f"{cfg.outer_folds} outer folds: some test folds hold none of them "
                f"(--outer-folds {max(2, int(counts[c]))} avoids it)"
            )
    return classes


def _columns(rows: pd.DataFrame, cfg: TrainConfig, notes: list[str]):
    """Model inputs (features, covariates, site) and the covariates present."""
    columns = feature_columns(rows.drop(columns=["participant_id"]))
    columns = _feature_set(columns, cfg, notes)
    for c in [c for c in columns if visit_time_column([c]) is not None]:
        columns.remove(c)
        notes.append(
            f"column {c!r} dates or numbers the visit (bookkeeping, not a "
            "measurement): not a model input; rename it if it is a biomarker"
        )
    for c in [c for c in columns if rows[c].isna().all()]:
        columns.remove(c)
        if c not in cfg.covariates:
            notes.append(f"column {c!r} is empty in every row: not a model input")
    for c in rows.columns:
        if c in META_COLUMNS or c in columns or str(c).startswith("source_"):
            continue
        values = rows[c].dropna()
        if len(values) and not pd.api.types.is_numeric_dtype(rows[c]):
            text = values[pd.to_numeric(values, errors="coerce").isna()]
            notes.append(
                f"column {c!r} holds text (e.g. {text.iloc[0]!r}) in {len(text)} of "
                f"{len(values)} values: not a model input; convert it to numbers to "
                "use it"
            )
    covariates = tuple(c for c in cfg.covariates if c in columns)
    lacking = [c for c in cfg.covariates if c not in covariates]
    if lacking and (cfg.harmonize or cfg.normative):
        names = {"age": "age", "male": "sex"}
        kept = ", ".join(names[c] for c in covariates)
        adjust = f"adjust for {kept} only" if kept else "are unadjusted"
        notes.append(
            f"no {' or '.join(names[c] for c in lacking)} in the data: ComBat and "
            f"the normative z-scores {adjust} (map a column with "
            + " / ".join(f"--{names[c]}-column" for c in lacking)
            + ")"
        )
    for c in covariates:
        n_missing = int(rows[c].isna().sum())
        if n_missing:
            notes.append(
                f"{c} is missing for {n_missing} of {len(rows)} rows: those rows are "
                "adjusted at the training mean"
            )
    if not cfg.covariates_as_features:
        log.info(
            "covariates %s adjust the pipeline but are not classifier inputs",
            list(covariates),
        )
    if cfg.harmonize:
        if "site" not in rows or rows["site"].isna().all():
            notes.append(
                "no site column: ComBat harmonisation is off (name one with "
                "--site-column)"
            )
        else:
            rows["site"] = rows["site"].astype("string")
            columns.append("site")
            n_sites = rows["site"].nunique()
            if n_sites < 2:
                notes.append(
                    f"one site ({rows['site'].dropna().iloc[0]}): ComBat has nothing "
                    "to harmonise"
                )
    return columns, covariates


def _feature_set(columns: list[str], cfg: TrainConfig, notes: list[str]) -> list[str]:
    """``columns`` of the modalities of ``cfg.feature_set``; a note names what
    was left out by modality, and each chosen modality without columns."""
    chosen = cfg.modalities()
    if chosen == MODALITIES:
        return columns
    kept = [c for c in columns if in_feature_set(c, chosen)]
    out = pd.Series([modality_of(c) for c in columns if c not in kept]).value_counts()
    notes.append(
        f"feature set {', '.join(cfg.feature_set)} ({', '.join(chosen)}): "
        f"{len(columns) - len(kept)} of {len(columns)} columns left out ("
        + ", ".join(f"{m} {k}" for m, k in out.items())
        + ")"
        + (
            "; columns outside the data dictionary (docs/features.md) have "
            "no modality: rename them to its names to select them"
            if UNDOCUMENTED in out
            else ""
        )
    )
    have = {modality_of(c) for c in kept}
    absent = [m for m in chosen if m not in have]
    if absent:
        notes.append(f"feature set: no columns of {', '.join(absent)} in the data")
    return kept


def _task_rows(cfg: TrainConfig) -> tuple[str, ...]:
    if cfg.task == "als_vs_mimics":
        return ("ALS", *cfg.mimics)
    if cfg.task == "contrast":
        return tuple(cfg.contrast)
    return tuple(cfg.classes)


def oracle_posteriors(
    cohort_dir: Path | None,
    participant_ids: np.ndarray,
    modalities: tuple[str, ...] = MODALITIES,
) -> pd.DataFrame | None:
    """The simulation's Bayes-optimal posteriors for these subjects, if it has them.

    With every simulated modality among ``modalities`` they are read from
    ``simulation/truth.tsv``; otherwise recomputed from
    ``simulation/observed_values.tsv`` conditioning on those modalities only (the
    limit of a model given that feature set). Read only to print the oracle beside
    the model; never used for fitting.
    """
    if cohort_dir is None or pd.Index(participant_ids).has_duplicates:
        return None  # repeated visits: the posteriors are for baseline visits only
    folder = Path(cohort_dir) / "simulation"
    from features.simulate import oracle, spec

    if set(spec.MODALITIES) <= set(modalities):
        if not (folder / "truth.tsv").exists():
            return None
        frame = pd.read_csv(folder / "truth.tsv", sep="\t")
    else:
        if not (folder / "observed_values.tsv").exists():
            return None
        obs = pd.read_csv(folder / "observed_values.tsv", sep="\t")
        post = oracle.posterior(obs, modalities=set(modalities))
        frame = pd.concat([obs[["participant_id"]], post], axis=1)
    return frame.set_index("participant_id").loc[participant_ids]
