"""The predict API: a locked model served over HTTP (FastAPI on uvicorn).

``python -m serve api --model URI`` serves, on loopback by default:

- ``GET /health``: ``{"status": "ok", "model": "als-mimics-dx v3"}``.
- ``GET /model``: the model's classes, feature columns, training metrics and versions.
- ``POST /predict``: body ``{"records": [{"nfl_pg_ml": 41.2, "site": "siteA"}, ...]}``;
  one prediction per record, with the columns :func:`serve.predict.predict` returns.
- ``POST /explain?top=10``: the predictions plus, per record, the ``top`` SHAP
  contributions toward the predicted class.

A key absent from a record, or ``null``, means the value was not measured. Records
that cannot be read are refused with 422 and a message naming the record, the column
and the fix; bodies over ``--max-body-bytes`` with 413. The server logs counts,
timings and status codes only, never a submitted value or identifier.
"""

from __future__ import annotations

import asyncio
import difflib
import gc
import hmac
import inspect
import json
import logging
import math
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from features.dictionary import describe
from serve.bundle import Bundle, fill_availability, json_safe, load_source
from serve.config import ApiConfig
from serve.predict import ID_COLUMNS, predict

log = logging.getLogger("serve.api")

TEXT_COLUMNS = ("site",)  # feature columns read as strings; all others are numbers
ROUTES = ("/health", "/model", "/predict", "/explain", "/docs", "/openapi.json")
MAX_PROBLEMS = 5  # problems quoted in one 422 message
#: The most JSON one record may take (a features-table row of ~600 columns is
#: ~30 KB): a body with more bytes between two braces is refused as it arrives,
#: before it is read whole or parsed (parsing 5 MB holds a server ~0.3 s).
MAX_RECORD_BYTES = 64_000
_BRACE = re.compile(rb"[{}]")
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
_BODY = {
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
    ids = [c for c in ID_COLUMNS if c in extra]
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
    return {c.strip().lower() for c in (*ID_COLUMNS, *named, *source) if c}


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


def explain_records(
    bundle: Bundle, frame: pd.DataFrame, predicted: list[str | None], top: int
) -> list[dict[str, Any] | None]:
    """Per record: the predicted class, its base value and its ``top`` SHAP pushes
    toward it, largest first (``None`` for a record that was not scored)."""
    from serve.explain import shap_values, top_contributions

    scored = [i for i, cls in enumerate(predicted) if cls is not None]
    out: list[dict[str, Any] | None] = [None] * len(predicted)
    if not scored:
        return out
    exp = shap_values(bundle, frame.iloc[scored], seed=0)
    for row, i in enumerate(scored):
        cls = predicted[i]
        out[i] = {
            "predicted_class": cls,
            "base_value": exp.base_values[row, exp.classes.index(cls)],
            "contributions": top_contributions(exp, row, cls, top),
        }
    return out


def create_app(bundle: Bundle, cfg: ApiConfig, token: str | None = None) -> FastAPI:
    """The predict API of ``bundle`` as a FastAPI application.

    Parameters
    ----------
    bundle : Bundle
        The loaded model (:func:`serve.bundle.load_bundle`).
    cfg : ApiConfig
        Limits: ``max_body_bytes`` per request (413 beyond), ``max_records`` per
        prediction request and ``max_explain`` per explanation request.
    token : str, optional
        When given, every route but ``/health`` needs ``Authorization: Bearer
        <token>`` (401 otherwise; :func:`read_token`).

    Returns
    -------
    FastAPI
        Routes ``GET /health``, ``GET /model``, ``POST /predict`` and
        ``POST /explain``.

    Examples
    --------
    >>> import uvicorn  # doctest: +SKIP
    >>> uvicorn.run(create_app(bundle, ApiConfig(ModelSource(uri))))  # doctest: +SKIP
    """
    app = FastAPI(
        title="ALS and mimics: predict API",
        description=__doc__,
        **_no_telemetry(),
    )
    model_info = bundle.describe()

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request, exc: RequestValidationError) -> JSONResponse:
        # The submitted values ("input", "ctx") are left out of the answer.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()[:20]
        ]
        return JSONResponse(
            {
                "detail": errors,
                "hint": 'send JSON {"records": [{"column": value, ...}, ...]}; a '
                "value is a number, text, true/false or null.",
            },
            status_code=422,
        )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": bundle.version}

    @app.get("/model")
    def model() -> dict[str, Any]:
        return model_info

    batcher = MicroBatcher(lambda batch: predict_batch(bundle, batch, cfg.max_records))

    @app.post("/predict", openapi_extra=_BODY)
    async def predict_records(records: RecordsBody) -> JSONResponse:
        start = time.perf_counter()
        try:  # a request that would hold up the others stops here
            screen(records, bundle, cfg.max_records)
        except RecordsError as exc:
            content, status = {"detail": str(exc)}, 422
        else:
            content, status = await batcher.submit(records)
        ms = 1000 * (time.perf_counter() - start)
        n = len(records)
        log.info("predict: %d record(s) -> %d in %.0f ms", n, status, ms)
        return JSONResponse(content, status_code=status)

    @app.post("/explain", openapi_extra=_BODY)
    def explain(
        records: RecordsBody, top: Annotated[int, Query(ge=1, le=1000)] = 10
    ) -> JSONResponse:
        def answer() -> dict[str, Any]:
            frame = records_to_frame(records, bundle, cfg.max_explain)
            out = predict(bundle, frame, source="request")
            predicted = [None if pd.isna(c) else str(c) for c in out["predicted_class"]]
            return {
                "model": bundle.version,
                "predictions": _rows(out),
                "explanations": explain_records(bundle, frame, predicted, top),
            }

        return _guarded("explain", len(records), answer)

    app.add_middleware(BodySizeLimit, max_body_bytes=cfg.max_body_bytes)
    if token is not None:
        app.add_middleware(BearerToken, token=token)  # before reading any body
    app.add_middleware(AccessLog)  # outermost: also logs the 401s and 413s
    return app


Answer = tuple[dict[str, Any], int]


def predict_batch(
    bundle: Bundle, requests: list[list[dict[str, Value]]], max_records: int
) -> list[Answer]:
    """The answers (JSON content, HTTP status) of several ``/predict`` requests,
    scored as one table when they can be: each request's answer is the one it
    would get alone (row numbers and the cohort-level unit check are per request,
    :func:`serve.predict.predict`'s ``groups``); a batch with a bad request is
    answered request by request, so one bad request fails only itself."""
    sizes = [len(r) for r in requests]
    if len(requests) > 1 and all(0 < n <= max_records for n in sizes):
        try:
            records = [record for request in requests for record in request]
            frame = records_to_frame(records, bundle, len(records))
            groups = np.repeat(np.arange(len(requests)), sizes)
            out = predict(bundle, frame, source="request", groups=groups)
        except Exception as exc:  # noqa: BLE001  (answered one by one, with reasons)
            log.info(
                "batch of %d requests answered one by one: %s (message withheld)",
                len(requests),
                type(exc).__name__,
            )
        else:
            rows = _rows(out)
            ends = np.cumsum(sizes)
            return [
                ({"model": bundle.version, "predictions": rows[end - n : end]}, 200)
                for n, end in zip(sizes, ends, strict=True)
            ]
    return [_answer_one(bundle, request, max_records) for request in requests]


def _answer_one(bundle: Bundle, records: list[dict[str, Value]], limit: int) -> Answer:
    def answer() -> dict[str, Any]:
        frame = records_to_frame(records, bundle, limit)
        out = predict(bundle, frame, source="request")
        return {"model": bundle.version, "predictions": _rows(out)}

    return _answered("predict", answer)


class MicroBatcher:
    """Score concurrent requests together: one scoring thread takes every request
    waiting when it is free (no timer, so a lone request waits for nothing), and
    the event loop keeps reading new requests meanwhile. Under load the batches
    grow by themselves and the per-request cost of a pipeline call (mostly
    per-column work, nearly the same for 1 row as for 50) is shared."""

    def __init__(
        self,
        score: Callable[[list], list[Answer]],
        max_batch: int = 64,
        gather_s: float = 0.004,
    ):
        self.score = score
        self.max_batch = max_batch
        self.gather_s = gather_s
        self.waiting: list[tuple[Any, asyncio.Future]] = []
        self.running = False

    async def submit(self, item) -> Answer:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((item, future))
        if not self.running:
            self.running = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        clients = 1
        try:
            while True:
                await self._gather(clients)  # also when none is waiting yet
                if not self.waiting:
                    break
                batch = self.waiting[: self.max_batch]
                del self.waiting[: self.max_batch]
                items = [item for item, _ in batch]
                try:
                    answers = await loop.run_in_executor(None, self.score, items)
                except Exception as exc:  # noqa: BLE001  (a bug: each gets a 500)
                    answers = [_internal_error("predict", exc)] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
                # the clients now answered, and those that came while scoring
                clients = min(len(batch) + len(self.waiting), self.max_batch)
        finally:
            self.running = False

    async def _gather(self, clients: int) -> None:
        """Under load (``clients``: the requests answered by the last batch plus
        those that were waiting), give the clients just answered up to
        :attr:`gather_s` to send their next request, so that the next batch holds
        them all instead of the one or two requests that arrived while the answers
        were going out (a batch costs nearly the same whatever its size). A lone
        request never waits."""
        if clients <= 1:
            return
        deadline = time.perf_counter() + self.gather_s
        while len(self.waiting) < clients and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)


def _rows(out: pd.DataFrame) -> list[dict[str, Any]]:
    return json_safe(out.to_dict(orient="records"))


def _guarded(what: str, n: int, answer: Callable[[], dict[str, Any]]) -> JSONResponse:
    """Run ``answer`` (:func:`_answered`) and log its size, status and time."""
    start = time.perf_counter()
    content, status = _answered(what, answer)
    ms = 1000 * (time.perf_counter() - start)
    log.info("%s: %d record(s) -> %d in %.0f ms", what, n, status, ms)
    return JSONResponse(content, status_code=status)


def _answered(what: str, answer: Callable[[], dict[str, Any]]) -> Answer:
    """``answer()``'s JSON and 200, 422 for a ``ValueError``, 500 otherwise.

    Only the exception type is logged: exception messages and tracebacks' final
    lines can quote the submitted values.
    """
    try:
        return json_safe(answer()), 200
    except ValueError as exc:
        return {"detail": str(exc)}, 422
    except Exception as exc:  # a failure must not log the values
        return _internal_error(what, exc)


def _internal_error(what: str, exc: Exception) -> Answer:
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s failed: %s (message withheld)\n%s", what, type(exc).__name__, frames)
    detail = (
        f"internal error while answering /{what}; nothing about the request was "
        "logged but its size. Check the server log for the error type and report it."
    )
    return {"detail": detail}, 500


def _no_telemetry() -> dict[str, Any]:
    """FastAPI keyword switching off its OpenTelemetry (it can export the bodies)."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}  # FastAPI before native telemetry
    off = ("tracing", "metrics", "logs", "operation_spans", "auto_configure")
    return {"telemetry": dict.fromkeys(off, False)}


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_body_bytes``; 422 as
    soon as more than :data:`MAX_RECORD_BYTES` arrive without a brace (no record
    is that large), so an oversized record costs the server 64 KB, not the
    body limit.

    The declared ``Content-Length`` is checked first; a body sent without one
    (chunked) is counted as it arrives. A body within the limits is read whole
    and handed on, so memory per request is bounded by the limit.
    """

    def __init__(self, app, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_body_bytes:
                await self._refuse(send)
                return
        chunks, size, gap = [], 0, 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(send)
                return
            gap, longest = _brace_gap(chunk, gap)
            if longest > MAX_RECORD_BYTES:
                detail = (
                    f"a record of this request takes more than {MAX_RECORD_BYTES} "
                    "bytes of JSON; a record holds one subject-visit's columns (the "
                    "model's are listed by GET /model). Send fewer keys per record."
                )
                await _send_json(send, 422, detail, (b"connection", b"close"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        detail = (
            f"request body larger than the limit of {self.max_body_bytes} bytes "
            "(--max-body-bytes); split the batch into smaller requests."
        )
        await _send_json(send, 413, detail, (b"connection", b"close"))


def _brace_gap(chunk: bytes, gap: int) -> tuple[int, int]:
    """Bytes since the last brace after ``chunk`` (``gap`` before it), and the
    longest run without a brace that ``chunk`` ends or holds.

    >>> _brace_gap(b'"a": 1}, {"b"', 10)
    (3, 16)
    """
    longest, last = 0, 0
    for brace in _BRACE.finditer(chunk):
        longest = max(longest, gap + brace.start() - last)
        gap, last = 0, brace.end()
    gap += len(chunk) - last
    return gap, max(longest, gap)


async def _send_json(send, status: int, detail: str, *headers) -> None:
    """Answer an ASGI request from a middleware with ``{"detail": detail}``."""
    payload = json.dumps({"detail": detail}).encode()
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace stripped).

    Raises
    ------
    ValueError
        If the file cannot be read or holds fewer than 16 characters.
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(
            f"--token-file {path}: cannot read it ({err}). Write the secret into a "
            "UTF-8 text file readable by this user."
        ) from err
    if len(token) < 16:
        raise ValueError(
            f"--token-file {path}: holds {len(token)} characters; use a secret of at "
            "least 16, e.g. `python -c 'import secrets; print(secrets.token_urlsafe"
            "(32))' > token.txt`."
        )
    return token


class BearerToken:
    """ASGI middleware: 401 unless ``Authorization: Bearer <token>`` matches (the
    scheme in any case, the token compared in constant time); ``/health`` stays
    open for load balancers."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, credentials = given.strip().partition(b" ")
        # the scheme is case-insensitive (RFC 7235 section 2.1), the token is not
        if scheme.lower() == b"bearer" and hmac.compare_digest(
            credentials.strip(), self.expected
        ):
            await self.app(scope, receive, send)
            return
        detail = (
            "missing or wrong bearer token: send the header "
            "'Authorization: Bearer <token>' with the token of --token-file."
        )
        await _send_json(send, 401, detail, (b"www-authenticate", b"Bearer"))


class AccessLog:
    """ASGI middleware logging method, route, status and time; no query or body."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [0]

        async def send_noted(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noted)
        finally:
            path = scope["path"] if scope["path"] in ROUTES else "<other path>"
            ms = 1000 * (time.perf_counter() - start)
            log.info("%s %s %s %.0f ms", scope["method"], path, status[0] or "-", ms)


def run_api(cfg: ApiConfig) -> None:
    """Load the model of ``cfg.source`` and serve it on ``cfg.host:cfg.port``.

    Blocks until the server is stopped (Ctrl-C). uvicorn's own access log is off:
    :class:`AccessLog` logs the same lines without query strings. Once the model
    is loaded, warnings are logged without their message, which can quote
    submitted values (e.g. a site never seen in training). Each process scores
    with one BLAS/OpenMP thread (requests are batched, not split over threads);
    with ``cfg.workers`` > 1 uvicorn starts that many processes, each building
    the app with :func:`worker_app`.
    """
    import uvicorn

    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the worker processes
    if cfg.workers == 1:
        app = _serving_app(cfg)
    else:
        if cfg.token_file is not None:
            read_token(cfg.token_file)  # a bad token file fails here, once
        load_source(cfg.source)
        os.environ[_CONFIG_ENV] = json.dumps(_config_json(cfg))
        app = "serve.api:worker_app"
    uvicorn.run(
        app,
        host=cfg.host,
        port=cfg.port,
        access_log=False,
        workers=cfg.workers if cfg.workers > 1 else None,
        factory=cfg.workers > 1,
    )


_CONFIG_ENV = "ALSDX_API_CONFIG"
_THREAD_LIMITS: list[Any] = []  # kept alive: the limits hold while it exists


def _serving_app(cfg: ApiConfig) -> FastAPI:
    """Load the model and build the app of one server process."""
    from threadpoolctl import threadpool_limits

    _THREAD_LIMITS.append(threadpool_limits(1))
    token = read_token(cfg.token_file) if cfg.token_file is not None else None
    bundle = load_source(cfg.source)
    app = create_app(bundle, cfg, token)
    warnings.showwarning = _show_warning_without_message
    # The model, MLflow and the libraries are hundreds of thousands of objects
    # that live as long as the server: out of the collector's way, so that its
    # full passes (a pause of every request in flight) scan only what serving
    # makes.
    gc.collect()
    gc.freeze()
    # the event loop reads and answers requests while the scoring thread holds
    # the GIL: let it in every 1 ms rather than every 5 (measured: +5-10 %
    # requests/s at concurrency 32, experiments/bench_api.py)
    sys.setswitchinterval(0.001)
    log.info(
        "serving %s (%d feature columns, classes %s)",
        bundle.version,
        len(bundle.feature_columns),
        bundle.classes,
    )
    return app


def _config_json(cfg: ApiConfig) -> dict[str, Any]:
    out = {k: v for k, v in vars(cfg).items() if k != "source"}
    out["token_file"] = None if cfg.token_file is None else str(cfg.token_file)
    out["source"] = vars(cfg.source)
    return out


def worker_app() -> FastAPI:
    """The app of one of ``--workers`` processes (uvicorn's factory), from the
    configuration :func:`run_api` put in the environment."""
    from serve.config import ModelSource

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raw = json.loads(os.environ[_CONFIG_ENV])
    source = ModelSource(**raw.pop("source"))
    if raw["token_file"] is not None:
        raw["token_file"] = Path(raw["token_file"])
    return _serving_app(ApiConfig(source, **raw))


def _show_warning_without_message(
    message, category, filename, lineno, file=None, line=None
) -> None:
    """``warnings.showwarning`` of the server: category and place, not the text."""
    log.warning(
        "%s at %s:%d (message withheld: it can quote submitted values)",
        category.__name__,
        Path(filename).name,
        lineno,
    )
