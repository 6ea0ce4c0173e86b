"""Records of a /predict or /explain body: parsed once, screened, turned into a
features table.

A key absent from a record, or ``null``, means the value was not measured. Records
that cannot be read are refused with 422 and a message naming the record, the column
and the fix.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError

from common.schema import KEY
from features.dictionary import describe
from serve.bundle import Bundle, fill_availability

log = logging.getLogger("serve.api")

MAX_PROBLEMS = 5  # problems quoted in one 422 message
TEXT_COLUMNS = ("site",)  # feature columns read as strings; all others are numbers

#: Keys a record may hold beyond the model's columns, the identifiers and the
#: columns of its training table (a features table's QC and bookkeeping columns):
#: a record with more is refused before any per-key work.
SPARE_KEYS = 400

Value = bool | int | float | str | None


class Records(BaseModel):
    """Request body of ``/predict`` and ``/explain``: one object per subject-visit."""

    model_config = ConfigDict(extra="forbid")
    records: list[dict[str, Value]]


class RecordsError(ValueError):
    """The records of a request cannot be turned into a features table."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice (JSON parsers keep the
    last one silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise RecordsError(
            f"key {twice!r} appears twice in one object; send each column once "
            "per record."
        )
    return obj


async def read_records(request: Request) -> list[dict[str, Value]]:
    """The records of a ``/predict`` or ``/explain`` body, parsed once: a key
    given twice is a 422 naming it, other malformed bodies are FastAPI's usual
    validation errors."""
    raw = await request.body()  # no record over MAX_RECORD_BYTES (BodySizeLimit)
    try:
        data = json.loads(raw, object_pairs_hook=_unique_keys)
    except RecordsError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    except ValueError as exc:  # not JSON, or not UTF-8: as FastAPI answers it
        where = (
            ("body", exc.pos) if isinstance(exc, json.JSONDecodeError) else ("body",)
        )
        raise RequestValidationError(
            [{"loc": where, "msg": "JSON decode error", "type": "json_invalid"}]
        ) from None
    try:
        return Records.model_validate(data).records
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        raise RequestValidationError(errors) from None


#: The body schema for /docs, the body being read by :func:`read_records`.
BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": Records.model_json_schema()}},
    }
}
RecordsBody = Annotated[list[dict[str, Value]], Depends(read_records)]


def records_to_frame(
    records: list[dict[str, Value]], bundle: Bundle, max_records: int = 10_000
) -> pd.DataFrame:
    """The features table of ``records``: identifiers, then the model's columns.

    Parameters
    ----------
    records : list of dict
        One ``{column: value}`` per subject-visit. An absent key or ``None`` is a
        value not measured; an absent ``has_<modality>`` is 1 when the record has
        any value of that modality, else 0. Every column of a features table
        (``python -m features extract``: identifiers, ``sex``, ``diagnosis``,
        ``qc_*``, ...) and the metadata columns of the training table are
        accepted; they are passed through to :func:`serve.predict.predict`.
    bundle : Bundle
        The model; its ``feature_columns`` are the columns a record may hold.
    max_records : int
        The most records accepted at once.

    Returns
    -------
    DataFrame
        ``participant_id`` and ``session`` (where a record has them), every
        feature column (floats, and ``site`` as a string column), then the other
        columns the records hold, as given.

    Raises
    ------
    RecordsError
        When there are no records or too many, or a record has an unknown column,
        a text that is not a number in a numeric column, or a site that is not text.

    Examples
    --------
    >>> frame = records_to_frame([{"nfl_pg_ml": 41.2}], bundle)  # doctest: +SKIP
    >>> frame["nfl_pg_ml"].tolist()  # doctest: +SKIP
    [41.2]
    """
    screen(records, bundle, max_records)
    n = len(records)
    keys = set().union(*records)  # the distinct keys, each resolved once
    produced = _produced(bundle, keys)
    features = [c for c in bundle.feature_columns if c not in produced]
    numeric = [c for c in features if c not in TEXT_COLUMNS]
    where = {c: j for j, c in enumerate(numeric)}
    V = np.full((n, len(numeric)), np.nan)  # one block, not a column per feature
    texts: dict[str, list[Any]] = {c: [None] * n for c in features if c in TEXT_COLUMNS}
    folded = {c.lower(): c for c in features}
    resolved = {k: folded.get(k.strip().lower(), k) for k in keys}  # "Age" is age
    accepted = _accepted(bundle)
    known = {
        k: k in where
        or k in texts
        or k.strip().lower() in accepted
        or describe(k) is not None
        for k in set(resolved.values())
    }
    problems = _collisions(records, resolved)
    n_problems = len(problems)
    extra: dict[str, list[Any]] = {}
    for i, record in enumerate(records):
        for key, value in record.items():
            problem = None
            key = resolved[key]
            if key in where:
                V[i, where[key]], problem = _number(key, value)
            elif key in texts:
                problem = _text(key, value)
                texts[key][i] = None if problem else value
            elif known[key]:
                extra.setdefault(key, [None] * n)[i] = value
            elif n_problems < MAX_PROBLEMS:  # a name search for the first few only
                close = difflib.get_close_matches(key, [*features, *accepted], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else "."
                problem = (
                    f"unknown column {key!r}{hint} A record holds the columns of a "
                    "features table (python -m features extract; the model's own are "
                    "listed by GET /model) or of the table the model was trained on."
                )
            else:
                problem = "unknown column"
            if problem:
                n_problems += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append(f"record {i}: {problem}")
    if problems:
        shown = " | ".join(problems)
        more = n_problems - len(problems)
        raise RecordsError(
            shown + (f" | and {more} more problem(s)." if more > 0 else "")
        )
    frame = pd.DataFrame(V, columns=numeric)
    for c, values in texts.items():
        frame.insert(features.index(c), c, pd.array(values, dtype="string"))
    ids = [c for c in KEY if c in extra]
    for pos, c in enumerate(ids):
        frame.insert(pos, c, extra.pop(c))
    for c, values in extra.items():
        frame[c] = pd.array(values, dtype=object)
    fill_availability(frame, bundle.schema)
    return frame


def screen(records: list[dict[str, Value]], bundle: Bundle, max_records: int) -> None:
    """Refuse, before any per-key work, a request with no records, too many, or a
    record with far more keys than any table the model reads has columns (one
    request must not hold up the others)."""
    n = len(records)
    if n == 0:
        raise RecordsError(
            'records is empty; send at least one record: {"records": '
            '[{"nfl_pg_ml": 41.2, "site": "siteA"}]}.'
        )
    if n > max_records:
        raise RecordsError(
            f"{n} records in one request; the limit is {max_records}. Split the "
            f"batch into requests of at most {max_records} records."
        )
    limit = len(bundle.feature_columns) + len(_accepted(bundle)) + SPARE_KEYS
    for i, record in enumerate(records):
        if len(record) > limit:
            raise RecordsError(
                f"record {i} holds {len(record)} keys; a record of this model holds "
                f"at most {limit} (its {len(bundle.feature_columns)} columns, the "
                "identifiers and a features table's other columns). Send the "
                "model's columns (GET /model) and identifiers only."
            )
    distinct = len(set().union(*records))
    if distinct > limit:  # records of one table share their columns
        raise RecordsError(
            f"the records hold {distinct} different keys between them; the records "
            f"of one request are rows of one table, of at most {limit} columns for "
            "this model. Send the model's columns (GET /model) and identifiers only."
        )


def _collisions(records: list[dict[str, Value]], resolved: dict[str, str]) -> list[str]:
    """A problem for each record holding two keys that name one column (``age``
    and ``AGE``): which one to use would be a guess."""
    targets: dict[str, list[str]] = {}
    for key, target in resolved.items():
        targets.setdefault(target.strip().lower(), []).append(key)
    clashing = [keys for keys in targets.values() if len(keys) > 1]
    problems = []
    for i, record in enumerate(records):
        for keys in clashing:
            both = [k for k in keys if k in record]
            if len(both) > 1 and len(problems) < MAX_PROBLEMS:
                problems.append(
                    f"record {i}: keys {sorted(both)} name the same column "
                    f"{resolved[both[0]]!r}; send it once."
                )
    return problems


def _produced(bundle: Bundle, keys: set[str]) -> set[str]:
    """Model columns the metadata mapping makes from the records' own columns
    (``keys``; ``age`` from ``Age (years)``, ``male`` from ``Gender``): not
    pre-filled as missing."""
    given = {k.strip().lower() for k in keys}
    mapping = bundle.mapping
    out = set()
    for source, target in ((mapping.age_column, "age"), (mapping.sex_column, "male")):
        source = (source or ("sex" if target == "male" else target)).strip().lower()
        if source in given and source != target:
            out.add(target)
    return out


def _accepted(bundle: Bundle) -> set[str]:
    """Keys a record may hold besides the model's columns and the columns of the
    data dictionary: the identifiers, and the columns of the table the model was
    trained on (e.g. ``Subject_ID``, ``Gender``, ``Notes``), lower-cased."""
    mapping = bundle.mapping
    named = (
        mapping.group_column,
        mapping.site_column,
        mapping.age_column,
        mapping.sex_column,
        mapping.label_column,
    )
    source = bundle.metadata.get("source_columns") or []
    return {c.strip().lower() for c in (*KEY, *named, *source) if c}


def _number(key: str, value: Value) -> tuple[float, str | None]:
    """``value`` as a float (NaN = missing), or the problem with it."""
    if value is None:
        return math.nan, None
    if isinstance(value, bool):
        return math.nan, (
            f"{key} = {str(value).lower()} is not a number. Send a number (e.g. 1 "
            "for yes, 0 for no), or null if it was not measured."
        )
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return math.nan, (
                f"{key} = {value!r} is not a number. Send a number (e.g. 41.2), "
                "or null or no key at all if it was not measured."
            )
    else:
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            number = math.inf
    if math.isnan(number):
        return math.nan, (
            f"{key} = {value!r:.40} is not a number. Send null, or leave the key "
            "out, for a value that was not measured."
        )
    if math.isinf(number):
        return math.nan, (
            f"{key} = {value!r:.40} is not finite. Send a finite number, or null if "
            "it was not measured."
        )
    return number, None


def _text(key: str, value: Value) -> str | None:
    """The problem with ``value`` in a text column, if any."""
    if value is None or isinstance(value, str):
        return None
    return (
        f'{key} = {value!r}; send it as text (e.g. {key}: "siteA"), or null if unknown.'
    )
