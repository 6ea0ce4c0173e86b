"""Unit mix-ups caught at extraction: each wrong unit the reliability issue names,
per value and per cohort, on a cohort's files edited as a lab would get them
wrong."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from features.errors import CohortFormatError
from features.extract import check_units, extract_features
from features.units import cohort_mixups, implausible


@pytest.mark.parametrize(
    ("column", "right", "wrong", "named"),
    [
        ("nfl_pg_ml", 35.0, 0.035, "ng/mL; multiply by 1000"),
        ("dti_cst_l_fa", 0.52, 52.0, "percent; divide by 100"),
        ("dti_cst_r_md", 0.78, 0.00078, "mm^2/s; multiply by 1000"),
        ("age", 62.0, 744.0, "months; divide by 12"),
        ("ncs_ulnar_left_cmap_mv", 9.1, 9100.0, "uV; divide by 1000"),
        ("chi3l1_ng_ml", 120.0, 120_000.0, "pg/mL; divide by 1000"),
        ("fs_thalamus_l_mm3", 7100.0, 7.1, "cm^3 (mL); multiply by 1000"),
        ("vbm_precentral_l_ml", 9.0, 9000.0, "mm^3; divide by 1000"),
        ("fvc_pct", 85.0, 0.85, "a fraction; multiply by 100"),
    ],
)
def test_a_value_in_a_wrong_unit_is_named_with_its_conversion(
    column, right, wrong, named
):
    assert implausible(column, right) is None
    message = implausible(column, wrong)
    assert message.startswith(f"{column} = {wrong:g} is outside the plausible")
    assert message.endswith(f"it looks like {named}")


def test_a_tail_value_is_flagged_without_guessing_a_unit():
    message = implausible("ncs_tibial_left_cmap_mv", 120.0)
    assert "check its unit" in message and "looks like" not in message


def test_qsm_in_ppm_is_caught_on_the_cohort_not_per_value():
    rng = np.random.default_rng(0)
    ppb = pd.DataFrame(
        {
            "qsm_pallidum_l": rng.normal(160, 20, 40),
            "qsm_thalamus_l": rng.normal(5, 8, 40),
        }
    )
    ppm = ppb / 1000
    assert implausible("qsm_pallidum_l", float(ppm.iloc[0, 0])) is None
    assert cohort_mixups(ppb) == []
    [(columns, message)] = cohort_mixups(ppm)
    assert columns == ["qsm_pallidum_l", "qsm_thalamus_l"]
    assert "look like ppm, not ppb: multiply by 1000." in message
    # against a training reference the factor is measured, not assumed
    [(_, message)] = cohort_mixups(ppm, {r"qsm_\w+_(l|r)": 158.0})
    assert "times the training cohort's (158)" in message


def _copy(cohort, tmp_path):
    folder = tmp_path / "cohort"
    shutil.copytree(cohort, folder)
    return folder


def test_nfl_in_ng_ml_for_twelve_subjects_is_caught_at_extraction(
    small_cohort, tmp_path
):
    """The reliability issue's case: 0 flagged before, 12 now, each named."""
    folder = _copy(small_cohort, tmp_path)
    serum = pd.read_csv(folder / "serum.tsv", sep="\t", dtype={"nfl_pg_ml": float})
    wrong = serum.index[serum["nfl_pg_ml"].notna()][:12]
    serum.loc[wrong, "nfl_pg_ml"] /= 1000
    serum.to_csv(folder / "serum.tsv", sep="\t", index=False)
    result = extract_features(folder, n_jobs=1)
    # one problem for the column, not one per row, naming every participant
    [flagged] = [i for i in result.issues if i.column == "nfl_pg_ml"]
    assert flagged.message.startswith("serum.tsv: 12 values of nfl_pg_ml are")
    ids = list(serum.loc[wrong, "participant_id"])
    assert "; ".join(ids[:10]) + " and 2 more" in flagged.message
    assert "looks like ng/mL; multiply by 1000" in flagged.message
    table = result.table.set_index("participant_id")
    assert table.loc[serum.loc[wrong, "participant_id"], "nfl_pg_ml"].isna().all()
    kept = serum.drop(index=wrong).dropna(subset=["nfl_pg_ml"])
    np.testing.assert_allclose(
        table.loc[kept["participant_id"], "nfl_pg_ml"], kept["nfl_pg_ml"]
    )
    with pytest.raises(CohortFormatError, match="nfl_pg_ml = .* looks like ng/mL"):
        extract_features(folder, n_jobs=1, strict=True)


def test_age_in_months_is_refused_at_extraction_with_the_conversion(
    small_cohort, tmp_path
):
    folder = _copy(small_cohort, tmp_path)
    people = pd.read_csv(folder / "participants.tsv", sep="\t", dtype=str)
    months = (people.loc[:2, "age"].astype(float) * 12).round(0)
    people.loc[:2, "age"] = months.astype(int).astype(str)
    people.to_csv(folder / "participants.tsv", sep="\t", index=False)
    with pytest.raises(
        CohortFormatError,
        match=r"participants.tsv, row 2 \(sub-0001\): age = \d+; .* It looks like "
        "months: divide by 12.",
    ):
        extract_features(folder, n_jobs=1)


@pytest.fixture(scope="module")
def extracted(small_cohort) -> pd.DataFrame:
    """The small cohort's features, extracted once (tests change copies)."""
    return extract_features(small_cohort, n_jobs=1).table


def test_a_whole_column_group_in_another_unit_is_left_missing(extracted):
    table = extracted.copy()
    qsm = [c for c in table.columns if c.startswith("qsm_")]
    table[qsm] = table[qsm] / 1000  # a lab exported ppm
    issues = check_units(table)
    [issue] = issues
    assert "look like ppm, not ppb: multiply by 1000. Left missing." in issue.message
    assert table[qsm].isna().all().all()
    assert check_units(table) == []  # nothing left to flag


def test_a_rejected_value_feeds_nothing_derived_from_it(extracted):
    table = extracted.copy()
    row = table.index[table["fs_thalamus_l_mm3"].notna()][0]
    mrs = table.index[table["mrs_naa"].notna()][0]
    table.loc[row, ["fs_thalamus_l_mm3", "fs_precentral_l_mm3"]] = [-8066.3, 14.0]
    table.loc[mrs, "mrs_naa"] = 1e-6  # not scaled to water
    before = table.copy()
    issues = check_units(table)
    assert {i.column for i in issues} >= {"fs_thalamus_l_mm3", "mrs_naa"}
    gone = [
        "fs_thalamus_l_etiv_pct",
        "fs_precentral_l_etiv_pct",
        "fs_m1_precuneus_ratio",
    ]
    assert table.loc[row, gone].isna().all() and before.loc[row, gone].notna().all()
    assert (
        table.loc[row, "fs_thalamus_r_etiv_pct"]
        == before.loc[row, "fs_thalamus_r_etiv_pct"]
    )
    assert table.loc[mrs, ["mrs_glu_naa", "mrs_naa_cr"]].isna().all()
    assert table.loc[mrs, "mrs_glu_gaba"] == before.loc[mrs, "mrs_glu_gaba"]
