"""Sample subjects from the generative model and compute their exact posteriors.

`sample` draws a cohort: one row per subject with every value that the cohort's
files will hold (already rounded to the precision they are written with), NaN where
a modality or a column was not acquired. `posterior` computes, for each subject, the
Bayes-optimal probability of each class given exactly those observed values (the
site, age, sex, which modalities were acquired, and every acquired value), with the
latent severity integrated out by Gauss-Hermite quadrature and anything missing
marginalised out. Values drawn independently of the class (e.g. distal latencies,
SNAP amplitudes, the FreeSurfer regions outside the model) cancel from the posterior
and are drawn by the file writers instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from features.simulate import spec

SIDES = ("left", "right")
N_QUADRATURE = 48


def _block_cov(features: list[spec.Continuous], cls: str) -> np.ndarray:
    sd = np.array([f.residual_sd(cls) for f in features])
    cov = np.diag(sd**2)
    for a, fa in enumerate(features):
        for b, fb in enumerate(features):
            if a != b and fa.group is not None and fa.group == fb.group:
                cov[a, b] = fa.rho * sd[a] * sd[b]
    return cov


def _cont_parts(
    f: spec.Continuous, unit: str, frame: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Mean on the modelled scale of each row of ``frame`` for class/phenotype
    ``unit``, as (control mean with covariate offsets, class effect)."""
    age = frame["age"].to_numpy()
    own = f.mu(unit) + f.age_slope * (age - f.ref_age[unit])
    control = f.mu("HC") + f.age_slope * (age - f.ref_age["HC"])
    common = f.male * (frame["sex"].to_numpy() == "M")
    if f.site is not None:
        common = common + frame["site"].map(spec.SITE_OFFSETS[f.site]).to_numpy(float)
    if f.etiv:
        common = common + f.etiv * np.log(frame["etiv"].to_numpy() / spec.REF_ETIV)
    return control + common, own - control


def _availability_p(modality: str, cls: str, site: np.ndarray) -> np.ndarray:
    mult = spec.SITE_AVAILABILITY.get(modality, {})
    factor = np.array([mult.get(s, 1.0) for s in site])
    return np.clip(spec.AVAILABILITY[modality][cls] * factor, 0.0, 1.0)


def _round(x: np.ndarray, step: float) -> np.ndarray:
    return np.round(x / step) * step


def sample(n: int, seed: int) -> pd.DataFrame:
    """Draw ``n`` subjects; returns the observed values (see module docstring)."""
    rng = np.random.default_rng(seed)
    sites = np.array(spec.SITES)
    site = rng.choice(sites, size=n, p=[spec.SITE_WEIGHTS[s] for s in sites])
    cls = np.empty(n, dtype=object)
    for s in sites:
        idx = np.flatnonzero(site == s)
        mix = np.array([spec.SITE_CLASS_MIX[s][c] for c in spec.CLASSES])
        cls[idx] = rng.choice(spec.CLASSES, size=idx.size, p=mix / mix.sum())
    pheno = cls.copy()
    for c, mix in spec.PHENOTYPES.items():
        idx = np.flatnonzero(cls == c)
        pheno[idx] = rng.choice(list(mix), size=idx.size, p=list(mix.values()))
    df = pd.DataFrame({"diagnosis": cls, "phenotype": pheno, "site": site})
    lo, hi = spec.AGE_RANGE
    age = np.empty(n)
    male = np.empty(n, dtype=bool)
    for c in spec.CLASSES:
        idx = np.flatnonzero(cls == c)
        m, s = spec.AGE[c]
        age[idx] = stats.truncnorm.rvs(
            (lo - m) / s, (hi - m) / s, loc=m, scale=s, size=idx.size, random_state=rng
        )
        male[idx] = rng.random(idx.size) < spec.P_MALE[c]
    df["age"] = np.round(age, 1)
    df["sex"] = np.where(male, "M", "F")
    df["severity"] = rng.standard_normal(n)
    etiv = np.empty(n)
    for sex, (m, s) in spec.LOG_ETIV.items():
        idx = np.flatnonzero(df["sex"].to_numpy() == sex)
        etiv[idx] = np.exp(rng.normal(m, s, idx.size))
    df["etiv"] = np.round(etiv, 1)
    for m in spec.MODALITIES:
        p = np.empty(n)
        for c in spec.CLASSES:
            idx = np.flatnonzero(cls == c)
            p[idx] = _availability_p(m, c, site[idx])
        df[f"avail_{m}"] = rng.random(n) < p
    _sample_continuous(df, rng)
    _sample_clinical(df, rng)
    extra = {**_sample_ncs(df, rng), **_sample_pmri(df, rng)}
    return pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)


def _sample_continuous(df: pd.DataFrame, rng: np.random.Generator) -> None:
    feats = list(spec.CONTINUOUS)
    values = np.full((len(df), len(feats)), np.nan)
    noise = rng.standard_normal((len(df), len(feats)))
    for c in spec.UNITS:
        idx = np.flatnonzero(df["phenotype"].to_numpy() == c)
        chol = np.linalg.cholesky(_block_cov(feats, c))
        sub = df.iloc[idx]
        sev = sub["severity"].to_numpy()
        for j, f in enumerate(feats):
            control, effect = _cont_parts(f, c, sub)
            values[idx, j] = control + effect + f.loading[c] * sev
        values[idx] += noise[idx] @ chol.T
    for j, f in enumerate(feats):
        x = np.exp(values[:, j]) if f.log else values[:, j]
        x = np.where(df[f"avail_{f.modality}"], x, np.nan)
        df[f.name] = _round(x, _precision(f.name))
    df["fvc_pct"] = df["fvc_pct"].where(_column_present(df, "fvc_pct", rng))
    # LCModel fit quality: %SD independent of the value (so rejection at > 20 % is
    # missing at random); medians UE, GABA unedited at 3 T often fails (refs#mrs).
    for name, median in (("naa", 4.0), ("glu", 8.0), ("gaba", 16.0), ("cr", 4.0)):
        sd_pct = np.round(median * np.exp(rng.normal(0.0, 0.35, len(df))))
        df[f"mrs_{name}_sd_pct"] = np.where(df["avail_mrs"], sd_pct, np.nan)


def _precision(name: str) -> float:
    """The precision each value is written with in the cohort's files."""
    if name.startswith(("fs_precentral", "fs_precuneus")):
        return 1.0  # aparc GrayVol is an integer
    if name.startswith("fs_mean_thickness"):
        return 1e-5
    if name.startswith(("fs_", "nfl", "chi3l1", "fvc")):
        return 0.1
    if name.startswith("mrs_"):
        return 1e-3
    return 1e-6  # NIfTI maps are float32


def _column_present(
    df: pd.DataFrame, column: str, rng: np.random.Generator
) -> np.ndarray:
    p = df["diagnosis"].map(spec.COLUMN_AVAILABILITY[column]).to_numpy(dtype=float)
    return (rng.random(len(df)) < p) & df["avail_clinical"].to_numpy()


def _sample_clinical(df: pd.DataFrame, rng: np.random.Generator) -> None:
    cls = df["diagnosis"]
    clinical = df["avail_clinical"].to_numpy()
    pheno = df["phenotype"]
    for o in spec.ORDINALS:
        lam = pheno.map(o.loading).to_numpy(dtype=float)
        sd = pheno.map(o.sd).to_numpy(dtype=float)
        latent = (
            pheno.map(o.mean).to_numpy(dtype=float)
            + lam * df["severity"]
            + np.sqrt(sd**2 - lam**2) * rng.standard_normal(len(df))
        )
        value = np.clip(_round(np.asarray(latent), o.step), o.lo, o.hi)
        df[o.name] = np.where(clinical, value, np.nan)
    df["edss"] = df["edss"].where(_column_present(df, "edss", rng))
    for b in spec.BINARIES:
        p = cls.map(b.p).to_numpy(dtype=float)
        avail = df[f"avail_{b.table}"].to_numpy()
        df[b.name] = np.where(avail, (rng.random(len(df)) < p).astype(float), np.nan)
    months = np.full(len(df), np.nan)
    region = np.full(len(df), None, dtype=object)
    draws = rng.standard_normal(len(df))
    recorded = rng.random(len(df)) < spec.P_ONSET_RECORDED
    u = rng.random(len(df))
    for c, (median, sd) in spec.MONTHS_SINCE_ONSET.items():
        idx = np.flatnonzero((cls.to_numpy() == c) & clinical & recorded)
        months[idx] = np.round(median * np.exp(sd * draws[idx]), 1)
        if c in spec.ONSET_REGION:
            names = list(spec.ONSET_REGION[c])
            cum = np.cumsum([spec.ONSET_REGION[c][k] for k in names])
            region[idx] = np.array(names)[np.searchsorted(cum, u[idx] * cum[-1])]
    df["months_since_onset"] = months
    df["onset_region"] = region
    zero = rng.random(len(df))
    logv = rng.standard_normal(len(df))
    lesion = np.empty(len(df))
    for c, (p0, median, sd, lam) in spec.LESIONS.items():
        idx = np.flatnonzero(cls.to_numpy() == c)
        resid = np.sqrt(sd**2 - lam**2)
        pos = median * np.exp(lam * df["severity"].to_numpy()[idx] + resid * logv[idx])
        lesion[idx] = np.where(zero[idx] < p0, 0.0, np.maximum(np.round(pos, 2), 0.01))
    df["t2_lesion_volume_ml"] = np.where(
        _column_present(df, "t2_lesion_volume_ml", rng), lesion, np.nan
    )


def _cb_rate(cls: str, upper: bool) -> float:
    return spec.CB_RATE.get(cls, {}).get(upper, spec.CB_RATE_OTHER)


def _sample_ncs(df: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    cls = df["diagnosis"].to_numpy()
    unit = df["phenotype"].to_numpy()
    avail = df["avail_ncs"].to_numpy()
    sev = df["severity"].to_numpy()
    for nerve, (_, _, normal, upper) in spec.MOTOR_NERVES.items():
        for side in SIDES:
            key = f"ncs_{nerve}_{side}"
            mean = np.log(normal) + np.array([spec.cmap_shift(u, nerve) for u in unit])
            lam = np.array([spec.CMAP_LOADING[u] for u in unit])
            sd = np.array([spec.CMAP_SD[u] for u in unit])
            amp = np.exp(
                mean
                + lam * sev
                + np.sqrt(sd**2 - lam**2) * rng.standard_normal(len(df))
            )
            amp = np.maximum(np.round(amp, 2), 0.05)
            block = rng.random(len(df)) < np.array([_cb_rate(c, upper) for c in cls])
            ratio = np.where(
                block,
                rng.beta(*spec.CB_RATIO_BLOCK, len(df)),
                rng.beta(*spec.CB_RATIO_NORMAL, len(df)),
            )
            prox = np.maximum(np.round(amp * ratio, 2), 0.01)
            slow = rng.random(len(df)) < np.array([spec.P_CV_SLOW[c] for c in cls])
            (m_n, s_n), (m_s, s_s) = spec.CV_NORMAL[upper], spec.CV_SLOW[upper]
            m_n = m_n + np.where(cls == "ALS", spec.CV_ALS_SHIFT, 0.0)
            z = rng.standard_normal(len(df))
            cv = np.round(np.where(slow, m_s + s_s * z, m_n + s_n * z), 1)
            out[f"{key}_amp"] = np.where(avail, amp, np.nan)
            out[f"{key}_prox_amp"] = np.where(avail, prox, np.nan)
            out[f"{key}_cv"] = np.where(avail, cv, np.nan)
            out[f"{key}_block"] = np.where(avail, block.astype(float), np.nan)
            if upper:
                fm = np.array([spec.F_WAVE[c][0] for c in cls])
                fs = np.array([spec.F_WAVE[c][1] for c in cls])
                fw = np.round(fm + fs * rng.standard_normal(len(df)), 1)
                out[f"{key}_fwave"] = np.where(avail, fw, np.nan)
    return out


def _sample_pmri(df: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    cls = df["diagnosis"]
    avail = df["avail_peripheral_mri"].to_numpy()
    n = len(df)

    def sides(p_any: dict, p_one: dict) -> np.ndarray:
        anyp = rng.random(n) < cls.map(p_any).to_numpy(dtype=float)
        one = rng.random(n) < cls.map(p_one).to_numpy(dtype=float)
        left = rng.random(n) < 0.5
        out = np.zeros((n, 2))
        out[:, 0] = anyp & (~one | left)
        out[:, 1] = anyp & (~one | ~left)
        return out

    nerve = sides(spec.PMRI_NERVE, spec.PMRI_NERVE_ONE_SIDE)
    muscle = sides(spec.PMRI_MUSCLE, spec.PMRI_MUSCLE_ONE_SIDE)
    atrophy = muscle * (
        rng.random((n, 2)) < cls.map(spec.PMRI_ATROPHY).to_numpy(dtype=float)[:, None]
    )
    thick = nerve * (rng.random((n, 2)) < spec.PMRI_THICKENING)
    return {
        f"pmri_{name}_{side}": np.where(avail, arr[:, k], np.nan)
        for k, side in enumerate(SIDES)
        for name, arr in (
            ("nerve", nerve),
            ("muscle", muscle),
            ("atrophy", atrophy),
            ("thickening", thick),
        )
    }
