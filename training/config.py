"""The one frozen configuration of a training run (TOML / CLI -> TrainConfig -> run).

Every key is documented in ``experiments/default.toml``; a TOML file may set any
subset, command-line options override it, and the result is frozen.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from models.pipelines import MODEL_FAMILIES

DEFAULT_COHORT_DIR = Path("data") / "simulated"
CLASSES = ("ALS", "MMN", "NMO", "MS", "HC")
TASKS = ("diagnosis", "als_vs_mimics", "contrast")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run's result.

    Parameters
    ----------
    cohort : Path or None
        Cohort directory (docs/cohort-format.md). ``None`` and no ``features``:
        simulate (or reuse) the default simulated cohort under ``simulated_dir``.
    features : Path or None
        A ready-made features table (CSV, TSV, Parquet or Excel) instead of a cohort.
    label_column, group_column, site_column : str
        Columns of ``features`` holding the diagnosis, the participant (repeated
        visits share it) and the acquisition site.
    n_subjects, seed : int
        Size of the simulated cohort and the one seed every random choice derives from.
    task : {"diagnosis", "als_vs_mimics", "contrast"}
        All ``classes``; ALS against the pooled ``mimics``; or the two classes of
        ``contrast``.
    classes, mimics, contrast : tuple of str
        Classes of the diagnosis task, those counted as mimics, and a pairwise
        contrast (e.g. ``("ALS", "MMN")``).
    models : tuple of str
        Model families compared in nested cross-validation.
    outer_folds, repeats, inner_folds, n_trials : int
        Outer folds and repeats (the estimate), inner folds and Optuna trials.
    calibrate : str
        Probability calibration inside the folds: "sigmoid", "isotonic" or "none".
    harmonize, normative : bool
        ComBat site harmonisation and control-referenced z-scores (both refit per
        fold inside the pipeline).
    alpha : float
        Conformal prediction sets cover each class with probability 1 - alpha.
    n_bootstrap, n_permutations : int
        Bootstrap resamples for confidence intervals; label permutations for the
        permutation test of the CV score (0 skips it).
    tracking_uri, optuna_storage : str
        MLflow tracking URI (SQLite by default) and Optuna RDB storage URL.
    experiment, model_name : str
        MLflow experiment, and the registered model name (alias ``champion``).
    n_jobs : int
        Parallel jobs over outer folds.
    """

    cohort: Path | None = None
    features: Path | None = None
    label_column: str = "diagnosis"
    group_column: str = "participant_id"
    site_column: str = "site"
    simulated_dir: Path = DEFAULT_COHORT_DIR
    n_subjects: int = 400
    seed: int = 0
    task: str = "diagnosis"
    classes: tuple[str, ...] = CLASSES
    mimics: tuple[str, ...] = ("MMN", "NMO", "MS")
    contrast: tuple[str, ...] = ("ALS", "MMN")
    models: tuple[str, ...] = ("logreg", "xgboost")
    outer_folds: int = 5
    repeats: int = 1
    inner_folds: int = 3
    n_trials: int = 12
    calibrate: str = "sigmoid"
    harmonize: bool = True
    normative: bool = True
    alpha: float = 0.1
    n_bootstrap: int = 1000
    n_permutations: int = 0
    tracking_uri: str = "sqlite:///mlflow.db"
    optuna_storage: str = "sqlite:///optuna.db"
    experiment: str = "als-mimics-dx"
    model_name: str = "als-mimics-dx"
    n_jobs: int = -1

    def __post_init__(self) -> None:
        unknown = set(self.models) - set(MODEL_FAMILIES)
        if unknown:
            raise ValueError(
                f"unknown model families {sorted(unknown)}; "
                f"choose from {MODEL_FAMILIES}."
            )
        if self.outer_folds < 2 or self.inner_folds < 2:
            raise ValueError(
                f"outer_folds = {self.outer_folds}, inner_folds = {self.inner_folds}: "
                "nested cross-validation needs at least 2 folds at each level."
            )
        if self.n_trials < 1 or self.repeats < 1:
            raise ValueError(
                f"n_trials = {self.n_trials}, repeats = {self.repeats}: use at least 1."
            )
        if self.task not in TASKS:
            raise ValueError(f"task = {self.task!r}; choose one of {TASKS}.")
        if self.task == "contrast" and (
            len(self.contrast) != 2 or not set(self.contrast) <= set(self.classes)
        ):
            raise ValueError(
                f"contrast = {list(self.contrast)}: give two of {list(self.classes)}, "
                'e.g. contrast = ["ALS", "MMN"].'
            )
        if not set(self.mimics) <= set(self.classes) or "ALS" in self.mimics:
            raise ValueError(
                f"mimics = {list(self.mimics)}: choose among the classes other than "
                f"ALS: {[c for c in self.classes if c != 'ALS']}."
            )
        if self.calibrate not in ("sigmoid", "isotonic", "none"):
            raise ValueError(
                f"calibrate = {self.calibrate!r}; use 'sigmoid', 'isotonic' or 'none'."
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha = {self.alpha}: use a value in (0, 1), e.g. 0.1.")
        if self.cohort is not None and self.features is not None:
            raise ValueError("give either a cohort directory or a features table.")

    def pipeline_options(self, labels: set[str]) -> dict[str, object]:
        """Keyword arguments of ``models.pipelines.make_pipeline`` for this run.

        Harmonisation and normative scores use the controls as reference when the
        task's labels include them, else every training row (``reference=None``).
        """
        return {
            "calibrate": None if self.calibrate == "none" else self.calibrate,
            "harmonize": self.harmonize,
            "normative": self.normative,
            "reference": "HC" if "HC" in labels else None,
        }

    def task_classes(self) -> tuple[str, ...]:
        """Labels the model is trained on for this task."""
        if self.task == "als_vs_mimics":
            return ("ALS", "mimic")
        if self.task == "contrast":
            return tuple(self.contrast)
        return tuple(self.classes)

    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> TrainConfig:
        """Read ``path`` (see experiments/default.toml); ``overrides`` win."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config {path} not found.")
        with path.open("rb") as fh:
            try:
                raw = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: not valid TOML: {exc}") from exc
        flat: dict[str, Any] = {}
        for key, value in raw.items():  # tables ([task], [cv]...) only group keys
            flat.update(value if isinstance(value, dict) else {key: value})
        return cls().updated(source=str(path), **{**flat, **overrides})

    def updated(self, source: str = "arguments", **values: Any) -> TrainConfig:
        """A copy with ``values`` set, types coerced, unknown keys rejected."""
        known = {f.name: f for f in fields(self)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"{source}: unknown config key(s) {unknown}; the keys are documented "
                "in experiments/default.toml."
            )
        coerced = {}
        for key, value in values.items():
            default = getattr(self, key)
            if isinstance(default, tuple) or key in ("models", "classes"):
                value = tuple(value)
            elif key in ("cohort", "features", "simulated_dir") and value is not None:
                value = Path(value)
            coerced[key] = value
        return replace(self, **coerced)
