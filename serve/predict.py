"""Score a features table with a locked model bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from serve.bundle import Bundle, load_bundle

ID_COLUMNS = ("participant_id", "session")


def predict(
    model: Bundle | str,
    table: pd.DataFrame,
    *,
    tracking_uri: str | None = None,
    source: str = "input",
) -> pd.DataFrame:
    """Class probabilities and predicted class for every row of ``table``.

    Parameters
    ----------
    model : Bundle or str
        A loaded bundle, or a model URI (``models:/NAME@champion``, ``runs:/...``
        or a local path) to load.
    table : DataFrame
        A features table (``python -m features extract``); feature columns the
        model needs may be empty but must exist.
    tracking_uri : str, optional
        Where to resolve ``models:/`` URIs (default ``sqlite:///mlflow.db``).
    source : str
        Name of the input used in error messages.

    Returns
    -------
    DataFrame
        Identifiers, ``p_<CLASS>`` per class, ``predicted_class``, the conformal
        ``prediction_set`` at the bundle's alpha (e.g. ``{ALS, MMN}``), ``p_als``,
        ``unseen_site`` (site absent from training), ``modalities_used`` and
        ``model``.
    """
    bundle = model if isinstance(model, Bundle) else load_bundle(model, tracking_uri)
    bundle.check_input(table, source)
    pipe = bundle.pipeline
    raw = pipe.predict_proba(table[bundle.feature_columns])
    proba = np.zeros((len(table), len(bundle.classes)))
    for j, c in enumerate(pipe.classes_):
        proba[:, bundle.classes.index(str(c))] = raw[:, j]
    out = pd.DataFrame({c: table[c].to_numpy() for c in ID_COLUMNS if c in table})
    for j, c in enumerate(bundle.classes):
        out[f"p_{c}"] = proba[:, j]
    out["predicted_class"] = np.asarray(bundle.classes)[proba.argmax(axis=1)]
    conformal = bundle.metadata.get("conformal")
    if conformal:  # class-conditional sets: c is in iff 1 - p_c <= its threshold
        limits = np.array([conformal["thresholds"][c] for c in bundle.classes])
        member = (1.0 - proba) <= limits[None, :]
        out["prediction_set"] = [
            "{" + ", ".join(np.asarray(bundle.classes)[row]) + "}" for row in member
        ]
    out["p_als"] = out["p_ALS"] if "ALS" in bundle.classes else np.nan
    sites = set(bundle.metadata.get("sites", []))
    site = table["site"].astype("string") if "site" in table else None
    # A site absent from training, or not given, is flagged: its scanner offsets
    # were never seen.
    out["unseen_site"] = (~site.isin(sites)).to_numpy() if site is not None else True
    has = [c for c in table.columns if c.startswith("has_")]
    out["modalities_used"] = [
        ",".join(c.removeprefix("has_") for c in has if row[c] == 1)
        for row in table[has].to_dict(orient="records")
    ]
    out["model"] = bundle.version
    return out


def load_input(
    cohort: Path | None = None, features: Path | None = None
) -> pd.DataFrame:
    """The features table of a cohort directory (extracted now) or a table file."""
    if (cohort is None) == (features is None):
        raise ValueError("give exactly one of --cohort DIR or --features FILE.")
    if cohort is not None:
        from features.extract import extract_features

        result = extract_features(Path(cohort))
        return result.table
    from features.extract import read_table

    return read_table(Path(features))
