"""Answering /predict requests: concurrent requests scored as one table (the
micro-batcher), each request answered as it would be alone; errors as JSON answers
that never quote a submitted value.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from fastapi.responses import JSONResponse

from serve.api.records import Value, records_to_frame
from serve.bundle import Bundle, json_safe
from serve.predict import predict

log = logging.getLogger("serve.api")

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
            rows = rows_of(out)
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
        return {"model": bundle.version, "predictions": rows_of(out)}

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


def rows_of(out: pd.DataFrame) -> list[dict[str, Any]]:
    return json_safe(out.to_dict(orient="records"))


def guarded(what: str, n: int, answer: Callable[[], dict[str, Any]]) -> JSONResponse:
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
