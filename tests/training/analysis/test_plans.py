"""Analysis plans: structure, and every bad plan stopping at its file and line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.analysis.plans import PlanError, read_plan
from training.analysis.run import run_plan


@pytest.fixture
def table():
    rng = np.random.default_rng(3)
    n = 40
    dx = np.array(["ALS"] * 15 + ["HC"] * 15 + ["MMN"] * 10, dtype=object)
    return pd.DataFrame(
        {
            "diagnosis": dx,
            "age": rng.normal(55, 10, n),
            "male": rng.integers(0, 2, n).astype(float),
            "nfl_pg_ml": np.exp(rng.normal(3, 0.5, n)) * np.where(dx == "ALS", 5, 1),
            "dti_cst_l_fa": rng.normal(0.55, 0.03, n),
            "dti_cst_r_fa": rng.normal(0.55, 0.03, n),
            "months_since_onset": np.where(dx == "ALS", rng.uniform(2, 30, n), np.nan),
            "ncs_any_cb": (dx == "MMN").astype(float),
        }
    )


def plan_file(tmp_path, body: str, head: str = "[plan]\nname = 't'\n"):
    path = tmp_path / "plan.toml"
    path.write_text(head + body)
    return path


def line_of(path, needle: str) -> int:
    return next(
        i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln
    )


def test_wildcards_strata_and_derived_columns_run(tmp_path, table):
    path = plan_file(
        tmp_path,
        """
[derived]
cst_fa = "(dti_cst_l_fa + dti_cst_r_fa) / 2"

[strata.early]
classes = ["ALS"]
where = "months_since_onset <= 12"

[[measure]]
name = "fa"
test = "welch"
variables = ["cst_fa", "dti_cst_*_fa"]
groups = ["HC", "ALS"]
strata = ["all", "early"]
""",
    )
    results = run_plan(read_plan(path), table).results
    assert (
        results["variable"].tolist() == ["cst_fa", "dti_cst_l_fa", "dti_cst_r_fa"] * 2
    )
    early = results[results["stratum"] == "early"]
    n_early = int(((table.diagnosis == "ALS") & (table.months_since_onset <= 12)).sum())
    assert (early["n_b"] == n_early).all() and (early["n_a"] == 15).all()
    assert results["p_adjusted"].notna().all()


@pytest.mark.parametrize(
    ("body", "needle", "message"),
    [
        (
            '[[measure]]\nname = "m"\ntest = "welch"\nvariables = ["nfl_pg_mL"]\n'
            'groups = ["HC", "ALS"]\n',
            "nfl_pg_mL",
            "column 'nfl_pg_mL' (variables) is not in the table (closest: nfl_pg_ml)",
        ),
        (
            '[[measure]]\nname = "m"\ntest = "wlech"\nvariables = ["nfl_pg_ml"]\n',
            "wlech",
            "unknown test 'wlech' (closest: welch)",
        ),
        (
            '[[measure]]\nname = "m"\ntest = "fisher"\nvariables = ["nfl_pg_ml"]\n'
            'groups = ["HC", "ALS"]\n',
            "nfl_pg_ml",
            "test 'fisher' needs a 0/1 finding",
        ),
        (
            '[[measure]]\nname = "m"\ntest = "mann_whitney"\n'
            'variables = ["ncs_any_cb"]\ngroups = ["ALS", "MMN"]\n',
            "ncs_any_cb",
            "is a 0/1 finding",
        ),
        (
            '[[measure]]\nname = "m"\ntest = "welch"\nvariables = ["nfl_pg_ml"]\n'
            'groups = ["HC", "AlS"]\n',
            "AlS",
            "class 'AlS' (groups) does not occur in column 'diagnosis' (closest: ALS)",
        ),
        (
            '[[measure]]\nname = "m"\ntest = "welch"\nvariables = ["nfl_pg_ml"]\n'
            'groups = ["HC", "MMN", "ALS"]\n',
            "groups",
            "compares exactly two groups",
        ),
        (
            '[[measure]]\nname = "m"\ntest = "ols"\noutcome = "nfl_pg_ml"\n',
            "test",
            "test 'ols' needs 'predictors'",
        ),
        (
            '[[measure]]\nname = "m"\ntest = "auc"\nvariables = ["nfl_pg_ml"]\n'
            'groups = ["HC", "ALS"]\ncutoff = [62]\n',
            "cutoff",
            "unknown key 'cutoff' (closest: cutoffs",
        ),
    ],
)
def test_a_bad_measure_stops_at_its_line(tmp_path, table, body, needle, message):
    path = plan_file(tmp_path, "\n" + body)
    with pytest.raises(PlanError) as err:
        run_plan(read_plan(path), table)
    text = str(err.value)
    assert text.startswith(f"{path}:{line_of(path, needle)}: "), text
    assert message in text


def test_a_stratum_under_three_subjects_is_skipped_and_named(tmp_path, table):
    path = plan_file(
        tmp_path,
        """
[strata.very_early]
classes = ["ALS"]
where = "months_since_onset <= 2.5"

[[measure]]
name = "nfl"
test = "auc"
variables = ["nfl_pg_ml"]
groups = ["HC", "ALS"]
strata = ["very_early"]
""",
    )
    table.loc[table.diagnosis == "ALS", "months_since_onset"] = [2.0] + [20.0] * 14
    analysis = run_plan(read_plan(path), table)  # runs: the comparison is skipped
    (row,) = analysis.results.itertuples()
    assert row.stratum == "very_early" and pd.isna(row.estimate)
    assert row.note.startswith("not computed: group 'ALS' has 1 subject(s) in stratum")
    assert f"{path}:{line_of(path, '[strata.very_early]')}" in row.note
    assert analysis.notes == [f"nfl / very_early: {row.note}"]


def test_a_derived_column_with_a_typo_names_the_closest_column(tmp_path, table):
    path = plan_file(
        tmp_path,
        '\n[derived]\nfa = "(dti_cst_l_fa + dti_cst_r_FA) / 2"\n\n[[measure]]\n'
        'name = "m"\ntest = "welch"\nvariables = ["fa"]\ngroups = ["HC", "ALS"]\n',
    )
    with pytest.raises(PlanError, match=r"plan.toml:5: .*'dti_cst_r_FA' is not in the "
                       r"table \(closest: dti_cst_r_fa"):  # fmt: skip
        run_plan(read_plan(path), table)


def test_derived_values_are_missing_where_an_input_is(tmp_path, table):
    table.loc[0, "dti_cst_r_fa"] = np.nan
    path = plan_file(
        tmp_path,
        '\n[derived]\nhigh = "dti_cst_r_fa > 0.5"\n\n[[measure]]\nname = "m"\n'
        'test = "fisher"\nvariables = ["high"]\ngroups = ["HC", "ALS"]\n',
    )
    analysis = run_plan(read_plan(path), table)
    row = analysis.results.iloc[0]
    assert row["n"] == 29 and "1 row(s) without high left out" in row["note"]


@pytest.mark.parametrize(
    ("expr", "token"),
    [
        ("nfl_pg_ml * 0 + @pd.io.common.os.system('touch {mark}')", "'@'"),
        ("nfl_pg_ml * 0 + __import__('os').system('touch {mark}')", "the call"),
        ("nfl_pg_ml.__class__.__init__.__globals__", "attribute access"),
    ],
)
def test_a_derived_expression_that_would_run_code_is_refused_unrun(
    tmp_path, table, expr, token
):
    mark = tmp_path / "ran"
    path = plan_file(
        tmp_path,
        f'\n[derived]\nx = "{expr.format(mark=mark)}"\n\n[[measure]]\nname = "m"\n'
        'test = "welch"\nvariables = ["x"]\ngroups = ["HC", "ALS"]\n',
    )
    with pytest.raises(PlanError, match=r"plan.toml:5: \[derived\] x = ") as err:
        run_plan(read_plan(path), table)
    assert token in str(err.value) and "not allowed" in str(err.value)
    assert not mark.exists()


def test_structural_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[plan\nname = 1\n")
    with pytest.raises(PlanError, match=r"bad.toml: not valid TOML"):
        read_plan(bad)
    with pytest.raises(PlanError, match="plan file not found"):
        read_plan(tmp_path / "missing.toml")
    empty = plan_file(tmp_path, "")
    with pytest.raises(PlanError, match="declares no"):
        read_plan(empty)
    path = plan_file(
        tmp_path,
        '\n[[measure]]\nname = "m"\ntest = "welch"\n',
        "[plan]\nlable = 'dx'\n",
    )
    with pytest.raises(
        PlanError, match=r"plan.toml:2: unknown \[plan\] key 'lable' \(closest: label"
    ):
        read_plan(path)


def test_standardised_regressions_and_a_logit_on_group_membership(tmp_path, table):
    path = plan_file(
        tmp_path,
        """
[[measure]]
name = "beta"
test = "ols"
outcome = "dti_cst_l_fa"
predictors = ["age"]
standardize = true

[[measure]]
name = "odds"
test = "logit"
predictors = ["dti_cst_r_fa"]
groups = ["HC", "ALS"]
standardize = true
""",
    )
    r = run_plan(read_plan(path), table).results
    beta = r[(r["measure"] == "beta") & (r["term"] == "age")].iloc[0]
    # one standardised predictor: the coefficient is Pearson's r
    assert beta["estimate"] == pytest.approx(table["age"].corr(table["dti_cst_l_fa"]))
    assert beta["estimate_name"] == "standardised coefficient"
    odds = r[(r["measure"] == "odds") & (r["term"] == "dti_cst_r_fa")].iloc[0]
    assert odds["estimate_name"] == "odds ratio per SD" and odds["n"] == 30
    assert odds["variable"] == "ALS (vs HC)" and odds["ci_low"] < odds["estimate"]


def test_repeated_visits_mixed_model_and_change(tmp_path):
    rng = np.random.default_rng(5)
    rows = []
    for i in range(40):
        dx = "ALS" if i < 20 else "HC"
        slope = rng.normal(-0.7 if dx == "ALS" else 0.0, 0.2)
        for months in (0, 4, 8):
            score = 42 + slope * months + rng.normal(0, 0.5)
            rows.append({"participant_id": f"sub-{i}", "diagnosis": dx,
                         "visit_month": months, "alsfrs_r": score})  # fmt: skip
    visits = pd.DataFrame(rows)
    body = (
        '\n[[measure]]\nname = "slopes"\ntest = "mixed"\nvariables = ["alsfrs_r"]\n'
        'groups = ["HC", "ALS"]\n\n[[measure]]\nname = "change"\ntest = "change"\n'
        'variables = ["alsfrs_r"]\ngroups = ["ALS"]\n'
    )
    path = plan_file(tmp_path, body, '[plan]\nname = "v"\ntime = "visit_month"\n')
    r = run_plan(read_plan(path), visits).results
    slope = r[r["term"] == "slope in ALS"].iloc[0]
    assert slope["estimate"] == pytest.approx(-0.7, abs=0.1)  # points per month
    diff = r[r["term"] == "time x group ALS vs HC"].iloc[0]
    assert diff["estimate"] < 0 and diff["p"] < 1e-6
    rate = r[(r["measure"] == "change") & (r["term"] == "annual rate")].iloc[0]
    assert rate["estimate"] == pytest.approx(-0.7 * 12, rel=0.15)  # per year
    n25 = r[r["term"] == "participants per arm, 25% slowing"].iloc[0]["estimate"]
    assert n25 >= 2
    path = plan_file(tmp_path, body, '[plan]\nname = "v"\n')
    with pytest.raises(PlanError, match="time column 'months_since_baseline' is not"):
        run_plan(read_plan(path), visits)


@pytest.mark.parametrize(
    "ica, message",
    [
        ("n_component = 3", r"plan.toml:\d+: unknown \[ica\] key 'n_component' "
         r"\(closest: n_components"),
        ("n_components = 0", r"\[ica\] n_components = 0 must be a whole number >= 1"),
        ("smoothing_fwhm = 'six'", r"smoothing_fwhm = 'six' must be a number of mm"),
        ("n_init = true", r"\[ica\] n_init = True must be a whole number"),
    ],
)  # fmt: skip
def test_a_bad_ica_setting_names_its_line(tmp_path, ica, message):
    path = plan_file(
        tmp_path, f'[ica]\n{ica}\n\n[[measure]]\nname = "m"\ntest = "welch"\n'
    )
    with pytest.raises(PlanError, match=message):
        read_plan(path)


def test_ica_settings_default_to_nilearns(tmp_path):
    path = plan_file(
        tmp_path, '[ica]\nn_components = 4\n\n[[measure]]\nname = "m"\ntest = "welch"\n'
    )
    settings = {"n_components": 4, "smoothing_fwhm": 6.0, "n_init": 10}
    assert read_plan(path).ica == settings


def test_a_plan_with_a_group_of_two_runs_and_names_what_it_skipped(tmp_path, table):
    path = plan_file(
        tmp_path,
        '\n[[measure]]\nname = "few"\ntest = "welch"\nvariables = ["nfl_pg_ml"]\n'
        'groups = ["HC", "MMN"]\n\n[[measure]]\nname = "many"\ntest = "welch"\n'
        'variables = ["nfl_pg_ml"]\ngroups = ["HC", "ALS"]\n',
    )
    two_mmn = table[table["diagnosis"] != "MMN"]
    two_mmn = pd.concat([two_mmn, table[table["diagnosis"] == "MMN"].head(2)])
    analysis = run_plan(read_plan(path), two_mmn)
    few = analysis.measure("few")
    assert len(few) == 1 and pd.isna(few["estimate"].iloc[0])
    assert "group 'MMN' has 2 subject(s) in stratum 'all'" in few["note"].iloc[0]
    assert f"{path}:{line_of(path, 'MMN')}" in few["note"].iloc[0]
    assert analysis.measure("many")["estimate"].notna().any()  # the rest ran
    assert any(n.startswith("few / all: not computed") for n in analysis.notes)


def test_the_summary_prints_an_omnibus_statistic_and_counts_only_the_uncomputed(
    tmp_path, table
):
    from training.analysis.run import summary

    path = plan_file(
        tmp_path,
        '\n[[measure]]\nname = "three"\ntest = "ancova"\nvariables = ["nfl_pg_ml"]\n'
        'groups = ["HC", "ALS", "MMN"]\n',
    )
    analysis = run_plan(read_plan(path), table)
    analysis.notes.append("a note that is not a missing estimate")
    text = summary(analysis)
    assert "nan = nan" not in text and " F = " in text
    assert "0 not computed" in text


def test_every_efns_category_is_shown_even_when_no_one_has_it(tmp_path):
    t = pd.DataFrame(
        {
            "diagnosis": ["MMN"] * 3 + ["ALS"] * 3,
            "lmn_signs": [1] * 6,
            "months_since_onset": [40] * 6,
            "ncs_sensory_abnormal": [0] * 6,
            "umn_signs": [0, 0, 0, 1, 1, 1],
            "onset_bulbar": [0] * 6,
            "ncs_n_nerves_cb_definite": [1, 1, 1, 0, 0, 0],
            "ncs_n_nerves_cb_probable": [0] * 6,
        }
    )
    path = plan_file(tmp_path, '\n[[measure]]\nname = "c"\ntest = "efns_pns_2010"\n')
    r = run_plan(read_plan(path), t).measure("c")
    category = r[r["variable"] == "category"]
    mmn = category[category["group_a"] == "MMN"].set_index("term")["estimate"]
    assert list(mmn.index) == [
        "definite", "probable", "possible", "not met", "not evaluable"
    ]  # fmt: skip
    assert mmn["definite"] == 1.0 and mmn["probable"] == 0.0  # a zero row, kept
    grades = r[(r["variable"] == "electrodiagnostic") & (r["group_a"] == "ALS")]
    assert set(grades["term"]) == {
        "definite block", "probable block", "no block", "not evaluable"
    }  # fmt: skip
