"""Load a locked model: the fitted pipeline plus the metadata training recorded."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
REQUIRED_METADATA = ("classes", "feature_columns", "family")


@dataclass(frozen=True)
class Bundle:
    """A fitted pipeline with its classes, input columns and training record."""

    pipeline: Any
    metadata: dict[str, Any]
    uri: str
    version: str

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    @property
    def feature_columns(self) -> list[str]:
        return list(self.metadata["feature_columns"])

    @property
    def family(self) -> str:
        return str(self.metadata["family"])

    def check_input(self, table: pd.DataFrame, source: str) -> None:
        """Raise ``ValueError`` naming the columns that are missing from ``table``."""
        missing = [c for c in self.feature_columns if c not in table.columns]
        if len(missing) == len(self.feature_columns):
            raise ValueError(
                f"{source}: none of the model's {len(missing)} feature columns is "
                "present; is this a features table (python -m features extract) or a "
                "cohort directory?"
            )
        if missing:
            raise ValueError(
                f"{source}: missing {len(missing)} feature column(s) the model was "
                f"trained with: {missing[:10]}. Add them as empty columns if the "
                "values "
                "were not measured."
            )


def load_bundle(uri: str, tracking_uri: str | None = None) -> Bundle:
    """Load ``models:/NAME@alias``, ``runs:/ID/model`` or a local model directory.

    Raises
    ------
    ValueError
        When the model lacks the metadata this package writes, or was made with a
        different major version of scikit-learn or xgboost than the one installed.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri or DEFAULT_TRACKING_URI)
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
            f"model {uri!r} lacks {absent} in its metadata: it was not made by "
            "`python -m training`. Retrain it with this package."
        )
    _check_versions(uri, metadata.get("packages", {}))
    pipeline = mlflow.sklearn.load_model(uri)
    return Bundle(pipeline, metadata, uri, _registry_version(uri))


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


def _check_versions(uri: str, packages: dict[str, str]) -> None:
    for name in ("scikit-learn", "xgboost"):
        trained = packages.get(name)
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if trained and installed and trained.split(".")[0] != installed.split(".")[0]:
            raise ValueError(
                f"model {uri!r} was trained with {name} {trained}, this environment "
                f"has {installed}; install {name}=={trained} or retrain the model."
            )
