"""Score a features table with a locked model: probabilities, sets and flags."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from common.schema import KEY
from features import units
from features.load import load_features
from models.decision import als_vs_mimics, in_set, join_labels, set_labels
from serve.bundle import SITE, Bundle, load_bundle


def predict(
    model: Bundle | str,
    table: pd.DataFrame,
    *,
    tracking_uri: str | None = None,
    source: str = "input",
    first_row: int = 0,
    groups: np.ndarray | None = None,
) -> pd.DataFrame:
    """Score every row of ``table``; rows that cannot be scored say why.

    Parameters
    ----------
    model : Bundle or str
        A loaded bundle, or a model URI (``models:/NAME@champion``, ``runs:/...``
        or a local path) to load.
    table : DataFrame
        A features table (``python -m features extract``). A modality whose columns
        are all absent is treated as not acquired; values may be missing.
    tracking_uri : str, optional
        Where to resolve ``models:/`` URIs (default ``sqlite:///mlflow.db``).
    source : str
        Name of the input, used in messages.
    first_row : int
        Number of data rows before ``table`` in ``source`` (chunked reading), so
        messages give the row number in the file.
    groups : array, optional
        Consecutive runs of equal labels, one per row, marking tables scored
        together but independent of each other (the API's requests scored in one
        batch): row numbers in messages and the cohort-level unit check are per
        group, so no group's answer depends on another's rows.

    Returns
    -------
    DataFrame
        One row per input row, in order: ``participant_id`` and ``session`` (when
        given), ``p_<CLASS>`` per class, ``predicted_class``, ``p_als_vs_mimics``
        (p(ALS) / (p(ALS) + p(mimics)) over the mimics the model was trained with,
        controls left out; :func:`models.decision.als_vs_mimics`),
        ``prediction_set`` (the class-conditional conformal set at the bundle's
        alpha, e.g. ``{ALS, MMN}``;
        ``{}``: like no class), ``ood_score`` (distance to the nearest training
        class, ~N(0, 1) inside one) and ``ood`` (above the training threshold),
        ``unseen_site`` (site absent from training or not given; empty when the
        model was trained without sites),
        ``modalities_used``, ``model``, and ``error`` (empty when scored; else
        why not, with the scores left empty).

    Raises
    ------
    ValueError
        When the table as a whole does not fit the model (columns missing from a
        modality that is present, a column holding no number at all).

    Examples
    --------
    >>> preds = predict("models:/als-mimics-dx@champion", table)  # doctest: +SKIP
    >>> preds.loc[preds["ood"], ["participant_id", "ood_score"]]  # doctest: +SKIP
    """
    bundle = model if isinstance(model, Bundle) else load_bundle(model, tracking_uri)
    table, problems = bundle.canonical(table, source)
    frame, errors = prepare_input(bundle, table, source, first_row, problems, groups)
    return score_frame(bundle, table, frame, errors)


def score_frame(
    bundle: Bundle, table: pd.DataFrame, frame: pd.DataFrame, errors: np.ndarray
) -> pd.DataFrame:
    """The table :func:`predict` returns, from :func:`prepare_input`'s output
    (``frame``, ``errors``) and the identifiers and sites of ``table``."""
    ok = errors == ""
    classes = bundle.classes
    proba = np.full((len(frame), len(classes)), np.nan)
    score = np.full(len(frame), np.nan)
    if ok.any():
        rows = frame if ok.all() else frame[ok]
        proba[ok] = bundle.model.predict_proba(rows)[:, bundle.class_order]
        score[ok] = bundle.model.ood_score(rows)
    out = {c: table[c].to_numpy() for c in KEY if c in table.columns}
    for j, c in enumerate(classes):
        out[f"p_{c}"] = proba[:, j]
    best = np.asarray(classes, dtype=object)[np.nan_to_num(proba).argmax(axis=1)]
    out["predicted_class"] = pd.array(np.where(ok, best, None), dtype="string")
    out["p_als_vs_mimics"] = als_vs_mimics(proba, classes, bundle.mimics)
    limits = [bundle.metadata["conformal"]["thresholds"][c] for c in classes]
    sets = set_labels(in_set(proba, limits), classes)
    out["prediction_set"] = pd.array(np.where(ok, sets, None), dtype="string")
    threshold = getattr(bundle.model.detector_, "threshold_", np.inf)
    out["ood_score"] = score
    out["ood"] = pd.array(np.where(ok, score > threshold, None), dtype="boolean")
    site = table[SITE].astype("string") if SITE in table.columns else None
    if not bundle.sites:  # trained without sites: nothing was harmonised
        out["unseen_site"] = pd.array([None] * len(table), dtype="boolean")
    else:
        out["unseen_site"] = (
            ~site.isin(bundle.sites).fillna(False).to_numpy(dtype=bool)
            if site is not None
            else np.ones(len(table), dtype=bool)
        )
    flags = [c for c in frame.columns if c.startswith("has_")]
    used = frame[flags].to_numpy(dtype=float, na_value=0.0) == 1.0
    labels = [c.removeprefix("has_") for c in flags]
    out["modalities_used"] = join_labels(used, labels)
    out["model"] = bundle.version
    out["error"] = errors
    return pd.DataFrame(out)  # one frame, not a column at a time


def prepare_input(
    bundle: Bundle,
    table: pd.DataFrame,
    source: str = "input",
    first_row: int = 0,
    problems: dict[int, list[str]] | None = None,
    groups: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The model's input columns of ``table`` (already :meth:`Bundle.canonical`)
    as numbers (``site`` as text), and one message per row saying why it cannot be
    scored ('' when it can).

    Absent modalities are filled in as not acquired (with a warning); cells that
    are not numbers, not finite or outside their unit's range, and the cells of
    ``problems`` (from the metadata mapping), make their row unscorable.
    """
    frame, notes = bundle.conform(table, source)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    problems = {i: list(p) for i, p in (problems or {}).items()}
    schema = bundle.schema
    numeric = [c for c in frame.columns if c != SITE]
    dtypes = frame.dtypes
    text_cols = [c for c in numeric if not pd.api.types.is_numeric_dtype(dtypes[c])]
    if text_cols:
        V = np.column_stack([_numbers(frame[c]) for c in numeric])
    else:
        V = frame[numeric].to_numpy(dtype=float, na_value=np.nan, copy=True)
    for c in text_cols:
        j = numeric.index(c)
        text = frame[c].astype("string").str.strip()
        given = (text.notna() & (text != "")).to_numpy(dtype=bool)
        unit = schema[c]["unit"] or "its unit"
        for i in np.flatnonzero(given & np.isnan(V[:, j])):
            problems.setdefault(i, []).append(
                f"{c} = {frame[c].iloc[i]!r} is not a number; write it in {unit} or "
                "leave the cell empty"
            )
    lo = np.array([_bound(schema[c]["min"], -np.inf) for c in numeric])
    hi = np.array([_bound(schema[c]["max"], np.inf) for c in numeric])
    with np.errstate(invalid="ignore"):
        infinite = np.isinf(V)
        outside = np.isfinite(V) & ((V < lo) | (V > hi))
    for i, j in zip(*np.nonzero(infinite | outside), strict=True):
        c, v = numeric[j], V[i, j]
        if infinite[i, j]:
            problems.setdefault(i, []).append(f"{c} = {v} is not finite")
            continue
        unit = schema[c]["unit"] or "its unit"
        problems.setdefault(i, []).append(
            f"{c} = {v:g} is outside [{lo[j]:g}, {hi[j]:g}] ({unit}); check the "
            "unit, fix the value or leave the cell empty"
        )
    V[infinite] = np.nan
    if groups is None:
        groups, offsets = np.zeros(len(V), dtype=int), np.zeros(len(V), dtype=int)
    else:  # row numbers count from each group's first row
        offsets = pd.Series(np.arange(len(V))).groupby(groups).transform("min")
        groups, offsets = np.asarray(groups), offsets.to_numpy()
    _unit_problems(bundle, V, numeric, outside, problems, groups)
    clean = pd.DataFrame(V, columns=numeric, index=frame.index, copy=False)
    if SITE in frame.columns:
        clean.insert(frame.columns.get_loc(SITE), SITE, frame[SITE].astype("string"))
    measured = [j for j, c in enumerate(numeric) if not c.startswith("has_")]
    empty = np.isnan(V[:, measured]).all(axis=1)
    for i in np.flatnonzero(empty):
        problems.setdefault(i, []).append(
            f"no value in any of the model's {len(measured)} input columns"
        )
    errors = np.full(len(frame), "", dtype=object)
    ids = table["participant_id"] if "participant_id" in table.columns else None
    for i, found in problems.items():
        who = f" ({ids.iloc[i]})" if ids is not None and pd.notna(ids.iloc[i]) else ""
        row = first_row + i - offsets[i] + 1
        errors[i] = f"{source}, row {row}{who}: " + "; ".join(found)
    return clean, errors


def _unit_problems(
    bundle: Bundle,
    V: np.ndarray,
    numeric: list[str],
    outside: np.ndarray,
    problems: dict[int, list[str]],
    groups: np.ndarray,
) -> None:
    """Rows with values in another unit than the model's: a value outside its
    plausible range, or (in a group of 5 or more rows) a column group whose
    typical value is a known factor from the training cohort's
    (:mod:`features.units`)."""
    for j, c in enumerate(numeric):
        check = units.check_for(c)
        if check is None:
            continue
        lo, hi = check.values
        with np.errstate(invalid="ignore"):
            bad = (V[:, j] < lo) | (V[:, j] > hi)
        for i in np.flatnonzero(bad & ~outside[:, j]):
            problems.setdefault(i, []).append(
                f"{units.implausible(c, float(V[i, j]))}; fix the value or its "
                "unit, or leave the cell empty"
            )
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) < 5:  # no typical value from fewer rows
            continue
        frame = pd.DataFrame(V[rows], columns=numeric)
        for columns, message in units.cohort_mixups(frame, bundle.unit_reference):
            given = ~np.isnan(frame[columns].to_numpy()).all(axis=1)
            for i in rows[given]:
                problems.setdefault(i, []).append(message)


def _numbers(col: pd.Series) -> np.ndarray:
    """A column as floats; text that is not a number becomes NaN."""
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=float, na_value=np.nan)
    text = col.astype("string").str.strip()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _bound(value, default: float) -> float:
    return default if value is None else float(value)


def load_input(
    cohort: Path | None = None,
    features: Path | None = None,
    text_columns: tuple[str, ...] | list[str] = (),
) -> pd.DataFrame:
    """The features table of a cohort directory (extracted now) or a table file
    (``text_columns`` read as text besides the identifiers); what the reader said
    about the file is warned again, to the command's warning log."""
    loaded = load_features(cohort=cohort, features=features, text_columns=text_columns)
    for note in loaded.notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return loaded.table
