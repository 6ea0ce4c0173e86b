"""Batch scoring: read a cohort or a features table in chunks, score, write atomically.

Memory is bounded by the chunk size, not the file size: Parquet is read batch by
batch, CSV/TSV chunk by chunk, and each scored chunk is appended to a temporary
file that replaces ``--out`` only when every chunk is done (nothing half-written is
ever left under the output name, and an existing output is replaced only when
asked).
"""

from __future__ import annotations

import logging
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from common.files import atomic_write
from common.table_io import iter_table, output_path, spreadsheet_safe
from features.load import load_features
from serve.bundle import Bundle, load_source
from serve.config import ScoreConfig
from serve.predict import predict

log = logging.getLogger(__name__)
OUTPUT_TYPES = (".csv", ".tsv", ".parquet")
SHOWN_ERRORS = 10


@dataclass
class ScoreReport:
    """What a scoring run did: counts, flags and the rows it could not score."""

    out: Path
    model: str
    n_rows: int = 0
    n_scored: int = 0
    n_ood: int = 0
    n_unseen_site: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, preds: pd.DataFrame) -> None:
        ok = preds["error"] == ""
        self.n_rows += len(preds)
        self.n_scored += int(ok.sum())
        self.n_ood += int(preds["ood"].fillna(False).sum())
        self.n_unseen_site += int(preds["unseen_site"].fillna(False).sum())
        room = SHOWN_ERRORS - len(self.errors)
        if room > 0:
            self.errors += preds.loc[~ok, "error"].head(room).tolist()

    def summary(self) -> str:
        """Console summary: counts, flags, and the first reasons rows were skipped."""
        failed = self.n_rows - self.n_scored
        lines = [
            f"scored {self.n_scored} of {self.n_rows} subject-visits with "
            f"{self.model} -> {self.out}",
            f"  out-of-distribution: {self.n_ood}; at a site unseen in training: "
            f"{self.n_unseen_site}",
        ]
        if failed:
            lines.append(
                f"  {failed} row(s) could not be scored (kept in the output with the "
                "reason in its `error` column), e.g.:"
            )
            lines += [f"    {e}" for e in self.errors]
        return "\n".join(lines)


def run_score(cfg: ScoreConfig) -> ScoreReport:
    """Score ``cfg.cohort`` or ``cfg.features`` with ``cfg.source``'s model, on
    the Dask cluster of ``cfg.dask`` when given."""
    from common.executor import executor

    out = output_path(cfg.out, overwrite=cfg.overwrite, types=OUTPUT_TYPES)
    bundle = load_source(cfg.source)
    with executor(cfg.dask) as client:
        return score_file(bundle, cfg, out, client)


def score_file(bundle: Bundle, cfg: ScoreConfig, out: Path, client=None) -> ScoreReport:
    """Score chunk by chunk into a temporary file, then move it onto ``out``
    (chunks scored on the workers of the Dask ``client`` when given)."""
    from tqdm.auto import tqdm

    report = ScoreReport(out, bundle.version)
    name = str(cfg.cohort or cfg.features)
    with atomic_write(out, overwrite=cfg.overwrite) as tmp:
        writer = _Writer(tmp, out.suffix.lower())
        try:
            total, chunks = read_chunks(cfg, bundle.mapping.text_columns())
            with tqdm(
                total=total, unit="row", desc="scoring", disable=not cfg.progress
            ) as bar:
                for preds in _scored(bundle, chunks, name, client):
                    writer.write(preds)
                    report.add(preds)
                    bar.update(len(preds))
        finally:
            writer.close()
        if report.n_rows == 0:
            raise ValueError(f"{name}: no rows to score.")
    return report


def _scored(bundle: Bundle, chunks, name: str, client) -> Iterator[pd.DataFrame]:
    """Each chunk's predictions, in input order. On a Dask cluster the bundle is
    sent to every worker once, at most two chunks per worker are in flight (the
    driver's memory stays bounded by the chunk size), and warnings raised on a
    worker are raised again here, so they reach the log as they do embedded."""
    if client is None:
        for first, chunk in chunks:
            yield predict(bundle, chunk, source=name, first_row=first)
        return
    remote = client.scatter(bundle, broadcast=True, hash=False)
    limit = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    pending: deque = deque()

    def collect():
        preds, caught = pending.popleft().result()
        for category, message in caught:
            warnings.warn(message, category, stacklevel=3)
        return preds

    for first, chunk in chunks:
        data = client.scatter(chunk, hash=False)  # sent as data, not in the graph
        pending.append(
            client.submit(_predict_chunk, remote, data, name, first, pure=False)
        )
        if len(pending) >= limit:
            yield collect()
    while pending:
        yield collect()


def _predict_chunk(bundle: Bundle, chunk: pd.DataFrame, name: str, first: int):
    """On a worker: the chunk's predictions and the warnings raised meanwhile."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preds = predict(bundle, chunk, source=name, first_row=first)
    return preds, [(w.category, str(w.message)) for w in caught]


def read_chunks(
    cfg: ScoreConfig, text_columns: list[str] | tuple[str, ...] = ()
) -> tuple[int | None, Iterator[tuple[int, pd.DataFrame]]]:
    """Total row count (when known) and ``(first_row, chunk)`` pairs of the input,
    read by the one table reader (``text_columns`` as text besides the ids)."""
    size = cfg.chunk_size
    if cfg.cohort is not None:
        table = load_features(cohort=cfg.cohort, progress=cfg.progress).table
        return len(table), (
            (i, table.iloc[i : i + size]) for i in range(0, len(table), size)
        )
    return iter_table(Path(cfg.features), size, text_columns=text_columns)


class _Writer:
    """Append scored chunks to one CSV, TSV or Parquet file."""

    def __init__(self, path: Path, suffix: str):
        self.path = path
        self.suffix = suffix
        self._parquet = None
        self._schema = None
        self._started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._schema is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self._schema = pa.schema(
                    [
                        f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                        for f in table.schema
                    ]
                )
                self._parquet = pq.ParquetWriter(self.path, self._schema)
            table = pa.Table.from_pandas(
                frame, schema=self._schema, preserve_index=False
            )
            self._parquet.write_table(table)
            return
        spreadsheet_safe(frame).to_csv(
            self.path,
            sep="," if self.suffix == ".csv" else "\t",
            index=False,
            mode="a" if self._started else "w",
            header=not self._started,
        )
        self._started = True

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
