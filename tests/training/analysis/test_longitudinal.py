"""Tests for training.analysis.longitudinal: the mixed model against statsmodels'
formula fit, and change, SRM and trial sizes by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from training.analysis import longitudinal as lg


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def long_table(rng, n=60, visits=(0, 4, 8, 12)):
    rows = []
    for i in range(n):
        group = "ALS" if i < n // 2 else "HC"
        b0, b1 = rng.normal(40, 3), rng.normal(-0.7 if group == "ALS" else 0.0, 0.3)
        for t in visits:
            rows.append(
                {"pid": f"s{i}", "dx": group, "t": t, "y": b0 + b1 * t + rng.normal()}
            )
    return pd.DataFrame(rows)


def test_mixed_model_equals_the_statsmodels_formula_fit(rng):
    import statsmodels.formula.api as smf

    d = long_table(rng)
    rows = lg.mixed_model(
        d["y"].to_numpy(), d["t"].to_numpy(), d["pid"].to_numpy(),
        d["dx"].to_numpy(), ["HC", "ALS"], pd.DataFrame(index=d.index),
    )  # fmt: skip
    ref = smf.mixedlm(
        "y ~ t * C(dx, Treatment('HC'))", d, groups="pid", re_formula="~t"
    ).fit(reml=True)
    by = {r["term"]: r for r in rows}
    interaction = "t:C(dx, Treatment('HC'))[T.ALS]"
    assert by["time x group ALS vs HC"]["estimate"] == pytest.approx(
        ref.params[interaction], rel=1e-4
    )
    assert by["slope in HC"]["estimate"] == pytest.approx(ref.params["t"], rel=1e-4)
    als = ref.params["t"] + ref.params[interaction]
    assert by["slope in ALS"]["estimate"] == pytest.approx(als, rel=1e-4)
    assert by["slope in ALS"]["ci_high"] < -0.5  # the simulated -0.7 per month


def test_change_srm_and_trial_size_by_hand(rng):
    base = rng.normal(40, 3, 30)
    rate = rng.normal(-8, 4, 30)  # points per year
    years = rng.uniform(0.5, 1.0, 30)
    follow = base + rate * years
    rows = {r["term"]: r for r in lg.change(base, follow, years)}
    mean = rows["mean change"]
    assert mean["estimate"] == pytest.approx(np.mean(follow - base))
    assert mean["p"] == pytest.approx(stats.ttest_rel(follow, base).pvalue)
    srm = np.mean(rate) / np.std(rate, ddof=1)
    assert rows["annual rate"]["effect_size"] == pytest.approx(srm)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    n25 = math.ceil(2 * z**2 / (0.25 * srm) ** 2)
    assert rows["participants per arm, 25% slowing"]["estimate"] == n25
    assert rows["participants per arm, 50% slowing"]["estimate"] < n25 / 3.9
