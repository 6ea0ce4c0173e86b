"""Load a locked model and check that it, and the tables fed to it, are compatible.

A bundle is what ``python -m training`` registers: a fitted
:class:`~models.locked.LockedModel` (diagnosis pipeline + out-of-distribution
detector) and its model card in the MLflow model metadata (see
:mod:`training.card`): input schema, classes, conformal thresholds, training sites,
reference statistics, SHAP background, calibration, nested-CV metrics and package
versions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import units
from features.mapping import InputMapping
from models.estimators import SITE
from models.locked import BUNDLE_FORMAT
from serve.config import DEFAULT_TRACKING_URI

REQUIRED_METADATA = (
    "bundle_format",
    "classes",
    "mimics",
    "feature_columns",
    "schema",
    "family",
    "conformal",
    "reference",
    "background",
    "packages",
)
#: A different major version refuses to load; a different minor version warns.
PINNED = ("scikit-learn", "xgboost", "numpy")


@dataclass(frozen=True)
class Bundle:
    """A locked model: fitted estimators, model card, where it came from.

    Attributes
    ----------
    model : LockedModel
        ``model.pipeline_`` gives the probabilities, ``model.detector_`` the
        out-of-distribution score.
    metadata : dict
        The model card (see :mod:`training.card`).
    uri : str
        Where it was loaded from.
    version : str
        ``NAME vN`` for a registered model, else the URI.
    """

    model: Any
    metadata: dict[str, Any]
    uri: str
    version: str

    @property
    def pipeline(self):
        return self.model.pipeline_

    @cached_property
    def unit_reference(self) -> dict[str, float]:
        """The training cohort's typical value of each unit-checked column group
        (:func:`features.units.reference_sizes`), for the unit mix-up check."""
        return units.reference_sizes(self.metadata.get("reference") or {})

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.metadata["classes"]]

    @property
    def mimics(self) -> list[str]:
        """The classes the model was trained to count as ALS mimics."""
        return [str(c) for c in self.metadata["mimics"]]

    @property
    def feature_columns(self) -> list[str]:
        return list(self.metadata["feature_columns"])

    @property
    def family(self) -> str:
        return str(self.metadata["family"])

    @cached_property
    def schema(self) -> dict[str, dict[str, Any]]:
        """Column name -> dtype, unit, modality, min and max."""
        return {e["name"]: e for e in self.metadata["schema"]}

    @cached_property
    def class_order(self) -> list[int]:
        """Column of each of ``classes`` in the fitted model's ``predict_proba``."""
        fitted = [str(c) for c in self.model.classes_]
        return [fitted.index(c) for c in self.classes]

    @property
    def alpha(self) -> float:
        return float(self.metadata["conformal"]["alpha"])

    @property
    def sites(self) -> set[str]:
        return {str(s) for s in self.metadata.get("sites", [])}

    @cached_property
    def mapping(self) -> InputMapping:
        """How training read its table's columns and codes (the canonical names
        of ``python -m features extract`` when it trained on a cohort)."""
        return InputMapping(**(self.metadata.get("input_mapping") or {}))

    def canonical(
        self, table: pd.DataFrame, source: str
    ) -> tuple[pd.DataFrame, dict[int, list[str]]]:
        """``table`` with training's metadata mapping applied (participant, site,
        age and sex columns and codes), and the cells it could not read, by row."""
        return self.mapping.apply(table, source, required=False)

    def describe(self) -> dict[str, Any]:
        """The model card without the bulky tables: JSON-ready (NaN -> None)."""
        skip = {"reference", "background", "calibration"}
        card = {k: v for k, v in self.metadata.items() if k not in skip}
        card.update(uri=self.uri, version=self.version)
        return json_safe(card)

    def conform(self, table: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list]:
        """The model's input columns of ``table``, with notes on what was filled in.

        A modality with *none* of its columns in ``table`` was not acquired: its
        columns are added empty (and ``has_<modality>`` = 0). A modality with only
        some of its columns is an error: a renamed column or another extractor
        version, which silently filling would hide.

        Raises
        ------
        ValueError
            Naming the missing columns, or a column none of whose values is a number.
        """
        schema = self.schema
        missing = [c for c in self.feature_columns if c not in table.columns]
        if len(missing) == len(self.feature_columns):
            raise ValueError(
                f"{source}: none of the model's {len(missing)} input columns is "
                "present; is this a features table (python -m features extract)? "
                f"Expected columns such as {self.feature_columns[:5]}."
            )
        present_modalities = {
            schema[c]["modality"] for c in self.feature_columns if c in table.columns
        }
        partial = [
            c
            for c in missing
            if schema[c]["modality"] in present_modalities and not c.startswith("has_")
        ]
        if partial:
            raise ValueError(
                f"{source}: missing {len(partial)} column(s) the model was trained "
                f"with: {partial[:10]}{' ...' if len(partial) > 10 else ''}, while "
                "other columns of the same modality are present. Check the column "
                "names (python -m features extract writes them), or add the columns "
                "empty if those values were not measured."
            )
        frame = table.reindex(columns=self.feature_columns)
        notes = []
        measured = [c for c in missing if not c.startswith("has_")]
        for modality in sorted({schema[c]["modality"] for c in measured}):
            notes.append(
                f"{source}: no {modality} columns: {modality} treated as not acquired "
                "for every subject."
            )
        fill_availability(frame, schema)
        for c in self.feature_columns:
            if c == SITE or pd.api.types.is_numeric_dtype(frame[c]):
                continue
            values = frame[c].dropna().astype(str).str.strip()
            values = values[values != ""]
            if len(values) and pd.to_numeric(values, errors="coerce").isna().all():
                raise ValueError(
                    f"{source}: column {c!r} is of the wrong type: no value is a "
                    f"number (e.g. {values.iloc[0]!r}); the model expects numbers in "
                    f"{schema[c]['unit'] or 'the unit of the features table'}. "
                    "Convert the column, or leave its cells empty if not measured."
                )
        return frame, notes


def load_bundle(
    uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> Bundle:
    """Load ``models:/NAME@alias``, ``models:/NAME/VERSION``, ``runs:/ID/model`` or
    a local model directory, and check it.

    Raises
    ------
    ValueError
        When the model cannot be found, was not made by ``python -m training`` of a
        compatible version, or was made with another major version of
        scikit-learn, xgboost or numpy than the one installed.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri or DEFAULT_TRACKING_URI)
    if registry_uri:
        mlflow.set_registry_uri(registry_uri)
    if Path(uri).exists():
        uri = str(Path(uri).resolve())
    try:
        info = mlflow.models.get_model_info(uri)
    except mlflow.exceptions.MlflowException as exc:
        raise ValueError(
            f"cannot find model {uri!r} in {mlflow.get_tracking_uri()}: {exc}. Train "
            "one with `python -m training`, or pass --tracking-uri where it lives.",
        ) from exc
    metadata = dict(info.metadata or {})
    absent = [k for k in REQUIRED_METADATA if k not in metadata]
    if absent:
        raise ValueError(
            f"model {uri!r} lacks {absent} in its model card: it was not made by "
            "`python -m training` of this version. Retrain it with this package."
        )
    if metadata["bundle_format"] != BUNDLE_FORMAT:
        raise ValueError(
            f"model {uri!r} is bundle format {metadata['bundle_format']}; this "
            f"version of serve reads format {BUNDLE_FORMAT}. Retrain the model, or "
            "install the package version that trained it."
        )
    check_versions(uri, metadata["packages"])
    model = mlflow.sklearn.load_model(uri)
    if not hasattr(model, "pipeline_"):
        raise ValueError(
            f"model {uri!r} holds a {type(model).__name__}, not a LockedModel; "
            "retrain it with `python -m training`."
        )
    return Bundle(model, metadata, uri, _registry_version(uri))


def _registry_version(uri: str) -> str:
    """``NAME vN`` for a registry URI (alias or version), else the URI itself."""
    import mlflow

    if not uri.startswith("models:/"):
        return uri
    ref = uri.removeprefix("models:/")
    client = mlflow.MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return f"{name} v{client.get_model_version_by_alias(name, alias).version}"
    name, _, ver = ref.partition("/")
    return f"{name} v{ver}" if ver else name


def check_versions(uri: str, packages: dict[str, str]) -> None:
    """Refuse a bundle made with another major version of a pinned package; warn
    on another minor version (pickled estimators may behave differently)."""
    for name in PINNED:
        trained = packages.get(name)
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if not trained or not installed or trained == installed:
            continue
        fix = f"install {name}=={trained} or retrain the model."
        if trained.split(".")[0] != installed.split(".")[0]:
            raise ValueError(
                f"model {uri!r} was trained with {name} {trained}, this environment "
                f"has {installed}; {fix}"
            )
        if trained.split(".")[:2] != installed.split(".")[:2]:
            warnings.warn(
                f"model {uri!r} was trained with {name} {trained}, this environment "
                f"has {installed}; predictions may differ slightly. To be sure, {fix}",
                UserWarning,
                stacklevel=2,
            )


def fill_availability(frame: pd.DataFrame, schema: dict[str, dict]) -> None:
    """In place: an empty ``has_<modality>`` cell becomes 1 where the row holds a
    value of that modality, else 0 (the pipeline never saw a missing flag)."""
    flags = [c for c in frame.columns if c.startswith("has_")]
    if not flags:
        return
    unset = frame[flags].isna().to_numpy()
    todo = [f for f, u in zip(flags, unset.any(axis=0), strict=True) if u]
    if not todo:
        return
    columns: dict[str, list[str]] = {}  # modality -> its value columns
    for c in frame.columns:
        modality = schema.get(c, {}).get("modality")
        if modality is not None and not c.startswith("has_"):
            columns.setdefault(modality, []).append(c)
    wanted = {f: columns.get(f.removeprefix("has_"), []) for f in todo}
    used = list(dict.fromkeys(c for cols in wanted.values() for c in cols))
    given = frame[used].notna().to_numpy() if used else None
    where = {c: j for j, c in enumerate(used)}
    seen = np.zeros((len(frame), len(todo)))
    for k, cols in enumerate(wanted.values()):
        if cols:
            seen[:, k] = given[:, [where[c] for c in cols]].any(axis=1)
    empty = unset[:, [flags.index(f) for f in todo]]
    if all(frame[f].dtype == np.float64 for f in todo):  # one assignment
        frame[todo] = np.where(empty, seen, frame[todo].to_numpy())
        return
    for k, flag in enumerate(todo):
        frame[flag] = frame[flag].where(~empty[:, k], seen[:, k])


def json_safe(obj: Any) -> Any:
    """``obj`` with numpy scalars made Python and NaN, inf and NA made ``None``."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | np.ndarray):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)
