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

import inspect
import logging
import time
from typing import Annotated, Any

import pandas as pd
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serve.api.batching import MicroBatcher, guarded, predict_batch, rows_of
from serve.api.middleware import AccessLog, BearerToken, BodySizeLimit
from serve.api.records import (
    BODY_SCHEMA,
    RecordsBody,
    RecordsError,
    records_to_frame,
    screen,
)
from serve.bundle import Bundle
from serve.config import ApiConfig
from serve.predict import predict

log = logging.getLogger("serve.api")


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

    @app.post("/predict", openapi_extra=BODY_SCHEMA)
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

    @app.post("/explain", openapi_extra=BODY_SCHEMA)
    def explain(
        records: RecordsBody, top: Annotated[int, Query(ge=1, le=1000)] = 10
    ) -> JSONResponse:
        def answer() -> dict[str, Any]:
            frame = records_to_frame(records, bundle, cfg.max_explain)
            out = predict(bundle, frame, source="request")
            predicted = [None if pd.isna(c) else str(c) for c in out["predicted_class"]]
            return {
                "model": bundle.version,
                "predictions": rows_of(out),
                "explanations": explain_records(bundle, frame, predicted, top),
            }

        return guarded("explain", len(records), answer)

    app.add_middleware(BodySizeLimit, max_body_bytes=cfg.max_body_bytes)
    if token is not None:
        app.add_middleware(BearerToken, token=token)  # before reading any body
    app.add_middleware(AccessLog)  # outermost: also logs the 401s and 413s
    return app


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


def _no_telemetry() -> dict[str, Any]:
    """FastAPI keyword switching off its OpenTelemetry (it can export the bodies)."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}  # FastAPI before native telemetry
    off = ("tracing", "metrics", "logs", "operation_spans", "auto_configure")
    return {"telemetry": dict.fromkeys(off, False)}
