"""Reading and writing features tables: the one reader of training, scoring, the
explanation report and the predict API.

The same dtype rule holds everywhere: the identifier columns (:data:`ID_COLUMNS`,
plus any a caller names, such as a lab's ``Subject_ID`` or ``Scanner``) are always
text, so site ``01`` stays ``"01"`` whether a table is read for training or for
scoring, whole or in chunks; every other column keeps the type its values have.
Header names are matched case-insensitively and stripped of surrounding spaces.
Writes are atomic (a temporary file renamed onto the target) and create the
target's folder.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from features.files import atomic_write

#: Always read as text, whatever they look like ("001" stays "001").
ID_COLUMNS = ("participant_id", "session", "site")
TABLE_TYPES = (".parquet", ".csv", ".tsv", ".xlsx", ".xls")
WRITE_TYPES = (".parquet", ".csv", ".tsv")


def cache_root() -> Path:
    """The project's cache folder: ``$ALSDX_CACHE_DIR`` when set, else
    ``~/.cache/als-mimics-dx`` (never relative to the working directory).

    Examples
    --------
    >>> cache_root().is_absolute()
    True
    """
    root = os.environ.get("ALSDX_CACHE_DIR") or "~/.cache/als-mimics-dx"
    return Path(root).expanduser().resolve()


def _sep(path: Path) -> str:
    return "," if path.suffix.lower() == ".csv" else "\t"


def _text_names(header: Iterable, text_columns: Iterable[str]) -> list[str]:
    """The header names that are identifier columns (case-insensitive)."""
    wanted = {c.strip().lower() for c in (*ID_COLUMNS, *text_columns) if c}
    return [h for h in header if str(h).strip().lower() in wanted]


def _tidy(frame: pd.DataFrame, path: Path, text: list[str]) -> pd.DataFrame:
    """Stripped header names; identifier columns as pandas strings."""
    frame.columns = [str(c).strip() for c in frame.columns]
    seen: dict[str, str] = {}
    for c in frame.columns:
        key = c.lower()
        if key in seen:
            raise ValueError(
                f"{path}: columns {seen[key]!r} and {c!r} differ only in case or "
                "spaces; rename one so that each column has its own name."
            )
        seen[key] = c
    for c in _text_names(frame.columns, [str(t).strip() for t in text]):
        frame[c] = _as_text(frame[c])
    return frame


def _as_text(col: pd.Series) -> pd.Series:
    """Identifier values as strings: 1.0 read from a spreadsheet becomes "1"."""
    if pd.api.types.is_float_dtype(col):
        whole = col.dropna()
        if (whole == whole.round()).all():
            return col.astype("Int64").astype("string")
    return col.astype("string").str.strip()


def _check_input(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"features table {path} not found; write one with "
            "`python -m features extract COHORT --out FILE`, or check the path."
        )
    if path.suffix.lower() not in TABLE_TYPES:
        raise ValueError(
            f"{path}: unsupported table type {path.suffix.lower()!r}; use one of "
            f"{', '.join(TABLE_TYPES)}."
        )


def read_table(path: Path, *, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Read a features table: .parquet, .csv, .tsv or .xlsx/.xls (first sheet).

    Parameters
    ----------
    path : Path
        The table.
    text_columns : iterable of str
        Further identifier columns (beyond :data:`ID_COLUMNS`) read as text.

    Returns
    -------
    DataFrame
        Identifier columns as pandas strings, the others as their values say.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("Subject_ID,Site,nfl_pg_ml\\n007,01,12.5\\n")
    >>> t = read_table(p, text_columns=["subject_id"])
    >>> t["Subject_ID"].tolist(), t["Site"].tolist(), t["nfl_pg_ml"].tolist()
    (['007'], ['01'], [12.5])
    """
    _, chunks = iter_table(path, None, text_columns=text_columns)
    parts = [chunk for _, chunk in chunks]
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def iter_table(
    path: Path, chunk_size: int | None, *, text_columns: Iterable[str] = ()
) -> tuple[int | None, Iterator[tuple[int, pd.DataFrame]]]:
    """The row count (when known cheaply) and ``(first_row, chunk)`` pairs.

    Parquet is read batch by batch and CSV/TSV chunk by chunk, so memory is bounded
    by ``chunk_size`` rows (``None``: the whole table at once); Excel is read whole.
    Every chunk follows :func:`read_table`'s dtype rules.
    """
    path = Path(path)
    _check_input(path)
    text = list(text_columns)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        size = chunk_size or max(parquet.metadata.num_rows, 1)
        batches = (b.to_pandas() for b in parquet.iter_batches(batch_size=size))
        return parquet.metadata.num_rows, _numbered(batches, path, text)
    if suffix in (".csv", ".tsv"):
        try:
            header = pd.read_csv(path, sep=_sep(path), nrows=0).columns
        except (pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{path}: cannot read a header row ({exc}); save the table as "
                "UTF-8 text with one header row."
            ) from exc
        dtype = dict.fromkeys(_text_names(header, text), "string")
        reader = pd.read_csv(path, sep=_sep(path), dtype=dtype, chunksize=chunk_size)
        chunks = [reader] if chunk_size is None else reader
        return None, _numbered(chunks, path, text)
    try:
        header = pd.read_excel(path, nrows=0).columns
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path}: not a readable Excel workbook ({exc}); open it in Excel and "
            "save it as .xlsx again, or export it as CSV."
        ) from None
    dtype = dict.fromkeys(_text_names(header, text), "string")
    table = pd.read_excel(path, dtype=dtype)
    size = chunk_size or max(len(table), 1)
    slices = (table.iloc[i : i + size] for i in range(0, max(len(table), 1), size))
    return len(table), _numbered(slices, path, text)


def _numbered(
    chunks, path: Path, text: list[str]
) -> Iterator[tuple[int, pd.DataFrame]]:
    first = 0
    for chunk in chunks:
        yield first, _tidy(chunk.reset_index(drop=True), path, text)
        first += len(chunk)


def output_path(out: Path, *, overwrite: bool, types=WRITE_TYPES) -> Path:
    """Check ``out`` before any work: a known type, not existing unless
    ``overwrite``; its folder is created."""
    out = Path(out)
    if out.suffix.lower() not in types:
        raise ValueError(
            f"{out}: unsupported output type {out.suffix.lower()!r}; use one of "
            f"{', '.join(types)}."
        )
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot create the folder {out.parent} for {out.name}: "
            f"{exc.strerror or exc}; choose another --out."
        ) from exc
    return out


def write_table(table: pd.DataFrame, out: Path, *, overwrite: bool = False) -> Path:
    """Write ``table`` to ``out`` (.parquet, .csv or .tsv) atomically, creating its
    folder."""
    out = output_path(out, overwrite=overwrite)
    with atomic_write(out) as tmp:
        if out.suffix.lower() == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, sep=_sep(out), index=False)
    return out


__all__ = [
    "ID_COLUMNS",
    "TABLE_TYPES",
    "iter_table",
    "output_path",
    "read_table",
    "write_table",
]
