"""Repeated visits: trajectories, dropout, the files of every visit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.extract import extract_features
from features.simulate import generative, longitudinal
from training.analysis.plans import read_plan
from training.analysis.run import run_plan


@pytest.fixture(scope="module")
def large():
    obs = generative.sample(600, 4)
    obs.insert(0, "participant_id", [f"sub-{i + 1:04d}" for i in range(len(obs))])
    visits, course = longitudinal.follow_up(
        obs, sessions=3, interval_months=4.0, seed=4
    )
    return obs, visits, course


def test_baseline_rows_are_the_baseline_draw(large):
    obs, visits, _ = large
    base = visits[visits["session"] == "ses-01"].set_index("participant_id")
    assert len(base) == len(obs)
    assert (base["months_since_baseline"] == 0).all()
    same = obs.set_index("participant_id")[["alsfrs_r", "fs_total_gray_mm3", "age"]]
    pd.testing.assert_frame_equal(base[same.columns], same)


def test_alsfrs_slopes_match_pro_act(large):
    _, _, course = large
    als = course[course["diagnosis"] == "ALS"]["alsfrs_r_per_month"]
    assert als.mean() == pytest.approx(-0.69, abs=0.05)
    assert als.std() == pytest.approx(0.57, abs=0.06)
    assert als.min() >= -3.1 and als.max() <= 1.2
    other = course[course["diagnosis"] != "ALS"]["alsfrs_r_per_month"]
    assert other.abs().mean() < 0.05


def test_dropout_is_monotone_and_rises_with_severity(large):
    _, visits, course = large
    # A participant's visits are consecutive: none comes back after a missed one.
    k = visits["session"].str[4:].astype(int)
    assert (visits.assign(k=k).groupby("participant_id")["k"].max()
            == visits.groupby("participant_id").size()).all()  # fmt: skip
    als = course[course["diagnosis"] == "ALS"]
    fast = als["alsfrs_r_per_month"] < als["alsfrs_r_per_month"].median()
    assert als[fast]["visits"].mean() < als[~fast]["visits"].mean()
    hc = course[course["diagnosis"] == "HC"]["visits"]
    assert hc.mean() > als["visits"].mean()


def test_mixed_model_recovers_the_als_grey_matter_rate(large, tmp_path):
    """The plan's mixed model on log volume: the ALS slope's CI holds the simulated
    mean rate (percent per year) of the participants who attended every visit.
    (Over everyone, dropout that follows ALSFRS-R decline, and with it atrophy, is
    not ignorable for grey matter alone: the estimate is biased towards slower
    loss by ~0.1 %/year, as in real trials.)"""
    _, visits, course = large
    measured = visits.dropna(subset=["fs_total_gray_mm3"])["participant_id"]
    course = course[(course["visits"] == 3) & course["participant_id"].isin(measured)]
    visits = visits[visits["participant_id"].isin(course["participant_id"])]
    plan = tmp_path / "gm.toml"
    plan.write_text(
        '[plan]\nname = "gm"\n\n[derived]\n'
        'log_gm = "100 * log(fs_total_gray_mm3)"\n\n'
        '[[measure]]\nname = "gm"\ntest = "mixed"\nvariables = ["log_gm"]\n'
        'groups = ["HC", "ALS"]\n'
    )
    r = run_plan(read_plan(plan), visits).results
    slope = r[r["term"] == "slope in ALS"].iloc[0]
    per_year = [slope["ci_low"] * 12, slope["ci_high"] * 12]
    truth = course[course["diagnosis"] == "ALS"]["gray_matter_pct_per_year"].mean()
    assert per_year[0] <= truth <= per_year[1]
    assert truth == pytest.approx(-2.0, abs=0.15)
    diff = r[r["term"] == "time x group ALS vs HC"].iloc[0]
    assert diff["estimate"] < 0 and diff["p"] < 1e-6


def test_invalid_follow_up_is_refused():
    obs = generative.sample(20, 0)
    obs.insert(0, "participant_id", [f"sub-{i + 1:04d}" for i in range(20)])
    with pytest.raises(ValueError, match="at least 2 visits"):
        longitudinal.follow_up(obs, 1, 6.0, 0)
    with pytest.raises(ValueError, match="positive gap"):
        longitudinal.follow_up(obs, 3, 0.0, 0)


def test_every_visit_has_its_files_and_extracts(longitudinal_cohort):
    root = longitudinal_cohort
    sessions = pd.read_csv(root / "sessions.tsv", sep="\t")
    participants = pd.read_csv(root / "participants.tsv", sep="\t")
    assert len(sessions) == len(participants) > 30
    for table in ("clinical.tsv", "serum.tsv", "nerve_conduction.tsv"):
        assert "session" in pd.read_csv(root / table, sep="\t", nrows=1)
    fs = root / "derivatives" / "freesurfer"
    assert any(p.name.endswith("_ses-02") for p in fs.iterdir())
    assert (root / "simulation" / "trajectories.tsv").exists()
    result = extract_features(root, n_jobs=1)
    table = result.table
    assert len(table) == len(sessions)
    later = table[table["session"] != "ses-01"]
    assert (later["months_since_baseline"] > 0).all()
    # A later visit is a new measurement, not a copy of the baseline.
    both = table.pivot_table(
        index="participant_id", columns="session", values="fs_total_gray_mm3"
    ).dropna()
    assert not np.allclose(both["ses-01"], both["ses-02"])
