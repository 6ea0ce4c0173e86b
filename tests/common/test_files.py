"""Atomic writes, stale temporaries, locks: with real processes, a real file-size
limit (the kernel's EFBIG, as a full disk gives ENOSPC) and a real unprivileged
user."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from common.files import (
    HOST,
    atomic_write,
    file_lock,
    remove_stale_temporaries,
    sqlite_file,
    temporary_path,
    unusual_entries,
)
from common.table_io import write_table
from tests import ROOT


def _dead_pid() -> int:
    """The id of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def stale_temporary(out: Path) -> Path:
    """A temporary file of ``out`` as a killed process of this host leaves it."""
    tmp = out.with_name(f".tmp-{HOST}-{_dead_pid()}-{out.name}")
    tmp.write_text("half a table")
    return tmp


def test_atomic_write_renames_a_complete_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "t.csv"
    with atomic_write(out) as tmp:
        assert tmp.name.endswith("-t.csv") and tmp.parent == tmp_path
        tmp.write_text("a\n1\n")
        assert not out.exists()  # nothing at the target until the rename
    assert out.read_text() == "a\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(out) as tmp:
        tmp.write_text("new, half")
        raise RuntimeError("killed")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_a_file_that_appears_meanwhile_is_never_replaced(tmp_path):
    out = tmp_path / "t.csv"
    with pytest.raises(FileExistsError, match=r"t.csv appeared while this run"):
        with atomic_write(out) as tmp:
            tmp.write_text("mine")
            out.write_text("another run's")  # written while this one worked
    assert out.read_text() == "another run's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
    with atomic_write(out, overwrite=True) as tmp:  # asked to replace: replaced
        tmp.write_text("mine")
    assert out.read_text() == "mine"


def test_stale_temporaries_of_gone_processes_are_removed_live_ones_kept(tmp_path):
    out = tmp_path / "t.parquet"
    stale = stale_temporary(out)
    live = temporary_path(out)  # this process: alive
    live.write_text("being written")
    other_host = out.with_name(f".tmp-otherhost-{_dead_pid()}-{out.name}")
    other_host.write_text("not ours to judge")
    assert remove_stale_temporaries(out) == [stale]
    assert live.exists() and other_host.exists() and not stale.exists()


def test_the_next_write_cleans_what_a_killed_one_left(tmp_path):
    out = tmp_path / "features.tsv"
    stale = stale_temporary(out)
    write_table(pd.DataFrame({"a": [1]}), out)
    assert not stale.exists()
    assert pd.read_csv(out, sep="\t")["a"].tolist() == [1]


_WRITE_BIG = textwrap.dedent(
    """
    import sys
    import numpy as np
    import pandas as pd
    from common.table_io import write_table
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(20000, 20)))
    table.columns = [f"c{i}" for i in range(20)]
    try:
        write_table(table, sys.argv[1])
    except ValueError as exc:
        print(exc)
        sys.exit(2)
    """
)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path):
    out = tmp_path / "big.csv"
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_BIG, str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=_limit_file_size,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot write" in done.stdout and "free space" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


def _unprivileged() -> list[str]:
    """A command prefix that makes permissions count: as root (which ignores
    them), drop the capabilities that override file permissions."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without util-linux setpriv to drop privileges")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_a_folder_without_write_permission_is_a_clear_error(tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    done = subprocess.run(
        [*_unprivileged(), sys.executable, "-c", _WRITE_BIG, str(folder / "t.csv")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "permission denied" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert list(folder.iterdir()) == []


def test_a_lock_makes_the_second_holder_wait(tmp_path):
    lock = tmp_path / ".x.lock"
    order = []

    def second():
        with file_lock(lock, "x"):
            order.append("second")

    # a lock held by another process (flock locks are per open file, so a
    # thread of this process opening its own handle waits as another would)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from common.files import file_lock\n"
            "with file_lock(sys.argv[1], 'x'):\n"
            "    print('held', flush=True); time.sleep(1.5)",
            str(lock),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    assert order == []  # still waiting
    holder.wait()
    thread.join(10)
    assert order == ["second"]


def test_a_lock_held_too_long_is_a_clear_error(tmp_path):
    lock = tmp_path / ".x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from common.files import file_lock\n"
            "with file_lock(sys.argv[1], 'x'):\n"
            "    print('held', flush=True); time.sleep(30)",
            str(lock),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(ValueError, match="locked by another process.*lock file"),
            file_lock(lock, "the cohort", timeout=0.5),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with file_lock(lock, "the cohort", timeout=5):  # a killed holder frees it
        pass


def test_sqlite_file_of_uris():
    assert sqlite_file("sqlite:///a/b.db") == Path("a/b.db")
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("http://127.0.0.1:5000") is None


def test_links_and_special_files_are_listed_by_kind(tmp_path):
    root = tmp_path / "cohort"
    (root / "a").mkdir(parents=True)
    (root / "a" / "real.tsv").write_text("x\n")
    outside = tmp_path / "elsewhere.tsv"
    outside.write_text("x\n")
    (root / "a" / "out.tsv").symlink_to(outside)
    (root / "a" / "inside.tsv").symlink_to(root / "a" / "real.tsv")  # fine
    (root / "a" / "annexed.tsv").symlink_to(root / ".git" / "annex" / "objects" / "k")
    os.mkfifo(root / "a" / "pipe.tsv")
    (root / "a" / "zero.tsv").symlink_to("/dev/zero")
    found = unusual_entries(root)
    assert found["outside"] == [
        f"a/out.tsv -> {outside}",
        "a/zero.tsv -> /dev/zero",
    ]
    assert found["dangling"] == ["a/annexed.tsv"]
    assert sorted(found["special"]) == ["a/pipe.tsv", "a/zero.tsv"]
