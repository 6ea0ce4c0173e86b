"""The one frozen configuration of a training run (CLI -> TrainConfig -> run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.pipelines import MODEL_FAMILIES

DEFAULT_COHORT_DIR = Path("data") / "simulated"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run's result.

    Parameters
    ----------
    cohort : Path or None
        Cohort directory (docs/cohort-format.md). ``None`` simulates (or reuses) the
        default simulated cohort under ``simulated_dir``.
    n_subjects, seed : int
        Size of the simulated cohort and the one seed every random choice derives from.
    models : tuple of str
        Model families compared in nested cross-validation.
    outer_folds, inner_folds, n_trials : int
        Outer folds (the estimate), inner folds and Optuna trials (the tuning).
    tracking_uri : str
        MLflow tracking URI; SQLite store by default.
    optuna_storage : str
        Optuna RDB storage URL (any SQLAlchemy URL).
    experiment, model_name : str
        MLflow experiment, and the registered model name (alias ``champion``).
    n_jobs : int
        Parallel jobs over outer folds.
    """

    cohort: Path | None = None
    simulated_dir: Path = DEFAULT_COHORT_DIR
    n_subjects: int = 400
    seed: int = 0
    models: tuple[str, ...] = MODEL_FAMILIES
    outer_folds: int = 5
    inner_folds: int = 3
    n_trials: int = 12
    tracking_uri: str = "sqlite:///mlflow.db"
    optuna_storage: str = "sqlite:///optuna.db"
    experiment: str = "als-mimics-dx"
    model_name: str = "als-mimics-dx"
    n_jobs: int = -1
    classes: tuple[str, ...] = field(default=("ALS", "MMN", "NMO", "MS", "HC"))

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
        if self.n_trials < 1:
            raise ValueError(
                f"n_trials = {self.n_trials}: use at least 1 Optuna trial."
            )
