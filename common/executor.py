"""Where parallel work runs: embedded (joblib's own processes, the default) or on a
Dask cluster (``--dask ADDRESS``).

The seam is joblib: every parallel loop of the project (subjects at extraction,
outer folds and permutations in training, scored chunks) is a ``joblib.Parallel``
or, for scoring, futures of the Dask client. :func:`executor` with an address
starts or joins a cluster and routes joblib to it (``parallel_config(backend=
"dask")``), so the same code runs embedded or distributed. Without an address
nothing of Dask is imported.

Addresses: ``local`` (a ``LocalCluster`` of one worker process per core) or
``local:N`` (N worker processes), one thread each, BLAS/OpenMP pinned to one
thread; ``tcp://host:8786`` (or any scheme ``distributed`` knows) joins a running
scheduler, e.g. one started by dask-jobqueue on SLURM (docs/scaling.md). Dask is
an optional extra: ``pip install '.[dask]'``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager

__all__ = ["executor", "parse_address"]

log = logging.getLogger(__name__)
#: Environment of local worker processes: one BLAS/OpenMP thread each.
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
RERUN = (
    "Run the same command again: an extraction keeps the subject-visits already "
    "done in its partitions folder."
)


def parse_address(address: str) -> tuple[str, int | None]:
    """``("local", n_workers or None)`` or ``("remote", None)``; a clear error for
    anything else.

    Examples
    --------
    >>> parse_address("local:2"), parse_address("tcp://10.0.0.5:8786")
    (('local', 2), ('remote', None))
    """
    text = address.strip()
    found = re.fullmatch(r"local(?::(\d+))?", text)
    if found:
        n = int(found.group(1)) if found.group(1) else None
        if n == 0:
            raise ValueError("--dask local:0: give at least one worker (local:1).")
        return "local", n
    if re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://\S+", text):
        return "remote", None
    raise ValueError(
        f"--dask {address!r} is not a cluster address: give 'local', 'local:N' "
        "(N worker processes on this machine) or a scheduler address such as "
        "tcp://host:8786."
    )


def _without_traceback(record: logging.LogRecord) -> bool:
    """Log lines without tracebacks while a cluster is in use (a lost scheduler
    makes Dask log one per reconnection attempt, some with no message at all):
    the command reports what went wrong and the fix. ``ALSDX_DEBUG=1`` keeps
    them."""
    record.exc_info = record.exc_text = record.stack_info = None
    return bool(record.getMessage().strip())


@contextmanager
def executor(address: str | None) -> Iterator[object | None]:
    """Run the enclosed joblib work on the Dask cluster at ``address`` (None:
    embedded, nothing changes). Yields the ``distributed.Client`` or None."""
    if address is None:
        yield None
        return
    kind, n_workers = parse_address(address)
    try:
        import joblib
        from dask.distributed import Client, LocalCluster
        from distributed import KilledWorker
        from distributed.comm.core import CommClosedError
    except ImportError:
        raise ValueError(
            "--dask needs Dask's distributed scheduler, which is not installed: "
            "pip install '.[dask]' (or pip install 'dask[distributed]')."
        ) from None
    handlers = (
        []
        if os.environ.get("ALSDX_DEBUG")
        else [
            *logging.getLogger("distributed").handlers,
            *logging.getLogger().handlers,  # distributed also logs as asyncio.tasks
        ]
    )
    for handler in handlers:
        handler.addFilter(_without_traceback)
    if kind == "local":
        n = n_workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            env=WORKER_ENV,
        )
        log.info("dask: LocalCluster of %d worker process(es) at %s", n, cluster)
    else:
        cluster = None
    try:
        try:
            client = Client(cluster if cluster is not None else address, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise ValueError(
                f"--dask {address}: cannot reach the scheduler ({exc}). Start it "
                "(dask scheduler, or dask-jobqueue on SLURM; docs/scaling.md) or "
                "check the address and port."
            ) from None
        with client:
            if cluster is None:
                workers = len(client.scheduler_info().get("workers", {}))
                log.info("dask: joined %s (%d worker(s))", address, workers)
            with joblib.parallel_config(backend="dask"):
                try:
                    yield client
                except KilledWorker as exc:
                    raise ValueError(
                        f"--dask {address}: a worker was lost and the cluster gave "
                        f"up on its task ({type(exc).__name__}: {exc}). {RERUN}"
                    ) from None
                except (CancelledError, CommClosedError) as exc:
                    raise ValueError(
                        f"--dask {address}: the connection to the scheduler was "
                        f"lost ({type(exc).__name__}: {exc}). Check that the "
                        f"scheduler and its workers are running (restart them if "
                        f"not) and that this machine reaches them. {RERUN}"
                    ) from None
    finally:
        if cluster is not None:
            cluster.close()
        for handler in handlers:
            handler.removeFilter(_without_traceback)
