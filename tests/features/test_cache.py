"""Extraction partitions: reused on a rerun, a new key when an input changes, and
a partition that cannot be read computed again and named (not skipped silently)."""

from __future__ import annotations

import pandas as pd
import pytest

from features.cache import PartitionStore
from features.extract import extract_features
from features.simulate.cohort import simulate_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("parts") / "sim", n=10, seed=2)


def test_an_unreadable_partition_is_extracted_again_and_named(cohort, tmp_path):
    parts = tmp_path / "parts"
    first = extract_features(cohort, n_jobs=1, partitions=parts)
    files = sorted(parts.glob("*.pkl"))
    assert len(files) == len(first.table)
    files[0].write_bytes(files[0].read_bytes()[:20])  # truncated by a full disk
    files[1].write_text("not a partition")
    again = extract_features(cohort, n_jobs=1, partitions=parts)
    pd.testing.assert_frame_equal(again.table, first.table)
    named = [i for i in again.issues if "could not be read" in i.message]
    assert sorted(i.file for i in named) == sorted(f.name for f in files[:2])
    assert all(i.participant_id and "extracted again" in i.message for i in named)
    # rewritten: the next run reads every partition back and names nothing
    third = extract_features(cohort, n_jobs=1, partitions=parts)
    assert not [i for i in third.issues if "could not be read" in i.message]
    assert [i.message for i in third.issues] == [i.message for i in first.issues]


def test_load_tells_absent_from_unreadable(tmp_path):
    store = PartitionStore(tmp_path / "p", tmp_path, {})
    assert store.load("k") == (None, None)
    store.save("k", ({"a": 1.0}, []))
    assert store.load("k") == (({"a": 1.0}, []), None)
    store.path("k").write_bytes(b"\x80\x05junk")
    result, reason = store.load("k")
    assert result is None and reason
