"""The predict API: a locked model served over HTTP (FastAPI on uvicorn).

One module per job: :mod:`~serve.api.records` reads and screens a request's records,
:mod:`~serve.api.batching` scores concurrent requests together,
:mod:`~serve.api.middleware` holds the body limits, bearer token and access log,
:mod:`~serve.api.app` assembles the routes and :mod:`~serve.api.server` starts the
processes (``python -m serve api``).
"""

from serve.api.app import create_app, explain_records
from serve.api.batching import MicroBatcher, predict_batch
from serve.api.middleware import read_token
from serve.api.records import RecordsError, records_to_frame, screen
from serve.api.server import run_api, worker_app

__all__ = [
    "MicroBatcher",
    "RecordsError",
    "create_app",
    "explain_records",
    "predict_batch",
    "read_token",
    "records_to_frame",
    "run_api",
    "screen",
    "worker_app",
]
