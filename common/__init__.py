"""Infrastructure every stage uses, at the bottom of the dependency order.

- :mod:`common.files`: atomic writes, folders, locks between processes.
- :mod:`common.table_io`: the one reader and writer of tables (CSV, TSV, Parquet,
  Excel), with spreadsheet-safe output.
- :mod:`common.schema`: the identifier, metadata and visit-time columns, the
  diagnoses and the mimics.
- :mod:`common.statistics`: AUC, marker direction, ROC, FDR, Wilson intervals,
  per-subject slopes.
- :mod:`common.html`: the self-contained HTML report pages and their figures.
- :mod:`common.executor`: where parallel work runs (joblib or a Dask cluster).
- :mod:`common.cli`: how the three command lines report errors and exit.

Nothing here imports a stage package (``lint-imports`` checks it).
"""

from common.cli import run_command, setup_logging
from common.executor import executor
from common.files import atomic_write, file_lock, make_folder, write_atomically
from common.table_io import read_table, write_table

__all__ = [
    "atomic_write",
    "executor",
    "file_lock",
    "make_folder",
    "read_table",
    "run_command",
    "setup_logging",
    "write_atomically",
    "write_table",
]
