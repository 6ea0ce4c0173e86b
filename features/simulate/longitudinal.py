"""Repeated visits: per-subject trajectories from each subject's baseline draw.

`follow_up` turns the baseline sample of `generative.sample` into one row per
subject-visit. Each subject gets rates drawn once (its "true" course, written to
``simulation/trajectories.tsv``); every later visit applies them to the baseline
values, adds re-measurement noise, and may be missed for good (dropout that rises
as ALSFRS-R falls). Baseline rows are the baseline draw unchanged, so the oracle
posterior of ``truth.tsv`` stays exact for them; later visits have no oracle.

Rates and where they come from (refs#long; UE = uncited estimate):

- ALSFRS-R in ALS: -0.69 +- 0.57 points/month, clipped to [-3.1, +1.2]
  (Efron & Hastie 2016 §17.2, PRO-ACT-derived, n = 1822). Faster progressors are
  the more severe at baseline (correlation 0.4 with the latent severity, UE), so
  they have the higher NfL, as reported (Lu 2015, direction only). Mimics and
  controls: 0 +- 0.03 points/month (UE). Rater noise SD 1 point per visit (UE).
- FVC % predicted in ALS: 3.0 x the ALSFRS-R slope per month (mean about -2 %
  predicted/month, "a few % per month, wide spread": UE); re-measurement SD 4 (UE).
- MRC sum in ALS: 0.6 x the ALSFRS-R slope per month (UE).
- Total grey matter: -2.0 +- 0.8 %/year in ALS, faster in faster progressors (UE
  magnitudes; the KAKENHI report saw a significant decline over ~0.7 y in 7
  patients); -0.4 %/year of ageing in everyone else (UE). Re-measurement SD 0.5 %
  (UE). Precentral (M1) volume follows the same rate with re-measurement SD 3 %
  (UE): a smaller, noisier region, which is why the report saw no M1 loss over
  0.7 y in 7 patients while a large cohort detects it.
- Serum NfL: no trend within a subject (a baseline marker, Benatar 2020, direction
  only); re-measurement SD 0.12 on the log scale (UE).
- Every other continuous marker: no change, re-measurement noise 0.25 of its
  within-class SD on the modelled scale (UE).
- Visit times: k x interval + N(0, 0.5) months (UE). Dropout per follow-up visit:
  3 % in mimics and controls; in ALS logistic in the current ALSFRS-R,
  7.6 % at 38 points, 22 % at 28 (UE; "rises with severity", refs#long).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.simulate import generative, spec

ALSFRS_SLOPE = (-0.69, 0.57, -3.1, 1.2)  # mean, SD, min, max per month (E&H 2016)
SLOPE_SEVERITY_R = 0.4  # UE
GM_RATE_ALS = (-2.0, 0.8)  # %/year, UE
GM_RATE_AGEING = -0.4  # %/year, UE
NOISE = {
    "alsfrs_r": 1.0,
    "fvc_pct": 4.0,
    "fs_total_gray_mm3": 0.005,  # log scale
    "fs_precentral_l_mm3": 0.03,
    "fs_precentral_r_mm3": 0.03,
    "nfl_pg_ml": 0.12,
}
TRAJECTORY_COLUMNS = (
    "alsfrs_r", "fvc_pct", "mrc_sum", "fs_total_gray_mm3",
    "fs_precentral_l_mm3", "fs_precentral_r_mm3", "nfl_pg_ml",
)  # fmt: skip


def session_label(k: int) -> str:
    """``ses-01`` for the baseline (k = 0), ``ses-02`` for the first follow-up..."""
    return f"ses-{k + 1:02d}"


def rates(obs: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each subject's true course: ALSFRS-R slope (points/month), FVC and MRC-sum
    slopes (per month) and grey-matter rate (%/year)."""
    als = (obs["diagnosis"] == "ALS").to_numpy()
    n = len(obs)
    z = SLOPE_SEVERITY_R * obs["severity"].to_numpy() + np.sqrt(
        1 - SLOPE_SEVERITY_R**2
    ) * rng.standard_normal(n)
    mean, sd, lo, hi = ALSFRS_SLOPE
    alsfrs = np.where(als, np.clip(mean - sd * z, lo, hi), rng.normal(0, 0.03, n))
    gm_mean, gm_sd = GM_RATE_ALS
    # Faster functional decline, faster atrophy (UE): share the slope's z.
    gm = np.where(
        als,
        gm_mean - gm_sd * (0.6 * z + 0.8 * rng.standard_normal(n)),
        GM_RATE_AGEING + rng.normal(0, 0.2, n),
    )
    return pd.DataFrame(
        {
            "participant_id": obs["participant_id"].to_numpy(),
            "diagnosis": obs["diagnosis"].to_numpy(),
            "alsfrs_r_per_month": np.round(alsfrs, 4),
            "fvc_pct_per_month": np.round(np.where(als, 3.0 * alsfrs, 0.0), 4),
            "mrc_sum_per_month": np.round(np.where(als, 0.6 * alsfrs, 0.0), 4),
            "gray_matter_pct_per_year": np.round(gm, 4),
        }
    )


def _dropout_p(alsfrs: np.ndarray, als: np.ndarray) -> np.ndarray:
    p_als = 1 / (1 + np.exp(-(-2.5 + 0.12 * (38.0 - np.nan_to_num(alsfrs, nan=38.0)))))
    return np.where(als, p_als, 0.03)


def follow_up(
    obs: pd.DataFrame, sessions: int, interval_months: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every subject-visit of a cohort followed for ``sessions`` visits.

    Parameters
    ----------
    obs : DataFrame
        The baseline draw (`generative.sample` plus ``participant_id``).
    sessions : int
        Visits per subject planned, baseline included (>= 2).
    interval_months : float
        Planned months between visits (> 0).
    seed : int
        Random seed of the cohort.

    Returns
    -------
    visits : DataFrame
        ``obs``'s columns plus ``session`` and ``months_since_baseline``, one row
        per visit attended, by participant and session.
    course : DataFrame
        One row per subject: its rates, and how many visits it attended.
    """
    if sessions < 2:
        raise ValueError(f"--sessions {sessions}: follow-up needs at least 2 visits.")
    if not interval_months > 0:
        raise ValueError(f"--interval-months {interval_months}: give a positive gap.")
    rng = np.random.default_rng([seed, 1013])
    course = rates(obs, rng)
    als = (obs["diagnosis"] == "ALS").to_numpy()
    base = obs.assign(session=session_label(0), months_since_baseline=0.0)
    frames = [base]
    present = np.ones(len(obs), dtype=bool)
    previous = obs["alsfrs_r"].to_numpy(dtype=float)
    for k in range(1, sessions):
        t = np.round(k * interval_months + rng.normal(0, 0.5, len(obs)), 1)
        t = np.maximum(t, 0.1)
        visit = _visit(obs, course, t, rng)
        present &= rng.random(len(obs)) >= _dropout_p(previous, als)
        previous = visit["alsfrs_r"].to_numpy(dtype=float)
        visit["session"] = session_label(k)
        visit["months_since_baseline"] = t
        frames.append(visit[present])
    visits = pd.concat(frames).sort_values(["participant_id", "session"])
    visits = visits.reset_index(drop=True)
    attended = visits.groupby("participant_id").size()
    course["visits"] = course["participant_id"].map(attended).to_numpy()
    return visits, course


def _visit(
    obs: pd.DataFrame, course: pd.DataFrame, t: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """The values measured ``t`` months after each subject's baseline."""
    v = obs.copy()
    n = len(v)
    v["age"] = np.round(v["age"] + t / 12, 1)
    v["months_since_onset"] = v["months_since_onset"] + t
    for col, lo, hi in (("alsfrs_r", 0, 48), ("mrc_sum", 0, 60)):
        slope = course[f"{col}_per_month"].to_numpy()
        noise = rng.normal(0, NOISE.get(col, 1.0), n)
        v[col] = np.clip(np.round(v[col] + slope * t + noise), lo, hi)
    fvc = v["fvc_pct"] + course["fvc_pct_per_month"].to_numpy() * t
    v["fvc_pct"] = np.round(fvc + rng.normal(0, NOISE["fvc_pct"], n), 1)
    years = t / 12
    gm = course["gray_matter_pct_per_year"].to_numpy() / 100 * years
    for col, step in (
        ("fs_total_gray_mm3", 0.1),
        ("fs_precentral_l_mm3", 1.0),
        ("fs_precentral_r_mm3", 1.0),
    ):
        scale = np.exp(gm + rng.normal(0, NOISE[col], n))
        v[col] = generative._round(v[col] * scale, step)
    v["nfl_pg_ml"] = np.round(
        v["nfl_pg_ml"] * np.exp(rng.normal(0, NOISE["nfl_pg_ml"], n)), 1
    )
    pheno = v["phenotype"].to_numpy()
    for f in spec.CONTINUOUS:
        if f.name in TRAJECTORY_COLUMNS or f.name not in v:
            continue
        sd = np.array([f.sd[p] for p in pheno]) * 0.25
        x = v[f.name].to_numpy(dtype=float)
        eps = rng.normal(0, 1, n) * sd
        x = np.exp(np.log(x) + eps) if f.log else x + eps
        v[f.name] = generative._round(x, generative._precision(f.name))
    return v
