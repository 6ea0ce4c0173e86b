"""Tests for features.cohort.nerve_conduction: reading, conduction block and
summaries."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from features.cohort.nerve_conduction import (
    CMAP_NORMS,
    LONG_COLUMNS,
    SUMMARY_COLUMNS,
    grade_conduction_block,
    read_nerve_conduction,
    summarise_nerve_conduction,
)
from features.cohort.participants import read_participants
from features.errors import CohortFormatError

NCS_HEADER = [
    "participant_id",
    "nerve",
    "side",
    "stimulation_site",
    "cmap_amplitude_mv",
    "cmap_area_mvms",
    "conduction_velocity_m_s",
    "f_wave_latency_ms",
    "snap_amplitude_uv",
]


def write_tsv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    """Write a small tab-separated table."""
    lines = ["\t".join(header), *("\t".join(map(str, row)) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def long_table(rows: list[tuple], pid: str = "sub-01") -> pd.DataFrame:
    """A hand-built long table: (nerve, side, site, amplitude, area[, cv, f, snap])."""
    records = []
    for row in rows:
        values = list(row) + [math.nan] * (8 - len(row))
        records.append(
            dict(zip(LONG_COLUMNS[:5], values[:5], strict=True))
            | {
                "conduction_velocity_m_s": values[5],
                "f_wave_latency_ms": values[6],
                "snap_amplitude_uv": values[7],
                "participant_id": pid,
                "session": "",
            }
        )
    return pd.DataFrame.from_records(records).set_index(["participant_id", "session"])


def summary(rows: list[tuple]) -> pd.Series:
    return summarise_nerve_conduction(long_table(rows)).loc[("sub-01", "")]


def test_median_60_percent_amplitude_and_area_drop_is_definite():
    out = summary(
        [
            ("median", "left", "wrist", 9.0, 30.0),
            ("median", "left", "elbow", 3.6, 12.0),
        ]
    )
    assert out["ncs_median_left_cb_ratio"] == pytest.approx(0.4)
    assert out["ncs_median_left_cb_area_ratio"] == pytest.approx(0.4)
    assert out["ncs_n_nerves_cb_definite"] == 1.0
    assert out["ncs_n_nerves_cb_probable"] == 0.0
    assert out["ncs_any_cb"] == 1.0


def test_ulnar_forearm_35_percent_drop_is_probable():
    out = summary(
        [
            ("ulnar", "right", "wrist", 10.0, 30.0),
            ("ulnar", "right", "below_elbow", 6.5, 19.5),
        ]
    )
    assert out["ncs_ulnar_right_cb_ratio"] == pytest.approx(0.65)
    assert out["ncs_n_nerves_cb_definite"] == 0.0
    assert out["ncs_n_nerves_cb_probable"] == 1.0
    assert out["ncs_any_cb"] == 1.0


def test_ulnar_drop_across_the_elbow_is_ignored():
    out = summary(
        [
            ("median", "left", "wrist", 9.0, 30.0),
            ("median", "left", "elbow", 8.5, 29.0),
            ("ulnar", "left", "wrist", 10.0, 30.0),
            ("ulnar", "left", "elbow", 4.0, 12.0),
        ]
    )
    assert math.isnan(out["ncs_ulnar_left_cb_ratio"])
    assert out["ncs_ulnar_left_cmap_mv"] == 10.0
    assert out["ncs_n_nerves_cb_definite"] == 0.0
    assert out["ncs_n_nerves_cb_probable"] == 0.0
    assert out["ncs_any_cb"] == 0.0


def test_ulnar_upper_arm_block_is_compared_above_the_elbow():
    out = summary(
        [
            ("ulnar", "left", "wrist", 10.0, 30.0),
            ("ulnar", "left", "above_elbow", 9.0, 27.0),
            ("ulnar", "left", "axilla", 3.6, 10.8),
        ]
    )
    assert out["ncs_ulnar_left_cb_ratio"] == pytest.approx(0.4)
    assert out["ncs_n_nerves_cb_definite"] == 1.0


def test_peroneal_drop_at_fibular_head_is_ignored():
    out = summary(
        [
            ("peroneal", "left", "ankle", 5.0, 15.0),
            ("peroneal", "left", "fibular_head", 1.0, 3.0),
        ]
    )
    assert math.isnan(out["ncs_peroneal_left_cb_ratio"])
    assert math.isnan(out["ncs_n_nerves_cb_definite"])  # no pair could be graded
    assert math.isnan(out["ncs_any_cb"])


@pytest.mark.parametrize(
    ("nerve", "distal", "amp_ratio", "area_ratio", "grade"),
    [
        ("median", 9.0, 0.40, 0.40, "definite"),
        ("median", 9.0, 0.40, 0.60, "probable"),  # area drop only 40 %
        ("median", 9.0, 0.40, math.nan, "probable"),  # no area measured
        ("ulnar", 9.0, 0.75, 0.75, "none"),
        ("peroneal", 5.0, 0.40, 0.40, "definite"),
        ("peroneal", 5.0, 0.65, 0.65, "none"),  # 35 % is not enough in a leg
        ("tibial", 12.0, 0.40, 0.40, "probable"),  # guideline: no definite in tibial
        ("median", 0.8, 0.40, 0.40, "not_evaluable"),  # distal CMAP < 1 mV
        ("median", 9.0, math.nan, 0.40, "not_evaluable"),
    ],
)
def test_grade_conduction_block(nerve, distal, amp_ratio, area_ratio, grade):
    assert grade_conduction_block(nerve, distal, amp_ratio, area_ratio) == grade


def test_grade_conduction_block_rejects_sensory_nerve():
    with pytest.raises(ValueError, match=r"nerve = 'sural'; conduction block"):
        grade_conduction_block("sural", 9.0, 0.4, 0.4)


def test_cmap_zsum_of_normative_medians_is_zero():
    rows = [
        (nerve, side, "wrist" if nerve in ("median", "ulnar") else "ankle", median, 30)
        for nerve, (median, _) in CMAP_NORMS.items()
        for side in ("left", "right")
    ]
    out = summary(rows)
    assert out["ncs_cmap_zsum"] == pytest.approx(0.0, abs=1e-12)
    assert out["ncs_cmap_asymmetry"] == pytest.approx(0.0)
    assert out["ncs_split_hand_ratio"] == pytest.approx(1.0)


def test_cmap_zsum_needs_four_nerves_and_scores_low_amplitudes():
    assert math.isnan(summary([("median", "left", "wrist", 9.0, 30)])["ncs_cmap_zsum"])
    rows = [("median", s, "wrist", 9.0 * math.exp(-0.3), 30) for s in ("left", "right")]
    rows += [("ulnar", s, "wrist", 9.0, 30) for s in ("left", "right")]
    assert summary(rows)["ncs_cmap_zsum"] == pytest.approx(-2.0)


def test_split_hand_asymmetry_cv_f_wave_and_sensory():
    out = summary(
        [
            ("median", "left", "wrist", 2.0, 8.0, math.nan, 31.0),
            ("median", "left", "elbow", 1.9, 7.8, 52.0),
            ("ulnar", "left", "wrist", 8.0, 25.0, math.nan, 28.0),
            ("ulnar", "left", "below_elbow", 7.8, 24.0, 35.0),
            ("ulnar", "left", "above_elbow", 7.7, 24.0, 20.0),  # across the elbow
            ("median", "right", "wrist", 8.0, 25.0),
            (
                "median_sensory",
                "left",
                "digit_ii",
                math.nan,
                math.nan,
                50.0,
                math.nan,
                4.0,
            ),
            ("sural", "left", "calf", math.nan, math.nan, 45.0, math.nan, 12.0),
        ]
    )
    assert out["ncs_split_hand_ratio"] == pytest.approx(0.25)
    assert out["ncs_cmap_asymmetry"] == pytest.approx(math.log(4.0))
    assert out["ncs_min_cv_m_s"] == 20.0
    assert out["ncs_n_nerves_demyelinating_cv"] == 1.0  # ulnar forearm 35 < 38
    assert out["ncs_max_f_wave_ms"] == 31.0
    assert out["ncs_sensory_abnormal"] == 1.0  # median SNAP 4 < 10 uV


def test_summary_columns_and_empty_input():
    out = summarise_nerve_conduction(long_table([("sural", "left", "calf")]))
    assert list(out.columns) == list(SUMMARY_COLUMNS)
    assert (out.dtypes == "float64").all()
    assert out.isna().all(axis=None)
    columns = ["participant_id", "session", *LONG_COLUMNS]
    empty = summarise_nerve_conduction(pd.DataFrame(columns=columns))
    assert empty.empty and list(empty.columns) == list(SUMMARY_COLUMNS)


@pytest.fixture
def cohort(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    write_tsv(
        tmp_path / "participants.tsv",
        ["participant_id", "diagnosis", "age", "sex", "site"],
        [["sub-01", "MMN", "45", "M", "A"], ["sub-02", "HC", "50", "F", "A"]],
    )
    return tmp_path, read_participants(tmp_path)


def test_read_nerve_conduction_normalises_names(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "nerve_conduction.tsv",
        NCS_HEADER,
        [
            ["sub-01", "Median", "L", "Wrist", "9", "30", "", "26", ""],
            ["sub-01", "median", "left", "elbow", "3.6", "12", "55", "", ""],
            ["sub-02", "Median Sensory", "right", "Digit II", "", "", "50", "", "25"],
        ],
    )
    long, issues = read_nerve_conduction(cohort_dir, parts)
    assert issues == []
    assert list(long.columns) == list(LONG_COLUMNS)
    assert long["nerve"].tolist() == ["median", "median", "median_sensory"]
    assert long["side"].tolist() == ["left", "left", "right"]
    assert long["stimulation_site"].tolist() == ["wrist", "elbow", "digit_ii"]
    assert math.isnan(long["distal_latency_ms"].iloc[0])  # absent column
    out = summarise_nerve_conduction(long)
    assert out.loc[("sub-01", ""), "ncs_n_nerves_cb_definite"] == 1.0
    assert out.loc[("sub-02", ""), "ncs_sensory_abnormal"] == 0.0


def test_unknown_nerve_strict_raises_lenient_drops_row(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "nerve_conduction.tsv",
        NCS_HEADER,
        [
            ["sub-01", "median", "left", "wrist", "9", "30", "", "", ""],
            ["sub-01", "radial", "left", "wrist", "9", "30", "", "", ""],
        ],
    )
    pattern = (
        r"nerve_conduction\.tsv, row 3 \(sub-01\): nerve = 'radial'; expected median"
    )
    with pytest.raises(CohortFormatError, match=pattern):
        read_nerve_conduction(cohort_dir, parts, strict=True)
    long, issues = read_nerve_conduction(cohort_dir, parts)
    assert long["nerve"].tolist() == ["median"]
    assert [(i.participant_id, i.column, i.value) for i in issues] == [
        ("sub-01", "nerve", "radial")
    ]
    assert "the row is ignored" in issues[0].message


def test_bad_side_site_and_measurements(cohort):
    cohort_dir, parts = cohort
    write_tsv(
        cohort_dir / "nerve_conduction.tsv",
        NCS_HEADER,
        [
            ["sub-01", "median", "up", "wrist", "9", "30", "", "", ""],
            ["sub-01", "median", "left", "shoulder", "9", "30", "", "", ""],
            ["sub-01", "ulnar", "left", "", "9", "30", "", "", ""],
            ["sub-01", "median", "left", "wrist", "-2", "30", "0", "", ""],
            ["sub-01", "median", "left", "wrist", "5", "30", "", "", ""],
        ],
    )
    long, issues = read_nerve_conduction(cohort_dir, parts)
    assert len(long) == 1 and math.isnan(long["cmap_amplitude_mv"].iloc[0])
    assert [(i.column, i.value) for i in issues] == [
        ("side", "up"),
        ("stimulation_site", "shoulder"),
        ("stimulation_site", ""),
        ("participant_id", "sub-01"),
        ("cmap_amplitude_mv", "-2"),
        ("conduction_velocity_m_s", "0"),
    ]
    assert "CMAP amplitude (mV) must be a number from 0" in issues[4].message
    with pytest.raises(CohortFormatError, match=r"row 2 \(sub-01\): side = 'up'"):
        read_nerve_conduction(cohort_dir, parts, strict=True)


def test_missing_file_and_missing_required_column(cohort):
    cohort_dir, parts = cohort
    long, issues = read_nerve_conduction(cohort_dir, parts)
    assert long.empty and issues == [] and list(long.columns) == list(LONG_COLUMNS)
    assert summarise_nerve_conduction(long).empty
    write_tsv(
        cohort_dir / "nerve_conduction.tsv", NCS_HEADER[:3], [["sub-01", "m", "l"]]
    )
    with pytest.raises(CohortFormatError, match=r"required column 'stimulation_site'"):
        read_nerve_conduction(cohort_dir, parts)


def test_summarise_accepts_key_columns_without_session():
    frame = long_table([("median", "left", "wrist", 9.0, 30.0)]).reset_index()
    out = summarise_nerve_conduction(frame.drop(columns="session"))
    assert list(out.index) == [("sub-01", "")]
    assert out.iloc[0]["ncs_median_left_cmap_mv"] == 9.0


@pytest.mark.parametrize(
    ("nerve", "amp_ratio", "area_ratio", "increase", "grade"),
    [
        ("median", 0.45, 0.45, 0.10, "definite"),  # area -55 %, duration +10 %
        ("median", 0.45, 0.45, 0.40, "probable"),  # temporal dispersion > 30 %
        ("ulnar", 0.65, 0.65, 0.20, "probable"),  # area -35 % over an arm segment
        ("ulnar", 0.65, 0.65, 0.45, "none"),  # -35 % with dispersion: phase cancel
        ("peroneal", 0.65, 0.65, 0.10, "none"),  # -35 % in a leg is not enough
        ("tibial", 0.40, 0.40, 0.10, "probable"),  # no definite block in the tibial
        ("median", 0.40, 0.60, 0.10, "probable"),  # the area decides, not amplitude
    ],
)
def test_grading_with_cmap_durations_follows_the_guideline(
    nerve, amp_ratio, area_ratio, increase, grade
):
    assert grade_conduction_block(nerve, 9.0 if nerve != "peroneal" else 5.0,
                                  amp_ratio, area_ratio, increase) == grade  # fmt: skip


def test_durations_give_dispersion_and_say_when_they_are_missing():
    rows = [
        ("median", "left", "wrist", 9.0, 45.0),
        ("median", "left", "elbow", 4.5, 22.0),
    ]
    frame = long_table(rows)
    assert summary(rows)["qc_ncs_no_duration"] == 1.0  # graded on amplitude/area
    frame["cmap_duration_ms"] = [5.0, 7.0]  # +40 %: dispersion
    out = summarise_nerve_conduction(frame).loc[("sub-01", "")]
    assert out["ncs_median_left_dispersion_pct"] == pytest.approx(40.0)
    assert out["qc_ncs_no_duration"] == 0.0
    assert (out["ncs_n_nerves_cb_definite"], out["ncs_n_nerves_cb_probable"]) == (0, 1)
