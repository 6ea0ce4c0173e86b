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
import stat
import time
from collections.abc import Callable, Iterator
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


def make_folder(folder: Path, what: str, fix: str) -> Path:
    """Create ``folder`` (and its parents) or raise a :class:`ValueError` that
    names ``what`` it is for, why it failed and ``fix`` (e.g. "choose another
    --out")."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot create {what} {folder}: {exc.strerror or exc}; {fix}."
        ) from None
    return folder


def write_atomically(
    out: Path, write: Callable[[Path], object], *, overwrite: bool = False
) -> Path:
    """Call ``write(tmp)`` and publish ``tmp`` as ``out`` (:func:`atomic_write`)."""
    with atomic_write(out, overwrite=overwrite) as tmp:
        write(tmp)
    return Path(out)


@contextmanager
def atomic_write(out: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path for the caller to write; on success it becomes
    ``out``, on any failure it is removed and ``out`` is untouched.

    Without ``overwrite`` the file is published with a hard link, which fails
    when ``out`` exists: two runs started together with the same output cannot
    silently replace each other's file (the later one gets
    :class:`FileExistsError`). With ``overwrite`` it is renamed onto ``out``.
    A folder that cannot be written and a full disk are reported as
    :class:`ValueError` naming ``out`` and the fix (the commands exit 2 on it).
    """
    out = Path(out)
    remove_stale_temporaries(out)
    tmp = temporary_path(out)
    try:
        try:
            tmp.touch()
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            why = {errno.EROFS: "read-only file system"}.get(
                exc.errno, "permission denied"
            )
            raise ValueError(
                f"cannot write {out}: {why} in the folder {out.parent} "
                f"({exc.strerror}); choose another --out or make the folder "
                "writable."
            ) from None
        yield tmp
        if overwrite:
            tmp.replace(out)
        else:
            publish(tmp, out)
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


def publish(tmp: Path, out: Path) -> None:
    """Give the finished ``tmp`` the name ``out`` unless ``out`` exists (checked
    and done in one step by the file system: a hard link, or on file systems
    without hard links an exclusive create then a rename)."""
    try:
        try:
            os.link(tmp, out)
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
        # no hard links here (some network and FAT file systems)
        os.close(os.open(out, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        tmp.replace(out)
    except FileExistsError:
        raise FileExistsError(
            f"{out} appeared while this run was writing it (another run with the "
            "same output?); it was left as it is and this run's result was not "
            "kept. Choose another --out, or pass --overwrite to replace it."
        ) from None


def what_is(path: Path) -> str:
    """What ``path`` is when it is there but cannot be read as a file ("a link to
    nothing", "a FIFO", ...); ``""`` for a regular file or nothing at all.

    >>> what_is(Path("/dev/null")), what_is(Path("/no/such/file"))
    ('a device', '')
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return ""
    if stat.S_ISLNK(mode):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return "a link to nothing (a DataLad/git-annex file not fetched?)"
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def unusual_entries(root: Path) -> dict[str, list[str]]:
    """What under ``root`` a reader may not see as it looks, by kind, as paths
    relative to ``root``: ``"outside"`` (links leading out of ``root``, followed,
    shown as ``link -> target``), ``"dangling"`` (links to nothing, e.g. a
    DataLad/git-annex dataset before ``datalad get``) and ``"special"`` (FIFOs,
    sockets, devices: never read as files). Links to folders are not descended.
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    found: dict[str, list[str]] = {"outside": [], "dangling": [], "special": []}
    for folder, dirs, files in os.walk(root):
        dirs.sort()  # a stable order in the messages
        for name in sorted([*dirs, *files]):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # removed meanwhile
            if stat.S_ISLNK(mode):
                target = os.path.realpath(path)
                if not os.path.exists(target):
                    found["dangling"].append(rel)
                    continue
                if os.path.commonpath([real_root, target]) != real_root:
                    found["outside"].append(f"{rel} -> {target}")
                mode = os.stat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found["special"].append(rel)
    return found


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
    "make_folder",
    "write_atomically",
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
