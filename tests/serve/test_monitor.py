"""``python -m serve monitor``: visits scored and followed, flags, a missing middle
visit, the CSV and the HTML page in headless Chromium."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from features.extract import extract_features
from serve.__main__ import main
from serve.monitor import FAST_ALSFRS_PER_MONTH, monitor
from tests.browser import CHROMIUM, render


@pytest.fixture(scope="module")
def visits(longitudinal_cohort) -> pd.DataFrame:
    """The longitudinal cohort's features, with the middle visit of the first
    participant who had three removed, and two participants edited: one declining
    fast, one with an implausible grey-matter value at its middle visit."""
    table = extract_features(longitudinal_cohort, n_jobs=1).table
    three = table.groupby("participant_id").size()
    three = three[three == 3].index
    gap, fast, odd = three[0], three[1], three[2]
    table = table[~((table["participant_id"] == gap) & (table["session"] == "ses-02"))]
    table = table.copy()
    rows = table["participant_id"] == fast
    table.loc[rows, "alsfrs_r"] = 46 - 1.5 * table.loc[rows, "months_since_baseline"]
    mid = (table["participant_id"] == odd) & (table["session"] == "ses-02")
    table.loc[mid, "fs_total_gray_mm3"] *= 0.7
    table.attrs.update(gap=gap, fast=fast, odd=odd)
    return table.reset_index(drop=True)


@pytest.fixture(scope="module")
def result(champion, visits):
    return monitor(champion, visits, "longitudinal")


def test_one_row_per_visit_in_time_order(result, visits):
    v = result.visits
    assert len(v) == len(visits)
    for _, d in v.groupby("participant_id"):
        assert d["months_since_baseline"].is_monotonic_increasing
        assert d["visit"].tolist() == list(range(1, len(d) + 1))
    assert set(v["error"]) == {""}
    assert v[[c for c in v if c.startswith("p_")]].notna().all().all()


def test_a_missing_middle_visit_leaves_two_visits_and_a_rate(result, visits):
    gap = visits.attrs["gap"]
    d = result.visits[result.visits["participant_id"] == gap]
    assert d["session"].tolist() == ["ses-01", "ses-03"]
    t, y = d["months_since_baseline"].to_numpy(), d["alsfrs_r"].to_numpy()
    if np.isfinite(y).all():
        expected = (y[1] - y[0]) / (t[1] - t[0]) * 12
        assert d["alsfrs_r_per_year"].iloc[0] == pytest.approx(expected)
        assert d["alsfrs_r_per_year_ci_low"].isna().all()  # two visits: no interval


def test_fast_progression_is_flagged_with_its_rate(result, visits):
    v = result.visits
    fast = v[v["participant_id"] == visits.attrs["fast"]]
    assert fast["fast_progression"].all()
    assert fast["alsfrs_r_per_year"].iloc[0] / 12 == pytest.approx(-1.5, abs=0.01)
    assert "fast progression: ALSFRS-R -1.50 points/month" in fast["flags"].iloc[0]
    lo, hi = fast.iloc[0][["alsfrs_r_per_year_ci_low", "alsfrs_r_per_year_ci_high"]]
    assert lo == pytest.approx(-18) == hi  # on a line: a zero-width interval
    slow = v.groupby("participant_id")["alsfrs_r_per_year"].first() / 12
    flagged = v.groupby("participant_id")["fast_progression"].any()
    assert (flagged == (slow < FAST_ALSFRS_PER_MONTH)).all()


def test_an_implausible_visit_is_flagged_by_name(result, visits):
    v = result.visits
    odd = v[(v["participant_id"] == visits.attrs["odd"]) & (v["session"] == "ses-02")]
    assert odd["inconsistent_visit"].item()
    assert "fs_total_gray_mm3" in odd["flags"].item()
    assert v["inconsistent_visit"].mean() < 0.2


def test_control_band_and_notes(result, champion):
    v = result.visits
    ref = champion.metadata["reference"]["nfl_pg_ml"]
    inside = v["nfl_pg_ml"].between(ref["controls_q025"], ref["controls_q975"])
    measured = v["nfl_pg_ml"].notna()
    assert (v.loc[measured, "nfl_pg_ml_in_control_band"] == inside[measured]).all()
    assert not any("months_since_baseline" in n for n in result.notes)


def test_without_visit_times_the_order_is_by_session_and_said(champion, visits):
    result = monitor(champion, visits.drop(columns=["months_since_baseline"]), "t")
    assert any("ordered by session label" in n for n in result.notes)
    assert result.visits["alsfrs_r_per_year"].isna().all()


def test_monitor_command_writes_csv_and_html(trained, visits, tmp_path, caplog):
    result, cfg = trained
    table = tmp_path / "visits.parquet"
    visits.to_parquet(table)
    common = ["--model", result.model_uri, "--tracking-uri", cfg.tracking_uri,
              "--features", str(table)]  # fmt: skip
    assert main(["monitor", *common, "--out", str(tmp_path / "m.csv")]) == 0
    written = pd.read_csv(tmp_path / "m.csv")
    assert len(written) == len(visits) and "flags" in written
    html = tmp_path / "m.html"
    assert main(["monitor", *common, "--out", str(html), "--max-subjects", "5"]) == 0
    text = html.read_text()
    assert text.count("<section>") == 5 and "first 5 of" in text
    assert main(["monitor", *common, "--out", str(html)]) == 2  # exists
    assert "exists; pass --overwrite" in caplog.text
    if os.path.exists(CHROMIUM) or os.environ.get("CI"):
        page = render(html)
        assert page.errors == [] and page.offline and page.sections == 5
        assert page.images and all(done and w > 0 for done, w, _ in page.images)
