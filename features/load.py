"""The one way every command gets a features table: ``--cohort DIR`` (extracted,
optionally cached) or ``--features FILE`` (read by the one table reader).

Training, ``training analyze`` and ``serve explain|monitor`` call
:func:`load_features` for either; ``serve score`` calls it for a cohort and streams
a table file in chunks instead (:func:`common.table_io.iter_table`, the same
reader). What the reader had to say comes back in :attr:`FeaturesInput.notes` for
the caller's log and run record.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.files import file_lock
from common.table_io import read_table, write_table
from features.cache import extractor_version
from features.extract import extract_features

__all__ = ["FeaturesInput", "cohort_fingerprint", "load_features"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeaturesInput:
    """A features table and where it came from.

    Attributes
    ----------
    table : DataFrame
        One row per subject-visit.
    source : str
        The cohort directory or the table file, as given.
    fingerprint : str
        16 hex digits: the cohort's files (:func:`cohort_fingerprint`) or the
        table file's SHA-256; a changed input, a changed fingerprint.
    simulated : bool
        Whether the cohort holds the simulator's ``simulation/`` folder.
    notes : tuple of str
        What reading said about the input (e.g. spreadsheet formulas without
        saved results).
    """

    table: pd.DataFrame
    source: str
    fingerprint: str
    simulated: bool = False
    notes: tuple[str, ...] = ()


def load_features(
    *,
    cohort: Path | None = None,
    features: Path | None = None,
    text_columns: tuple[str, ...] | list[str] = (),
    cache_dir: Path | None = None,
    n_jobs: int = -1,
    progress: bool = False,
) -> FeaturesInput:
    """The features table of ``cohort`` or the table file ``features``.

    Parameters
    ----------
    cohort : Path, optional
        A cohort directory (docs/cohort-format.md), extracted now or taken from
        ``cache_dir`` when neither its files nor the extractor changed.
    features : Path, optional
        A features table or a lab's own table (.csv, .tsv, .parquet, .xlsx).
    text_columns : sequence of str
        Columns of ``features`` read as text besides the identifiers.
    cache_dir : Path, optional
        Where extracted tables are kept (one file per cohort fingerprint and
        extractor version); None extracts every time.
    n_jobs, progress
        Passed to :func:`features.extract.extract_features`.

    Raises
    ------
    ValueError
        When both or neither of ``cohort`` and ``features`` are given.
    FileNotFoundError
        When the cohort directory or the table does not exist.
    """
    if (cohort is None) == (features is None):
        raise ValueError("give exactly one of --cohort DIR or --features FILE.")
    if features is not None:
        path = Path(features)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = read_table(path, text_columns=text_columns)
        fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        notes = tuple(str(w.message) for w in caught)
        return FeaturesInput(table, str(features), fingerprint, notes=notes)
    cohort = Path(cohort)
    if not cohort.is_dir():
        raise FileNotFoundError(
            f"cohort directory not found: {cohort}; pass --cohort DIR "
            "(docs/cohort-format.md)."
        )
    simulated = (cohort / "simulation").is_dir()
    fingerprint = cohort_fingerprint(cohort)
    if cache_dir is None:
        table = _extract(cohort, n_jobs, progress)
        return FeaturesInput(table, str(cohort), fingerprint, simulated)
    name = f"features-{fingerprint}-{extractor_version()[:8]}.parquet"
    cached = Path(cache_dir) / name
    with file_lock(Path(cache_dir) / f".{name}.lock", f"the features cache {cached}"):
        if cached.exists():
            log.info("reusing extracted features %s", cached)
            return FeaturesInput(
                pd.read_parquet(cached), str(cohort), fingerprint, simulated
            )
        table = _extract(cohort, n_jobs, progress)
        write_table(table, cached, overwrite=True)
    return FeaturesInput(table, str(cohort), fingerprint, simulated)


def _extract(cohort: Path, n_jobs: int, progress: bool) -> pd.DataFrame:
    """The extracted table; the values set missing are summarised in the log (each
    one is listed in the extraction's issue log)."""
    result = extract_features(cohort, n_jobs=n_jobs, progress=progress)
    if result.issues:
        log.warning("%s", result.summary())
    return result.table


def cohort_fingerprint(cohort_dir: Path) -> str:
    """Hash of every input file's path, size and content-modification time.

    ``simulation/`` is excluded: ground truth never reaches the trainer.
    """
    digest = hashlib.sha256()
    for p in sorted(Path(cohort_dir).rglob("*")):
        rel = p.relative_to(cohort_dir)
        if p.is_file() and rel.parts[0] != "simulation":
            st = p.stat()
            digest.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
