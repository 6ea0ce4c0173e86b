"""Process start-up of the predict API: uvicorn, one or several worker processes,
thread limits, and warnings logged without their message.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from serve.api.app import create_app
from serve.api.middleware import read_token
from serve.bundle import load_source
from serve.config import ApiConfig

log = logging.getLogger("serve.api")


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
        app = "serve.api.server:worker_app"
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
