"""The one frozen configuration of a training run (TOML / CLI -> TrainConfig -> run).

Every key is documented in ``experiments/default.toml``; a TOML file may set any
subset, command-line options override it, and the result is frozen.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from common.schema import MIMICS
from common.table_io import cache_root
from features import dictionary
from models.decision import CLASSES
from models.pipelines import CALIBRATION_METHODS, MODEL_FAMILIES, PipelineSpec

DEFAULT_COHORT_DIR = Path("data") / "simulated"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Outer-CV repeats and permutations of the CV score below ``small_cohort``.
SMALL_REPEATS = 5
SMALL_PERMUTATIONS = 100
TASKS = ("diagnosis", "als_vs_mimics", "contrast")
VISITS = ("baseline", "all")
#: Keys holding a path.
PATH_KEYS = ("cohort", "features", "simulated_dir", "cache_dir")
#: Keys whose TOML value is a table of CODE = VALUE pairs (not a group of keys).
MAP_KEYS = ("label_map", "sex_map")


@dataclass(frozen=True)
class SearchSpec:
    """The inner hyperparameter search: Optuna trials over inner folds, studies
    stored in ``storage_url`` under names starting with ``study_prefix``."""

    n_trials: int
    inner_folds: int
    storage_url: str
    study_prefix: str


@dataclass(frozen=True)
class CVSpec:
    """The outer cross-validation: folds, repeats, the seed of the splits and of
    every fitted step, parallel jobs, and the classes its metrics count as mimics."""

    outer_folds: int
    repeats: int = 1
    seed: int = 0
    n_jobs: int = -1
    mimics: tuple[str, ...] = MIMICS


@dataclass(frozen=True)
class AssessmentSpec:
    """What the assessment adds to the nested CV: conformal ``alpha``, bootstrap
    resamples of the CIs and label permutations of the permutation test."""

    alpha: float = 0.1
    n_bootstrap: int = 1000
    n_permutations: int = 0


@dataclass(frozen=True)
class RunSpecs:
    """The typed settings of one run, from :meth:`TrainConfig.specs`."""

    pipeline: PipelineSpec
    search: SearchSpec
    cv: CVSpec
    assessment: AssessmentSpec


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
    label_column : str
        Column of ``features`` holding the diagnosis.
    group_column, site_column, age_column, sex_column : str or None
        Columns of ``features`` holding the participant (repeated visits share
        it), the acquisition site, age in years and sex. ``None``: the canonical
        name (``participant_id``, ``site``, ``age``, ``sex``) when present; with
        no participant column each row is one participant. Names match
        case-insensitively (see :class:`features.lab_table.InputMapping`).
    label_map, sex_map : tuple of str
        ``CODE=VALUE`` pairs mapping the table's codes to classes
        (``("1=ALS", "0=HC")``) and to M/F (``("1=M", "2=F")``).
    covariates : tuple of str
        Covariates ComBat and the normative z-scores adjust for (``age``,
        ``male``); those the data lack are left out with a note in the run record.
    covariates_as_features : bool
        Whether the covariates are also classifier inputs.
    n_subjects, seed : int
        Size of the simulated cohort and the one seed every random choice derives from.
    task : {"diagnosis", "als_vs_mimics", "contrast"}
        All ``classes``; ALS against the pooled ``mimics``; or the two classes of
        ``contrast``.
    classes, mimics, contrast : tuple of str
        Classes of the diagnosis task, those counted as mimics, and a pairwise
        contrast (e.g. ``("ALS", "MMN")``).
    visits : {"baseline", "all"}
        With repeated visits, train on each participant's baseline (its earliest
        ``months_since_baseline``, else its first session label) or on every
        visit (folds stay grouped by participant either way).
    feature_set : tuple of str
        The modalities the model sees: named sets ("all", "objective": imaging,
        spectroscopy and serum without the clinical examination and nerve
        conduction; "imaging") and modality names, combined (see
        :data:`features.dictionary.FEATURE_SETS`). Age, sex and site always stay.
    models : tuple of str
        Model families compared in nested cross-validation.
    outer_folds, repeats, inner_folds, n_trials : int
        Outer folds and repeats (the estimate), inner folds and Optuna trials.
        ``repeats=None``: 1, or :data:`SMALL_REPEATS` below ``small_cohort``
        participants.
    calibrate : str
        Probability calibration inside the folds: "temperature" (one softmax
        temperature, the default: it keeps the learner's ranking and class balance
        and measured best in experiments/bench_accuracy.py), "sigmoid"
        (one-vs-rest Platt), "isotonic" or "none".
    harmonize, normative : bool
        ComBat site harmonisation and control-referenced z-scores (both refit per
        fold inside the pipeline).
    alpha : float
        Conformal prediction sets cover each class with probability 1 - alpha.
    n_bootstrap, n_permutations : int
        Bootstrap resamples for confidence intervals; label permutations for the
        permutation test of the CV score (0 skips it; ``None``: 0, or
        :data:`SMALL_PERMUTATIONS` below ``small_cohort`` participants).
    small_cohort : int
        Below this many participants the small-cohort defaults apply.
    tracking_uri, registry_uri, optuna_storage : str
        MLflow tracking URI (SQLite by default), MLflow model registry URI (the
        tracking URI when ``None``) and Optuna RDB storage URL.
    experiment, model_name : str
        MLflow experiment, and the registered model name (alias ``champion``).
    n_jobs : int
        Parallel jobs over outer folds.
    dask : str, optional
        Dask cluster of the parallel work (common.executor): ``local``,
        ``local:N`` or a scheduler address; None runs embedded.
    """

    cohort: Path | None = None
    features: Path | None = None
    label_column: str = "diagnosis"
    group_column: str | None = None
    site_column: str | None = None
    age_column: str | None = None
    sex_column: str | None = None
    label_map: tuple[str, ...] = ()
    sex_map: tuple[str, ...] = ()
    simulated_dir: Path = DEFAULT_COHORT_DIR
    cache_dir: Path = field(default_factory=lambda: cache_root() / "features")
    n_subjects: int = 400
    seed: int = 0
    task: str = "diagnosis"
    classes: tuple[str, ...] = CLASSES
    mimics: tuple[str, ...] = MIMICS
    contrast: tuple[str, ...] = ("ALS", "MMN")
    visits: str = "baseline"
    feature_set: tuple[str, ...] = ("all",)
    models: tuple[str, ...] = ("logreg", "xgboost")
    outer_folds: int = 5
    repeats: int | None = None
    inner_folds: int = 3
    n_trials: int = 12
    calibrate: str = "temperature"
    harmonize: bool = True
    normative: bool = True
    covariates: tuple[str, ...] = ("age", "male")
    covariates_as_features: bool = True
    alpha: float = 0.1
    n_bootstrap: int = 1000
    n_permutations: int | None = None
    small_cohort: int = 100
    tracking_uri: str = DEFAULT_TRACKING_URI
    registry_uri: str | None = None
    optuna_storage: str = "sqlite:///optuna.db"
    experiment: str = "als-mimics-dx"
    model_name: str = "als-mimics-dx"
    n_jobs: int = -1
    dask: str | None = None

    def __post_init__(self) -> None:
        if str(self.optuna_storage).rstrip("/") == "journal:":
            raise ValueError(
                f"--optuna-storage {self.optuna_storage!r} names no file; give "
                "journal:///path/file.log."
            )
        if self.dask is not None:
            from common.executor import parse_address

            parse_address(str(self.dask))
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
        if self.n_trials < 1 or (self.repeats is not None and self.repeats < 1):
            raise ValueError(
                f"n_trials = {self.n_trials}, repeats = {self.repeats}: use at least 1."
            )
        if self.task not in TASKS:
            raise ValueError(f"task = {self.task!r}; choose one of {TASKS}.")
        if self.visits not in VISITS:
            raise ValueError(f"visits = {self.visits!r}; choose one of {VISITS}.")
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
        if self.calibrate not in (*CALIBRATION_METHODS, "none"):
            raise ValueError(
                f"calibrate = {self.calibrate!r}; use one of "
                f"{', '.join(CALIBRATION_METHODS)} or 'none'."
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha = {self.alpha}: use a value in (0, 1), e.g. 0.1.")
        if self.cohort is not None and self.features is not None:
            raise ValueError("give either a cohort directory or a features table.")
        unknown = set(self.covariates) - {"age", "male"}
        if unknown:
            raise ValueError(
                f"covariates = {list(self.covariates)}: the covariates are 'age' and "
                "'male' (sex); map your columns with --age-column / --sex-column."
            )
        dictionary.feature_set(self.feature_set)  # raises on an unknown name
        self.input_mapping()  # validates the maps

    def input_mapping(self):
        """How a ready-made ``features`` table's columns and codes are read."""
        from features.lab_table import InputMapping

        mapping = InputMapping(
            self.label_column,
            self.group_column,
            self.site_column,
            self.age_column,
            self.sex_column,
            list(self.label_map),
            list(self.sex_map),
        )
        bad = sorted(set(mapping.label_map.values()) - set(self.classes))
        if bad:
            raise ValueError(
                f"--label-map sends codes to {bad}, which are not classes "
                f"{list(self.classes)}; map each code to one of them."
            )
        return mapping

    def resolved(self, n_participants: int) -> tuple[TrainConfig, list[str]]:
        """This config with the automatic values set for a cohort of
        ``n_participants``, and one line per choice made."""
        small = n_participants < self.small_cohort
        notes = []
        repeats, perms = self.repeats, self.n_permutations
        if repeats is None:
            repeats = SMALL_REPEATS if small else 1
            if small:
                notes.append(
                    f"small cohort ({n_participants} participants < "
                    f"{self.small_cohort}): the outer CV is repeated {repeats} times "
                    "(set repeats to change)"
                )
        if perms is None:
            perms = SMALL_PERMUTATIONS if small else 0
            if small:
                notes.append(
                    f"small cohort: a {perms}-permutation test of the CV score is "
                    "reported (set n_permutations to change)"
                )
        return replace(self, repeats=repeats, n_permutations=perms), notes

    def specs(
        self, labels: set[str], covariates: tuple[str, ...], study_prefix: str
    ) -> RunSpecs:
        """The typed settings each stage below ``run()`` receives, built once.

        Harmonisation and normative scores use the controls as reference when the
        task's labels include them, else every training row (``reference=None``);
        they adjust for ``covariates`` (those of ``self.covariates`` the data have).
        """
        pipeline = PipelineSpec(
            calibrate=None if self.calibrate == "none" else self.calibrate,
            harmonize=self.harmonize,
            normative=self.normative,
            reference="HC" if "HC" in labels else None,
            covariates=tuple(covariates),
            covariates_as_features=self.covariates_as_features,
            seed=self.seed,
        )
        search = SearchSpec(
            self.n_trials, self.inner_folds, self.optuna_storage, study_prefix
        )
        cv = CVSpec(
            self.outer_folds, self.repeats or 1, self.seed, self.n_jobs, self.mimics
        )
        assessment = AssessmentSpec(
            self.alpha, self.n_bootstrap, self.n_permutations or 0
        )
        return RunSpecs(pipeline, search, cv, assessment)

    def modalities(self) -> tuple[str, ...]:
        """The modalities of :attr:`feature_set`."""
        return dictionary.feature_set(self.feature_set)

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
        flat = cls.read_toml(path)
        return cls().updated(source=str(path), **{**flat, **overrides})

    @classmethod
    def read_toml(cls, path: Path) -> dict[str, Any]:
        """The keys ``path`` sets; tables ([input], [cv]...) only group keys."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config {path} not found.")
        with path.open("rb") as fh:
            try:
                raw = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: not valid TOML: {exc}") from exc
        flat: dict[str, Any] = {}
        for key, value in raw.items():
            grouped = isinstance(value, dict) and key not in MAP_KEYS
            flat.update(value if grouped else {key: value})
        return flat

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
            if key in MAP_KEYS and isinstance(value, dict):
                value = tuple(f"{k}={v}" for k, v in value.items())
            elif isinstance(default, tuple) or key in ("models", "classes"):
                value = (value,) if isinstance(value, str) else tuple(value)
            elif key in PATH_KEYS and value is not None:
                value = Path(value).expanduser()  # "~/scratch" in a TOML file
            else:
                _check_type(source, key, value, default)
            coerced[key] = value
        return replace(self, **coerced)


def _check_type(source: str, key: str, value: Any, default: Any) -> None:
    """Refuse a value of another kind than the key's default (a number written
    as text, a flag as a number), naming the key and the kind it takes."""
    if default is None or value is None:
        return
    kinds = {bool: "true or false", int: "a whole number", float: "a number",
             str: "text"}  # fmt: skip
    kind = type(default)
    ok = (
        isinstance(value, bool)
        if kind is bool
        else isinstance(value, int | float) and not isinstance(value, bool)
        if kind is float
        else isinstance(value, kind) and not isinstance(value, bool)
    )
    if not ok and kind in kinds:
        raise ValueError(
            f"{source}: {key} = {value!r} must be {kinds[kind]} (the default is "
            f"{default!r}); see experiments/default.toml."
        )
