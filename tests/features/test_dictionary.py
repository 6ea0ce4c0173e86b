"""The data dictionary documents every column and docs/features.md is current."""

from __future__ import annotations

from features.dictionary import ENTRIES, describe, to_markdown, undocumented
from features.extract import extract_features
from tests import ROOT

DOC = ROOT / "docs" / "features.md"


def test_every_extracted_column_is_documented(small_cohort):
    table = extract_features(small_cohort, n_jobs=1).table
    assert undocumented(table.columns) == []


def test_entries_have_units_or_are_metadata():
    for entry in ENTRIES:
        assert entry.description
        assert entry.unit or entry.modality == "metadata", entry.pattern


def test_describe_matches_whole_names_only():
    assert describe("dti_cst_l_fa").unit == "unitless"
    assert describe("dti_cst_l_md").unit == "10^-3 mm^2/s"
    assert describe("nfl_pg_ml_extra") is None


def test_docs_features_md_is_generated_from_code():
    assert DOC.read_text(encoding="utf-8") == to_markdown() + "\n", (
        "docs/features.md is stale: run "
        "`python -m features dictionary --out docs/features.md`"
    )


def test_value_range_follows_the_unit():
    from features.dictionary import value_range

    assert value_range("alsfrs_r") == (0.0, 48.0)
    assert value_range("has_dti") == (0.0, 1.0)
    assert value_range("nfl_pg_ml") == (0.0, float("inf"))
    assert value_range("qsm_putamen_l") == (-float("inf"), float("inf"))
    assert value_range("not_a_column") == (-float("inf"), float("inf"))
