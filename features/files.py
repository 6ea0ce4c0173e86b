"""Safe files: atomic writes, stale temporaries, and locks between processes.

Every output of the project reaches its path in one rename of a complete file, so a
run killed at any moment (``SIGKILL``, a lost machine) leaves the previous file or
none, never a partial one. The temporary file sits beside the target, named
``.tmp-<host>-<pid>-<name>``: it keeps the target's suffixes (writers such as
nibabel and matplotlib read the format from them), two processes writing the same
target never share one, and the next write of that target removes the ones whose
process on this host is gone.

Locks (:func:`file_lock`) are advisory ``flock`` locks on a small file: two
trainings that need the same simulated cohort, features cache or SQLite store
take turns instead of building it twice at once.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

#: Errors that mean the disk, a quota or a file-size limit is full.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: This machine, as process ids are only meaningful on the host that made them.
HOST = socket.gethostname()
_HOST = HOST.replace(os.sep, "_")


def temporary_path(out: Path) -> Path:
    """The temporary file beside ``out`` that this process writes first.

    Examples
    --------
    >>> p = temporary_path(Path("/data/scores.parquet"))
    >>> p.parent, p.name.startswith(".tmp-"), p.name.endswith("-scores.parquet")
    (PosixPath('/data'), True, True)
    """
    return out.with_name(f".tmp-{_HOST}-{os.getpid()}-{out.name}")


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove the temporary files of ``out`` left by processes of this host that
    are gone (killed mid-write); returns what was removed, each one logged."""
    removed = []
    for tmp in out.parent.glob(f".tmp-*-{out.name}"):
        owner = tmp.name.removeprefix(".tmp-").removesuffix(f"-{out.name}")
        host, _, pid = owner.rpartition("-")
        if host != _HOST or not pid.isdigit() or process_alive(int(pid)):
            continue
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue  # another process cleaned it first
        log.info("removed %s, left by a stopped process (pid %s)", tmp, pid)
        removed.append(tmp)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


@contextmanager
def atomic_write(out: Path) -> Iterator[Path]:
    """Yield a temporary path for the caller to write; on success it is renamed
    onto ``out``, on any failure it is removed and ``out`` is untouched.

    A folder that cannot be written and a full disk are reported as
    :class:`ValueError` naming ``out`` and the fix (the commands exit 2 on it).
    """
    out = Path(out)
    remove_stale_temporaries(out)
    tmp = temporary_path(out)
    try:
        try:
            tmp.touch()
        except PermissionError as exc:
            raise ValueError(
                f"cannot write {out}: permission denied in the folder {out.parent} "
                f"({exc.strerror}); choose another --out or make the folder "
                "writable."
            ) from None
        yield tmp
        tmp.replace(out)
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        raise ValueError(
            f"cannot write {out}: {exc.strerror or exc} (the disk, your quota or "
            "the file-size limit is full); free space or choose another --out. "
            f"Nothing was written to {out}."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def file_lock(path: Path, what: str, timeout: float = 3600.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created, with its folder, if needed).

    Waits while another process holds it, saying once what it waits for; after
    ``timeout`` seconds a :class:`ValueError` names the lock file and the way out.
    The lock ends with the process, so a killed holder never blocks anyone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        start = time.monotonic()
        said = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    log.info("waiting for another process using %s (%s)", what, path)
                    said = True
                if time.monotonic() - start > timeout:
                    raise ValueError(
                        f"{what} stayed locked by another process for {timeout:.0f} "
                        f"s (lock file {path}); wait for it to finish, or stop it."
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other store.

    Examples
    --------
    >>> sqlite_file("sqlite:///mlflow.db")
    PosixPath('mlflow.db')
    >>> sqlite_file("sqlite:////data/optuna.db?timeout=60")
    PosixPath('/data/optuna.db')
    >>> sqlite_file("postgresql://host/db") is None
    True
    """
    if not uri.startswith("sqlite:///"):
        return None
    name = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name)


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Lock a SQLite store's file (``.<db>.lock`` beside it) while its schema is
    created or migrated; nothing for a server store, which handles its own."""
    db = sqlite_file(uri)
    if db is None:
        yield
        return
    with file_lock(db.with_name(f".{db.name}.lock"), f"the store {uri}"):
        yield


__all__ = [
    "HOST",
    "NO_SPACE",
    "atomic_write",
    "file_lock",
    "process_alive",
    "remove_stale_temporaries",
    "sqlite_file",
    "store_lock",
    "temporary_path",
]
