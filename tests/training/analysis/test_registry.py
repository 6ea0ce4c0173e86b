"""Tests for training.analysis.registry: every test of the plan format is one
complete entry, and the plan reader and the report follow the entries."""

from __future__ import annotations

import pytest

from training.analysis import report
from training.analysis.plans import PlanError, read_plan
from training.analysis.registry import MEASURE_KEYS, TESTS


def test_every_entry_is_complete():
    for name, test in TESTS.items():
        assert test.name == name
        assert callable(test.runner)
        assert test.figure is None or test.figure in report._FIGURES, name
        assert set(test.keys) <= MEASURE_KEYS
        assert test.outcome in (None, "binary", "continuous")
        if test.groups is not None:
            fewest, most = test.groups
            assert fewest >= 2 and (most is None or most >= fewest)


def _plan(tmp_path, plan: str, measure: str = 'test = "welch"') -> str:
    path = tmp_path / "plan.toml"
    path.write_text(
        f'[plan]\nname = "p"\n{plan}\n\n[[measure]]\nname = "m"\n{measure}\n'
        'variables = ["nfl_pg_ml"]\ngroups = ["HC", "ALS"]\n'
    )
    return path


@pytest.mark.parametrize(
    "setting, message",
    [
        ('n_boot = "many"', r"plan.toml:3: \[plan\] n_boot = 'many' must be a whole"),
        ("n_boot = -1", r"n_boot = -1 must be a whole number >= 0"),
        ("harmonize = 1", r"harmonize = 1 must be true or false"),
        ("per_year = 0", r"per_year = 0 must be a number > 0"),
        ("label = 3", r"label = 3 must be a column name"),
        ("seed = true", r"seed = True must be a whole number"),
    ],
)
def test_plan_settings_are_typed_when_read(tmp_path, setting, message):
    with pytest.raises(PlanError, match=message):
        read_plan(_plan(tmp_path, setting))


def test_plan_settings_are_a_frozen_typed_record(tmp_path):
    plan = read_plan(_plan(tmp_path, "per_year = 52\nharmonize = true"))
    s = plan.settings
    assert (s.per_year, s.harmonize, s.n_boot, s.label) == (
        52.0,
        True,
        1000,
        "diagnosis",
    )
    assert s.given == {"name", "per_year", "harmonize"}
    relabelled = plan.with_label("group")
    assert relabelled.label == "group" and plan.label == "diagnosis"
    with pytest.raises(AttributeError):
        s.seed = 3  # type: ignore[misc]
