"""The shipped plans on a large simulated cohort (1,500 subjects): each source
study's effects come out in the published direction and bands. A module of its
own so that ``make test`` (pytest-xdist, one module per worker) builds the large
cohort beside the other analysis tests, not after them."""

from __future__ import annotations

import pandas as pd
import pytest

from features.extract import extract_features
from features.simulate.cohort import simulate_cohort
from tests import ROOT
from training.analysis.plans import read_plan
from training.analysis.registry import TESTS
from training.analysis.run import run_plan

PLANS = ROOT / "experiments" / "analyses"
#: The one-visit plans without group ICA (as test_run.SHIPPED).
SHIPPED = [
    p
    for p in sorted(PLANS.glob("*.toml"))
    if read_plan(p).ica is None
    and not all(TESTS[m.test].longitudinal for m in read_plan(p).measures)
]


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A large simulated cohort: each plan's results, by plan name."""
    cohort = simulate_cohort(tmp_path_factory.mktemp("n1500") / "sim", n=1500, seed=1)
    table = extract_features(cohort, n_jobs=-1).table
    return {p.stem: run_plan(read_plan(p), table).results for p in SHIPPED}


def pick(results, measure, **where) -> pd.Series:
    r = results[results["measure"] == measure]
    for key, value in where.items():
        r = r[r[key] == value]
    assert len(r) == 1, (measure, where, len(r))
    return r.iloc[0]


@pytest.mark.slow
def test_taiwan_2023_effects_have_the_published_direction(large):
    r = large["taiwan_2023"]
    gm = pick(r, "gm_als_vs_hc", variable="precentral_gm_mm3")
    assert gm["estimate"] < 0 and gm["p"] < 1e-3  # lower precentral GM in ALS
    assert -0.10 < gm["estimate"] / gm["value_a"] < -0.02  # 3-8 % lower (refs#gm)
    fa = pick(r, "dti_als_vs_hc", variable="cst_fa")
    assert fa["estimate"] < 0 and fa["p"] < 1e-3
    rd = pick(r, "dti_als_vs_hc", variable="cst_rd")
    assert rd["estimate"] > 0
    penn = pick(r, "cst_fa_regression", term="penn_umn")
    zsum = pick(r, "cst_fa_regression", term="ncs_cmap_zsum")
    assert penn["estimate"] < 0 and penn["p"] < 0.05  # more UMN signs, lower FA
    assert zsum["estimate"] > 0 and zsum["p"] < 0.05  # larger CMAPs, higher FA
    gm_fvc = pick(r, "imaging_vs_clinical", variable="precentral_gm_mm3 ~ fvc_pct")
    assert gm_fvc["estimate"] > 0
    assert (
        pick(r, "gm_vs_cst_fa", variable="precentral_gm_mm3 ~ cst_fa")["estimate"] > 0
    )


@pytest.mark.slow
def test_prague_qsm_effects_have_the_published_direction(large):
    r = large["prague_qsm_2020"]
    sn = pick(r, "qsm_three_groups", variable="qsm_sn", term="group NMO vs HC")
    assert sn["estimate"] > 0 and sn["p"] < 0.01  # SN higher in NMO
    thal = pick(r, "qsm_three_groups", variable="qsm_thalamus", term="group MS vs HC")
    assert thal["estimate"] < 0 and thal["p"] < 1e-3  # thalamus lower in RRMS
    thal_nmo = pick(
        r, "qsm_three_groups", variable="qsm_thalamus", term="group MS vs NMO"
    )
    assert thal_nmo["estimate"] < 0  # and lower than in NMO
    pulv = pick(
        r, "volumes_three_groups", variable="pulvinar_mm3", term="group MS vs HC"
    )
    assert pulv["estimate"] < 0 and pulv["p"] < 0.01  # pulvinar atrophy in RRMS
    edss = pick(r, "edss_vs_putamen")
    assert edss["estimate"] > 0.05  # putamen susceptibility rises with EDSS


@pytest.mark.slow
def test_kakenhi_markers_are_in_their_published_bands(large):
    r = large["kakenhi_sako"]
    glu_naa = pick(r, "mrs_ratio_auc", variable="mrs_glu_naa", estimate_name="AUC")
    assert 0.62 <= glu_naa["estimate"] <= 0.85  # AUC > 0.7 (Sako 2021)
    early = pick(r, "nfl_auc", stratum="early", estimate_name="AUC")
    assert 0.85 <= early["estimate"] <= 1.0  # ~0.9 even early
    chi = pick(r, "chi3l1_auc", estimate_name="AUC")
    assert 0.45 <= chi["estimate"] <= 0.68  # ~0.55: useless alone
    sens = r[(r["measure"] == "m1_precuneus_ratio") & (r["stratum"] == "all")]
    sens = sens[sens["term"].str.startswith("sensitivity at reference 10th")].iloc[0]
    assert 0.30 <= sens["estimate"] <= 0.55  # 0.42 at specificity 0.90 (Sako 2023)
    assert pick(r, "naa_vs_age")["estimate"] < 0
    # more M1 atrophy, more SMN coupling and SMA activity (KAKENHI report, refs#fmri)
    for y in ("fmri_sma_m1_z", "fmri_smn_within_z", "fmri_falff_sma"):
        v = f"fs_m1_precuneus_ratio ~ {y}"
        smn = pick(r, "smn_vs_m1_precuneus_ratio", variable=v)
        assert smn["estimate"] < 0 and smn["p"] < 0.01, (y, smn["estimate"])


@pytest.mark.slow
def test_peripheral_mri_and_mmn_effects(large):
    r = large["peripheral_mri_2015"]
    atrophy = pick(r, "ratings_als_vs_mmn", variable="muscle_atrophy")
    assert atrophy["value_a"] == 0 and atrophy["value_b"] > 0.15  # none in MMN
    nerve = pick(r, "ratings_als_vs_mmn", variable="nerve_changes")
    assert 0.45 <= nerve["value_b"] <= 0.72 and 0.45 <= nerve["value_a"] <= 0.8
    m = large["mmn_efns_pns_2010"]
    cb = pick(m, "block_and_gm1", variable="ncs_any_cb")
    assert cb["value_b"] > 10 * cb["value_a"] and cb["p"] < 1e-6  # far more in MMN
    cats = m[(m["measure"] == "efns_pns_categories") & (m["variable"] == "category")]
    met = cats[cats["term"].isin(["definite", "probable", "possible"])]
    share = met.groupby("group_a")["estimate"].sum()
    assert 0.3 <= share["MMN"] <= 0.8 and share.get("ALS", 0) < 0.05
