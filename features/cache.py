"""Per subject-visit extraction results kept on disk, keyed by their inputs.

With ``features extract --partitions DIR`` (the default with ``--dask``) each
subject-visit's imaging values are written to ``DIR/<key>.pkl`` as soon as they are
computed (atomically: a killed worker leaves no partial partition). The key is a
hash of the cohort's path, the name, size and modification time of every file
of the participant under ``derivatives/``, the SMN-region mapping, the extraction
settings and the source of the ``features`` package; a rerun after a crash or a
lost worker reads the finished subject-visits back and computes only the rest,
and any change of input or code makes a new key. A partition that cannot be read
is computed again and rewritten, and the extraction names it among its
problems. Partitions are pickles written by this program: point ``--partitions``
only at folders this project wrote.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from functools import cache
from pathlib import Path

import common
from common.files import atomic_write, make_folder

__all__ = ["PartitionStore", "extractor_version"]


@cache
def extractor_version() -> str:
    """Hash of the extractor's code, every module of the ``features`` and ``common``
    packages by relative path: new code, new partitions and new cached tables."""
    digest = hashlib.sha256()
    for package in (Path(__file__).resolve().parent, Path(common.__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class PartitionStore:
    """Partitions of one extraction: :meth:`keys` on the driver, :meth:`load` and
    :meth:`save` wherever the subject is extracted (a shared folder on a cluster).

    Parameters
    ----------
    folder : Path
        Where the partitions live (created when missing).
    cohort_dir : Path
        The cohort; its ``derivatives/`` are the inputs hashed.
    settings : dict
        Everything else the values depend on (strict, resample, atlas, mapping).
    """

    def __init__(self, folder: Path, cohort_dir: Path, settings: dict):
        self.folder = Path(folder)
        self.cohort_dir = Path(cohort_dir).absolute()
        self.settings = repr(sorted(settings.items()))
        make_folder(
            self.folder,
            "the partitions folder",
            "pass --partitions with a writable folder",
        )

    def keys(self, subjects: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The key of each (participant_id, session), from one pass over the
        pipelines' folders."""
        owned: dict[str, list[Path]] = {}
        derivatives = self.cohort_dir / "derivatives"
        pipelines = (
            sorted(p for p in derivatives.iterdir()) if derivatives.is_dir() else []
        )
        for pipeline in pipelines:
            if not pipeline.is_dir():
                continue
            for entry in sorted(pipeline.iterdir()):
                pid = entry.name.split("_", 1)[0]
                owned.setdefault(pid, []).append(entry)
        out = {}
        for pid, session in subjects:
            digest = hashlib.sha256()
            for part in (str(self.cohort_dir), pid, session, self.settings):
                digest.update(part.encode() + b"\0")
            digest.update(extractor_version().encode())
            for entry in owned.get(pid, []):
                for path in _files(entry):
                    stat = path.stat()
                    rel = path.relative_to(derivatives)
                    digest.update(
                        f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode()
                    )
            out[(pid, session)] = digest.hexdigest()[:32]
        return out

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.pkl"

    def load(self, key: str) -> tuple[object | None, str | None]:
        """``(result, None)`` when saved; ``(None, None)`` when there is none;
        ``(None, reason)`` when the partition exists but cannot be read (truncated,
        or not a partition), so the caller can say it computed it again."""
        path = self.path(key)
        try:
            with path.open("rb") as handle:
                return pickle.load(handle), None
        except FileNotFoundError:
            return None, None
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError,
                IndexError, TypeError) as exc:  # fmt: skip
            return None, f"{type(exc).__name__}: {exc}"

    def save(self, key: str, result) -> None:
        with atomic_write(self.path(key), overwrite=True) as tmp:
            with open(tmp, "wb") as handle:
                pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _files(entry: Path) -> list[Path]:
    if entry.is_file():
        return [entry]
    found = []
    for folder, _, names in os.walk(entry):
        found += [Path(folder) / n for n in sorted(names)]
    return sorted(found)
