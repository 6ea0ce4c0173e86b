"""Reading and writing features tables: the one reader of training, scoring, the
explanation report and the predict API.

The same dtype rule holds everywhere: the identifier columns
(:data:`common.schema.TEXT_ID_COLUMNS`,
plus any a caller names, such as a lab's ``Subject_ID`` or ``Scanner``) are always
text, so site ``01`` stays ``"01"`` whether a table is read for training or for
scoring, whole or in chunks; every other column keeps the type its values have.
Header names are matched case-insensitively and stripped of surrounding spaces.
Writes are atomic (a temporary file renamed onto the target) and create the
target's folder.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from common.files import atomic_write, make_folder
from common.schema import TEXT_ID_COLUMNS

#: Always read as text, whatever they look like ("001" stays "001").
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
    wanted = {c.strip().lower() for c in (*TEXT_ID_COLUMNS, *text_columns) if c}
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
        Further identifier columns (beyond
        :data:`common.schema.TEXT_ID_COLUMNS`) read as text.

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
        if len(header) == 1 and ";" in str(header[0]):
            raise ValueError(
                f"{path}: the header is one column holding ';' "
                f"({str(header[0])[:60]!r}...): the table is separated by "
                "semicolons, as spreadsheets in many European locales save 'CSV' "
                "(usually with decimal commas too). Save it as .xlsx, or as CSV with "
                "commas between fields and points in numbers."
            )
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
    for problem in uncached_formulas(path):
        warnings.warn(problem, UserWarning, stacklevel=2)
    size = chunk_size or max(len(table), 1)
    slices = (table.iloc[i : i + size] for i in range(0, max(len(table), 1), size))
    return len(table), _numbered(slices, path, text)


def uncached_formulas(path: Path) -> list[str]:
    """One problem per column of an .xlsx file's first sheet holding formulas
    without a saved result (as openpyxl and other programs write them): Excel
    readers see those cells as empty.

    >>> import tempfile, openpyxl
    >>> p = Path(tempfile.mkdtemp()) / "t.xlsx"
    >>> book = openpyxl.Workbook()
    >>> book.active.append(["participant_id", "nfl_pg_ml"])
    >>> book.active.append(["sub-01", "=12*1000"])
    >>> book.save(p)
    >>> problem = uncached_formulas(p)[0]
    >>> "column 'nfl_pg_ml' holds 1 formula(s) with no saved result" in problem
    True
    """
    if Path(path).suffix.lower() != ".xlsx":
        return []
    from openpyxl import load_workbook

    books = [load_workbook(path, read_only=True, data_only=d) for d in (False, True)]
    try:
        sheets = (b.worksheets[0].iter_rows(values_only=True) for b in books)
        rows = zip(*sheets, strict=True)
        header, _ = next(rows, ((), ()))
        found: dict[str, list[tuple[int, str]]] = {}
        for number, (formulas, values) in enumerate(rows, start=2):
            for j, (formula, value) in enumerate(zip(formulas, values, strict=True)):
                if value is None and str(formula).startswith("="):
                    name = str(header[j]) if j < len(header) else f"column {j + 1}"
                    found.setdefault(name, []).append((number, formula))
    finally:
        for book in books:
            book.close()
    return [
        f"{path}: column {name!r} holds {len(cells)} formula(s) with no saved result "
        f"(e.g. row {cells[0][0]}: {cells[0][1][:40]}), which read as empty cells. "
        "Open the workbook in Excel or LibreOffice and save it (that stores the "
        "results), or export the sheet as CSV."
        for name, cells in found.items()
    ]


def _numbered(
    chunks, path: Path, text: list[str]
) -> Iterator[tuple[int, pd.DataFrame]]:
    first = 0
    chunks = iter(chunks)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except pd.errors.ParserError as exc:  # "Expected 139 fields in line 3, saw 156"
            raise ValueError(
                f"{path}: cannot be read as a table ({exc}). Every row must have as "
                "many fields as the header: look for a separator inside a value (a "
                "decimal comma, an unquoted comma in a note) on that line."
            ) from None
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
    if out.is_dir():
        raise ValueError(
            f"{out} is a folder; --out names the file to write, e.g. "
            f"{out / ('result' + out.suffix.lower())}."
        )
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it.")
    make_folder(out.parent, f"the folder for {out.name},", "choose another --out")
    return out


#: What a spreadsheet reads as the start of a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each text cell that a spreadsheet would run as a formula
    (``=HYPERLINK(...)``, ``+1``, ``@SUM``...) prefixed with ``'``, as OWASP
    advises for CSV files; numbers are left alone. Only text columns are copied.

    >>> safe = spreadsheet_safe(pd.DataFrame({"id": ["=1+2", "sub-1"], "x": [-1.0, 2]}))
    >>> safe["id"].tolist(), safe["x"].tolist()
    (["'=1+2", 'sub-1'], [-1.0, 2.0])
    """
    out = table
    for c in table.columns:
        column = table[c]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        text = column.astype("string")
        risky = text.str.startswith(FORMULA_START).fillna(False).to_numpy(bool)
        if risky.any():
            if out is table:
                out = table.copy()
            out[c] = column.astype(object).where(~risky, "'" + text.astype(object))
    return out


def write_table(table: pd.DataFrame, out: Path, *, overwrite: bool = False) -> Path:
    """Write ``table`` to ``out`` (.parquet, .csv or .tsv) atomically, creating its
    folder."""
    out = output_path(out, overwrite=overwrite)
    with atomic_write(out, overwrite=overwrite) as tmp:
        if out.suffix.lower() == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            spreadsheet_safe(table).to_csv(tmp, sep=_sep(out), index=False)
    return out


__all__ = [
    "TABLE_TYPES",
    "iter_table",
    "output_path",
    "read_table",
    "spreadsheet_safe",
    "write_table",
]
