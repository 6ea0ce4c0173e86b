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
import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import units
from features.lab_table import InputMapping
from models import manifest
from models.estimators import SITE
from models.locked import BUNDLE_FORMAT
from models.pipelines import SKOPS_TRUSTED_TYPES
from serve.config import DEFAULT_TRACKING_URI, ModelSource

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
    fingerprint : str or None
        SHA-256 of the manifest its files were checked against (None: loaded
        unverified); compare it with the one the training lab publishes.
    """

    model: Any
    metadata: dict[str, Any]
    uri: str
    version: str
    fingerprint: str | None = None

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
        card.update(uri=self.uri, version=self.version, fingerprint=self.fingerprint)
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


def load_source(source: ModelSource) -> Bundle:
    """:func:`load_bundle` of a command's ``--model`` and store options."""
    return load_bundle(
        source.model,
        source.tracking_uri,
        source.registry_uri,
        unverified=source.unverified,
    )


def load_bundle(
    uri: str,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    *,
    unverified: bool = False,
) -> Bundle:
    """Load ``models:/NAME@alias``, ``models:/NAME/VERSION``, ``runs:/ID/model`` or
    a local model directory, check that its files are the ones registered, and
    check the model.

    Nothing in the folder runs code: the model file is read only as skops, with
    this package's own list of trusted types (never the list in ``MLmodel``), and
    only after every file's SHA-256 matches the registry's manifest (a registered
    model) or the folder's ``manifest.json`` (a folder or run). ``tracking_uri``
    and ``registry_uri`` default to ``$MLFLOW_TRACKING_URI`` and
    ``$MLFLOW_REGISTRY_URI`` as in MLflow, then ``sqlite:///mlflow.db``; MLflow's
    global settings are left as they were.

    Parameters
    ----------
    unverified : bool
        Load a folder that has no manifest at all (a model from before manifests,
        or one whose sender did not include it): its card and model file are then
        not checked against anything, which a warning says.

    Raises
    ------
    ValueError
        When the model cannot be found, a file differs from its manifest, it has
        no manifest (without ``unverified``), it is not a skops file of this
        package's types, was not made by ``python -m training`` of a compatible
        version, or was made with another major version of scikit-learn, xgboost
        or numpy than the one installed.
    """
    tracking_uri = (
        tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    )
    registry_uri = registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or None
    expected, version = None, uri
    if Path(uri).exists():
        folder = Path(uri).resolve()
        if not folder.is_dir():
            raise ValueError(
                f"model {uri!r} is a file; give the model folder (the one holding "
                "MLmodel), a models:/ or a runs:/ URI."
            )
        version = uri = str(folder)
    else:
        location, expected, version = _registered(uri, tracking_uri, registry_uri)
        folder = _download(location, uri, tracking_uri, registry_uri)
    if not (folder / "MLmodel").is_file():
        raise ValueError(
            f"model {uri!r}: no MLmodel file in {folder}; this is not an MLflow "
            "model folder. Give the folder `python -m training` registered."
        )
    hashes = _verified(folder, uri, expected, unverified)
    metadata, model_file = _read_mlmodel(folder, uri)
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
    model = _load_skops(model_file, uri)
    if not hasattr(model, "pipeline_"):
        raise ValueError(
            f"model {uri!r} holds a {type(model).__name__}, not a LockedModel; "
            "retrain it with `python -m training`."
        )
    fingerprint = manifest.digest(hashes) if hashes else None
    return Bundle(model, metadata, uri, version, fingerprint)


def _verified(
    folder: Path, uri: str, expected: dict[str, str] | None, unverified: bool
) -> dict[str, str] | None:
    """The manifest ``folder``'s files were checked against: the registry's
    (``expected``) when there is one, else the folder's own; None when there is
    none and ``unverified`` allows that."""
    own = manifest.read_manifest(folder)
    if expected is not None:
        manifest.verify(folder, expected)
        if own is not None and own != expected:
            raise manifest.ManifestError(
                f"model folder {folder}: {manifest.MANIFEST} differs from the "
                "registry's manifest; the folder was changed after registration. "
                "Retrain, or register an unmodified copy."
            )
        return expected
    if own is not None:
        manifest.verify(folder, own)
        return own
    if not unverified:
        raise manifest.ManifestError(
            f"model {uri!r} has no {manifest.MANIFEST} (and no manifest in the "
            "registry): nothing shows that its card (conformal thresholds, "
            "out-of-distribution threshold, simulated-data flag) and model file are "
            "the ones its trainer wrote. Retrain it with this version of "
            "`python -m training`, or, if you trust where it came from, pass "
            "--trust-unverified-model (load_bundle(..., unverified=True))."
        )
    warnings.warn(
        f"model {uri!r} has no {manifest.MANIFEST}: loaded without checking that "
        "its card (classes, conformal thresholds, out-of-distribution threshold, "
        "simulated-data flag) and its model file are the ones its trainer wrote. "
        "It was still read only as skops with this package's trusted types.",
        UserWarning,
        stacklevel=3,
    )
    return None


def _registered(
    uri: str, tracking_uri: str, registry_uri: str | None
) -> tuple[str, dict[str, str] | None, str]:
    """For ``models:/NAME@alias`` or ``models:/NAME/N``: where the version's
    files are (an alias resolved once, in this registry), the registry's manifest
    (None if it has none) and ``NAME vN``; any other URI is returned as it is,
    without a manifest."""
    import mlflow

    if not uri.startswith("models:/"):
        return uri, None, uri
    ref = uri.removeprefix("models:/")
    name, sep, which = ref.partition("@") if "@" in ref else ref.partition("/")
    if not sep or "/" in which or (sep == "/" and not which.isdigit()):
        return uri, None, uri  # a logged model's ID or a stage: MLflow resolves it
    client = mlflow.MlflowClient(tracking_uri, registry_uri or tracking_uri)
    try:
        found = (
            client.get_model_version_by_alias(name, which)
            if sep == "@"
            else client.get_model_version(name, which)
        )
    except mlflow.exceptions.MlflowException as exc:
        raise ValueError(
            f"cannot find model {uri!r} in {registry_uri or tracking_uri}: "
            f"{_first_line(exc)}. Train one with `python -m training`, or pass "
            "--tracking-uri where it lives."
        ) from None
    tag = (found.tags or {}).get(manifest.REGISTRY_TAG)
    expected = manifest.parse(tag, f"{uri} (registry tag)") if tag else None
    location = client.get_model_version_download_uri(name, found.version)
    return location, expected, f"{name} v{found.version}"


def _download(
    location: str, uri: str, tracking_uri: str, registry_uri: str | None
) -> Path:
    """The local folder of the artifacts at ``location`` (a local store's own
    folder), resolved in the stores given, never MLflow's global ones."""
    import mlflow

    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location,
                tracking_uri=tracking_uri,
                registry_uri=registry_uri or tracking_uri,
            )
        )
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise ValueError(
            f"cannot find model {uri!r} in {tracking_uri}: {_first_line(exc)}. Train "
            "one with `python -m training`, or pass --tracking-uri where it lives.",
        ) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_mlmodel(folder: Path, uri: str) -> tuple[dict[str, Any], Path]:
    """The model card and the skops file of ``folder``'s ``MLmodel``, read as YAML
    data; any other serialisation (pickle, cloudpickle) is refused unread."""
    import yaml

    path = folder / "MLmodel"
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(
            f"model {uri!r}: {path} cannot be read as YAML ({_first_line(exc)})."
        ) from None
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    flavor = flavors.get("sklearn") if isinstance(flavors, dict) else None
    if not isinstance(flavor, dict):
        raise ValueError(
            f"model {uri!r}: {path} declares no sklearn flavor; this is not a model "
            "of `python -m training`."
        )
    fmt = flavor.get("serialization_format")
    if fmt != "skops":
        raise ValueError(
            f"model {uri!r}: {path} declares serialization_format = {fmt!r}; only "
            "'skops' is loaded (pickle and cloudpickle run code from the file when "
            "read). Retrain the model with `python -m training`, which writes skops."
        )
    name = str(flavor.get("pickled_model", ""))
    model_file = folder / name
    if not name or Path(name).name != name or not model_file.is_file():
        raise ValueError(
            f"model {uri!r}: {path} names model file {name!r}, which is not a file "
            "in the model folder."
        )
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError(f"model {uri!r}: the card in {path} is not a table.")
    return metadata, model_file


def _load_skops(path: Path, uri: str):
    """The model in skops file ``path``, trusting this package's types only."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return skops.io.load(path, trusted=list(SKOPS_TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ValueError(
            f"model {uri!r}: {path.name} holds types this package does not trust "
            f"({_first_line(exc)}); it was not loaded. Only models of "
            "`python -m training` load."
        ) from None
    except Exception as exc:  # skops raises many types for a damaged file
        raise ValueError(
            f"model {uri!r}: {path.name} cannot be read as a skops model "
            f"({type(exc).__name__}: {_first_line(exc)}); the file is damaged or "
            "not a model. Copy it again, or retrain."
        ) from None


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
