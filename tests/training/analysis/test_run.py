"""``python -m training analyze``: every shipped plan on the default and a
150-subject cohort, lab tables, outputs, MLflow, and the report in headless
Chromium (the published effects on a large cohort: test_published.py)."""

from __future__ import annotations

import logging

import nibabel as nib
import pandas as pd
import pytest

from features.extract import extract_features
from features.simulate.cohort import simulate_cohort
from tests import DATA, ROOT
from tests.browser import needs_chromium, render
from training.__main__ import main
from training.analysis.plans import read_plan
from training.analysis.registry import TESTS
from training.analysis.run import run_plan

PLANS = ROOT / "experiments" / "analyses"
PLANS_ALL = sorted(PLANS.glob("*.toml"))
#: Plans over repeated visits run on the longitudinal cohort; the others on one visit.
REPEATED = [
    p
    for p in PLANS_ALL
    if all(TESTS[m.test].longitudinal for m in read_plan(p).measures)
]
#: Plans with group ICA need a cohort with BOLD images.
WITH_ICA = [p for p in PLANS_ALL if read_plan(p).ica is not None]
SHIPPED = [p for p in PLANS_ALL if p not in REPEATED + WITH_ICA]
TABLES = DATA / "tables"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working folder where the default cohort is simulated (data/simulated) and
    features are cached, as on a fresh machine."""
    root = tmp_path_factory.mktemp("analyze")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("ALSDX_CACHE_DIR", str(root / "cache"))
        yield root


@pytest.fixture(scope="module")
def default_runs(workdir):
    """Each shipped plan through the command line on the default cohort."""
    out = {}
    for plan in SHIPPED:
        target = workdir / "out" / plan.stem
        argv = ["analyze", "--plan", str(plan), "--out", str(target), "--jobs", "1"]
        out[plan.stem] = (main(argv), target)
    return out


def table_of(n: int, seed: int, tmp_path_factory) -> pd.DataFrame:
    cohort = simulate_cohort(tmp_path_factory.mktemp(f"n{n}") / "sim", n=n, seed=seed)
    return extract_features(cohort, n_jobs=-1).table


@pytest.fixture(scope="module")
def table150(tmp_path_factory):
    return table_of(150, 3, tmp_path_factory)


@pytest.mark.parametrize("plan", REPEATED, ids=lambda p: p.stem)
def test_each_longitudinal_plan_runs_on_a_cohort_with_visits(
    plan, longitudinal_cohort, tmp_path
):
    out = tmp_path / plan.stem
    argv = ["analyze", "--plan", str(plan), "--cohort", str(longitudinal_cohort),
            "--out", str(out), "--jobs", "1"]  # fmt: skip
    assert main(argv) == 0
    results = pd.read_csv(out / "results.csv")
    for m in read_plan(plan).measures:
        assert results.loc[results["measure"] == m.name, "estimate"].notna().any()
    if any(m.test == "mixed" for m in read_plan(plan).measures):
        slopes = next(out.glob("*_subjects.csv"))
        assert {"slope_per_year", "ci_low", "ci_high"} <= set(pd.read_csv(slopes))
    als = results[(results["variable"] == "alsfrs_r") & (results["group_a"] == "ALS")]
    assert (als["term"] == "annual rate").any()
    assert als.loc[als["term"] == "annual rate", "estimate"].iloc[0] < 0


def test_a_longitudinal_plan_on_one_visit_says_what_is_missing(workdir, caplog):
    plan = PLANS / "kakenhi_longitudinal.toml"
    argv = ["analyze", "--plan", str(plan), "--out", str(workdir / "lo"), "--jobs", "1"]
    assert main(argv) == 2
    assert "months_since_baseline" in caplog.text
    assert not (workdir / "lo" / "results.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("plan", [p.stem for p in SHIPPED])
def test_each_shipped_plan_runs_on_the_default_cohort(default_runs, plan):
    status, out = default_runs[plan]
    assert status == 0
    results = pd.read_csv(out / "results.csv")
    for m in read_plan(PLANS / f"{plan}.toml").measures:
        part = pd.read_csv(out / f"{m.name}.csv")
        assert len(part) and part["estimate"].notna().any(), m.name
        assert len(results[results["measure"] == m.name]) == len(part)
    assert (out / "plan.toml").read_text() == (PLANS / f"{plan}.toml").read_text()
    page = (out / "report.html").read_text()
    assert "SIMULATED cohort" in page and "<script" not in page


@pytest.mark.slow
@pytest.mark.parametrize("plan", SHIPPED, ids=lambda p: p.stem)
def test_each_shipped_plan_runs_on_a_150_subject_cohort(table150, plan):
    analysis = run_plan(read_plan(plan), table150)
    r = analysis.results
    assert len(r) and (r["estimate"].notna() | r["statistic"].notna()).all()
    assert analysis.notes == []  # nothing left uncomputed
    assert set(r["measure"]) == {m.name for m in analysis.plan.measures}


def test_a_lab_table_with_its_own_names_and_codes(tmp_path):
    plan = tmp_path / "lab.toml"
    plan.write_text(
        """
[plan]
name = "lab"
label = "Diagnosis"

[[measure]]
name = "nfl"
test = "auc"
variables = ["NfL_pg_ml"]
groups = ["Control", "als"]
direction = "higher"
cutoffs = [62]

[[measure]]
name = "grip"
test = "correlation"
method = "spearman"
x = ["Grip strength (kg)"]
y = ["ALSFRS_R"]
within = ["als"]

[[measure]]
name = "gm1"
test = "fisher"
variables = ["anti_GM1"]
groups = ["als", "MMN"]
"""
    )
    out = tmp_path / "out"
    argv = ["analyze", "--plan", str(plan), "--features"]
    assert main([*argv, str(TABLES / "clinic_serum.csv"), "--out", str(out)]) == 0
    r = pd.read_csv(out / "results.csv")
    auc = r[(r["measure"] == "nfl") & (r["estimate_name"] == "AUC")].iloc[0]
    assert auc["estimate"] > 0.8 and "left out" in auc["note"]  # empty NfL cells
    assert r.loc[r["measure"] == "gm1", "note"].iloc[0].count("/") == 2
    page = (out / "report.html").read_text()
    assert "SIMULATED" not in page  # a lab's table is not labelled simulated


def test_the_excel_export_with_numeric_group_codes(tmp_path):
    plan = tmp_path / "x.toml"
    plan.write_text(
        '[plan]\nname = "x"\n\n[[measure]]\nname = "gm"\ntest = "welch"\n'
        'variables = ["Precentral_*_GMV (mm3)"]\ngroups = ["0", "1"]\n'
    )
    out = tmp_path / "o"
    xlsx = str(TABLES / "lab_7t_export.xlsx")
    argv = ["analyze", "--plan", str(plan), "--features", xlsx, "--out", str(out)]
    assert main([*argv, "--label-column", "Group"]) == 0
    r = pd.read_csv(out / "gm.csv")
    assert list(r["variable"]) == ["Precentral_L_GMV (mm3)", "Precentral_R_GMV (mm3)"]
    assert (r["estimate"] < 0).all()  # ALS (1) lower than controls (0)


def clinic_run(tmp_path, measure: str) -> list[str]:
    """The arguments of analyze with a one-measure plan on the clinic's CSV."""
    plan = tmp_path / "p.toml"
    plan.write_text(
        '[plan]\nname = "p"\nlabel = "Diagnosis"\n\n[[measure]]\nname = "m"\n' + measure
    )
    table = str(TABLES / "clinic_serum.csv")
    return ["analyze", "--plan", str(plan), "--features", table]


def test_errors_exit_2_with_the_plan_line_and_nothing_written(tmp_path, caplog):
    argv = clinic_run(
        tmp_path,
        'test = "ancova"\nvariables = ["NfL_pg_ml"]\ngroups = ["Control", "als"]\n'
        'covariates = ["age_years", "Sex"]\n',
    )
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = caplog.text
    plan = tmp_path / "p.toml"
    assert f"{plan}:10: measure 'm': column 'Sex' (covariates) is not numeric" in err
    assert "Traceback" not in err and not out.exists()


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, caplog):
    argv = clinic_run(
        tmp_path,
        'test = "mann_whitney"\nvariables = ["NfL_pg_ml"]\n'
        'groups = ["Control", "als"]\n',
    )
    out = tmp_path / "out"
    argv += ["--out", str(out)]
    assert main(argv) == 0
    before = (out / "results.csv").read_bytes()
    assert main(argv) == 2
    assert "exists; pass --overwrite" in caplog.text
    assert (out / "results.csv").read_bytes() == before
    assert main([*argv, "--overwrite"]) == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files


def test_outputs_are_logged_to_mlflow(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    argv = clinic_run(
        tmp_path,
        'test = "welch"\nvariables = ["NfL_pg_ml"]\ngroups = ["Control", "als"]\n',
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # a user's environment
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("als-mimics-analyses")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.params["plan"] == "p"
    assert run.data.metrics["n_estimates"] == 1
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.csv", "m.csv", "report.html", "plan.toml", "notes.json"} <= names


def test_harmonize_fits_combat_on_the_controls(tmp_path, table150):
    plan = tmp_path / "h.toml"
    body = (
        '\n[[measure]]\nname = "fa"\ntest = "ancova"\nvariables = ["dti_cst_l_fa"]\n'
        'groups = ["HC", "ALS"]\ncovariates = ["age", "male"]\n'
    )
    plan.write_text('[plan]\nname = "h"\nharmonize = true\n' + body)
    harmonised = run_plan(read_plan(plan), table150)
    assert harmonised.notes[0].startswith("ComBat (fitted on the ")
    assert bool(harmonised.results["harmonized"].iloc[0])
    plan.write_text('[plan]\nname = "h"\n' + body)
    raw = run_plan(read_plan(plan), table150).results
    assert raw["estimate"].iloc[0] != harmonised.results["estimate"].iloc[0]


@pytest.mark.slow
@needs_chromium
def test_the_report_renders_in_headless_chromium(default_runs):
    _, out = default_runs["default"]
    page = render(out / "report.html")
    assert page.errors == [] and page.offline
    assert page.sections == len(read_plan(PLANS / "default.toml").measures)
    assert len(page.images) >= 15
    assert all(done and w > 50 for done, w, _ in page.images)


def test_a_combat_fallback_is_said_in_the_notes(tmp_path, table150):
    site_a_hc = (table150["diagnosis"] == "HC") & (table150["site"] == "siteA")
    few = pd.concat([table150[~site_a_hc], table150[site_a_hc].head(1)])
    plan = tmp_path / "h.toml"
    plan.write_text(
        '[plan]\nname = "h"\nharmonize = true\n\n[[measure]]\nname = "fa"\n'
        'test = "welch"\nvariables = ["fs_precentral_l_mm3"]\n'
        'groups = ["HC", "ALS"]\n'
    )
    note = run_plan(read_plan(plan), few).notes[0]
    assert "site(s) siteA" in note and "fewer than 3 'HC' rows" in note


@pytest.fixture(scope="module")
def bold_cohort(tmp_path_factory):
    """60 simulated subjects, BOLD for the 30 with rs-fMRI."""
    folder = tmp_path_factory.mktemp("bold") / "sim"
    return simulate_cohort(folder, n=60, seed=4, bold=True)


@pytest.mark.parametrize("plan", WITH_ICA, ids=lambda p: p.stem)
def test_group_ica_plans_run_on_a_cohort_with_bold(plan, bold_cohort, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="training.analysis.run")
    out = tmp_path / "ica"
    argv = ["analyze", "--plan", str(plan), "--cohort", str(bold_cohort),
            "--out", str(out), "--jobs", "1"]  # fmt: skip
    assert main(argv) == 0
    loadings = pd.read_csv(out / "ica_subjects.csv")
    with_bold = sorted(
        p.name for p in (bold_cohort / "derivatives" / "fmriprep").glob("sub-*")
    )
    assert sorted(loadings["participant_id"]) == with_bold
    assert loadings.filter(like="ica_smn_").notna().all().all()
    components = nib.load(out / "ica_components.nii.gz")
    assert components.shape[3] == read_plan(plan).ica["n_components"]
    # the participants left out are said, by name
    assert f"{60 - len(with_bold)} participants without fMRIPrep BOLD" in caplog.text
    assert f"group ICA of {len(with_bold)} BOLD runs" in caplog.text
    results = pd.read_csv(out / "results.csv")
    sma = results[
        (results["measure"] == "smn_loading_vs_ratio_all")
        & (results["variable"] == "fs_m1_precuneus_ratio ~ ica_smn_sma")
    ]
    assert len(sma) == 1 and sma["estimate"].iloc[0] < 0  # the report's sign


def test_group_ica_needs_the_cohort_not_a_table(tmp_path, table150, caplog):
    features = tmp_path / "features.tsv"
    table150.to_csv(features, sep="\t", index=False)
    argv = ["analyze", "--plan", str(WITH_ICA[0]), "--features", str(features),
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    assert "pass --cohort DIR instead of --features" in caplog.text
    assert not (tmp_path / "out").exists()


def test_group_ica_on_a_cohort_without_bold_says_so(workdir, caplog):
    argv = ["analyze", "--plan", str(WITH_ICA[0]), "--out", str(workdir / "noica"),
            "--jobs", "1"]  # fmt: skip
    assert main(argv) == 2
    assert "group ICA needs at least 10 BOLD runs" in caplog.text
    assert not (workdir / "noica" / "results.csv").exists()
