"""The Bayes-optimal posterior of each class under the generative model.

For each subject ``p(class | observed) ∝ p(class | site) p(age, sex | class)
p(which modalities were acquired | class, site) ∫ p(values | class, s) φ(s) ds``.
Severity ``s`` is integrated by Gauss-Hermite quadrature; values of a modality that
was not acquired are marginalised out (they simply do not enter the product, which
is exact for the Gaussian blocks because their marginals are Gaussian). Terms that
do not depend on the class (eTIV given sex, distal latencies, SNAPs, the LCModel %SD)
cancel and are left out.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
from scipy import special, stats

from features.simulate import spec
from features.simulate.generative import (
    N_QUADRATURE,
    SIDES,
    _availability_p,
    _block_cov,
    _cb_rate,
    _cont_parts,
)

_LOG_2PI = np.log(2 * np.pi)


def _log(p: np.ndarray | float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


def posterior(
    obs: pd.DataFrame,
    *,
    history: bool = False,
    covariates: bool = True,
    modalities: Collection[str] | None = None,
) -> pd.DataFrame:
    """Return ``p_<CLASS>`` columns: the exact posterior for each row of ``obs``.

    Parameters
    ----------
    obs : DataFrame
        The output of :func:`features.simulate.generative.sample`.
    history : bool
        Also condition on ``months_since_onset`` and ``onset_region``. They are
        recorded only for patients, so their mere presence identifies controls; the
        default model leaves them out (``features.extract.PATIENT_ONLY``) and so,
        by default, does the oracle it is compared with.
    covariates : bool
        Condition on site, age, sex and which modalities were acquired. Without
        them the classes are equally likely a priori and only measured values
        count: the setting of published single- and multi-marker AUCs (see
        :func:`observe_only`).
    modalities : collection of str, optional
        Condition only on these modalities (:data:`spec.MODALITIES`; others are
        ignored): their values and, with ``covariates``, whether each was
        acquired. The Bayes limit of a model shown only those modalities' columns
        (``--feature-set``). ``None``: all.
    """
    if modalities is not None:
        obs = observe_only(obs, set(modalities))
    nodes, weights = np.polynomial.hermite_e.hermegauss(N_QUADRATURE)
    log_w = np.log(weights) - 0.5 * _LOG_2PI
    logp = np.empty((len(obs), len(spec.CLASSES)))
    for k, c in enumerate(spec.CLASSES):
        flat = _log_static(obs, c, availability=covariates)
        if covariates:
            flat = flat + _log_prior(obs, c, modalities)
        if history:
            flat = flat + _log_history(obs, c)
        mixture = [  # p(values | class) sums over the class's phenotypes
            np.log(share)
            + special.logsumexp(_log_severity_terms(obs, u, nodes) + log_w, axis=1)
            for u, share in spec.PHENOTYPES.get(c, {c: 1.0}).items()
        ]
        logp[:, k] = flat + special.logsumexp(np.array(mixture), axis=0)
    post = np.exp(logp - special.logsumexp(logp, axis=1, keepdims=True))
    return pd.DataFrame(post, index=obs.index, columns=[f"p_{c}" for c in spec.CLASSES])


def value_columns(obs: pd.DataFrame, modality: str) -> list[str]:
    """The columns of ``obs`` holding the measured values of ``modality``."""
    cols = [f.name for f in spec.CONTINUOUS if f.modality == modality]
    cols += [b.name for b in spec.BINARIES if b.table == modality]
    if modality == "clinical":
        cols += [o.name for o in spec.ORDINALS] + ["t2_lesion_volume_ml"]
        cols += ["months_since_onset", "onset_region"]
    prefix = {"ncs": "ncs_", "peripheral_mri": "pmri_"}.get(modality)
    if prefix:
        cols += [c for c in obs.columns if c.startswith(prefix)]
    return cols


def observe_only(obs: pd.DataFrame, modalities: set[str]) -> pd.DataFrame:
    """A copy of ``obs`` in which only ``modalities`` were measured.

    With ``posterior(..., covariates=False)`` this gives the Bayes-optimal
    classifier that sees only those markers, e.g. ``{"mrs", "dti"}``.
    """
    out = obs.copy()
    for m in spec.MODALITIES:
        if m not in modalities:
            for col in value_columns(obs, m):
                out[col] = None if col == "onset_region" else np.nan
            out[f"avail_{m}"] = False
    return out


def _log_prior(
    obs: pd.DataFrame, c: str, modalities: Collection[str] | None = None
) -> np.ndarray:
    mix = {
        s: spec.SITE_CLASS_MIX[s][c]
        / sum(spec.SITE_CLASS_MIX[s][k] for k in spec.CLASSES)
        for s in spec.SITES
    }
    out = _log(obs["site"].map(mix).to_numpy(dtype=float))
    m, s = spec.AGE[c]
    lo, hi = spec.AGE_RANGE
    out = out + stats.truncnorm.logpdf(
        obs["age"].to_numpy(), (lo - m) / s, (hi - m) / s, loc=m, scale=s
    )
    male = obs["sex"].to_numpy() == "M"
    out = out + np.where(male, _log(spec.P_MALE[c]), _log(1 - spec.P_MALE[c]))
    site = obs["site"].to_numpy()
    for m_ in spec.MODALITIES:
        if modalities is not None and m_ not in modalities:
            continue  # its acquisition is not among the inputs either
        p = _availability_p(m_, c, site)
        out = out + np.where(obs[f"avail_{m_}"], _log(p), _log(1 - p))
    return out


def _bernoulli(x: np.ndarray, p: float | np.ndarray) -> np.ndarray:
    """log P(x) for 0/1 ``x``; 0 where ``x`` is NaN (not observed)."""
    with np.errstate(invalid="ignore"):
        val = np.where(x == 1, _log(p), _log(1 - p))
    return np.where(np.isnan(x), 0.0, val)


def _log_static(obs: pd.DataFrame, c: str, availability: bool = True) -> np.ndarray:
    """Terms that do not depend on severity."""
    clinical = obs["avail_clinical"].to_numpy()
    out = np.zeros(len(obs))
    for col, p in spec.COLUMN_AVAILABILITY.items() if availability else ():
        present = ~np.isnan(obs[col].to_numpy(dtype=float))
        out += np.where(clinical, np.where(present, _log(p[c]), _log(1 - p[c])), 0.0)
    for b in spec.BINARIES:
        out += _bernoulli(obs[b.name].to_numpy(dtype=float), b.p[c])
    out += _log_ncs_static(obs, c) + _log_pmri(obs, c)
    return out


def _log_history(obs: pd.DataFrame, c: str) -> np.ndarray:
    """Months since onset and onset region: recorded only for patients."""
    clinical = obs["avail_clinical"].to_numpy()
    out = np.zeros(len(obs))
    months = obs["months_since_onset"].to_numpy(dtype=float)
    has = ~np.isnan(months)
    if c in spec.MONTHS_SINCE_ONSET:
        median, sd = spec.MONTHS_SINCE_ONSET[c]
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = stats.norm.logpdf(np.log(months), np.log(median), sd)
        rec = _log(spec.P_ONSET_RECORDED)
        out += np.where(
            clinical, np.where(has, rec + dens, _log(1 - spec.P_ONSET_RECORDED)), 0.0
        )
        if c in spec.ONSET_REGION:
            probs = spec.ONSET_REGION[c]
            region = obs["onset_region"].to_numpy(dtype=object)
            out += np.array(
                [_log(probs[r]) if isinstance(r, str) else 0.0 for r in region]
            )
        else:
            out += np.where(obs["onset_region"].notna(), -np.inf, 0.0)
    else:
        out += np.where(has, -np.inf, 0.0)
    return out


def _log_ncs_static(obs: pd.DataFrame, c: str) -> np.ndarray:
    out = np.zeros(len(obs))
    fm, fs = spec.F_WAVE[c]
    for nerve, (_, _, _, upper) in spec.MOTOR_NERVES.items():
        q = _cb_rate(c, upper)
        (m_n, s_n), (m_s, s_s) = spec.CV_NORMAL[upper], spec.CV_SLOW[upper]
        m_n += spec.CV_ALS_SHIFT if c == "ALS" else 0.0
        slow = spec.P_CV_SLOW[c]
        for side in SIDES:
            key = f"ncs_{nerve}_{side}"
            amp = obs[f"{key}_amp"].to_numpy(dtype=float)
            ratio = obs[f"{key}_prox_amp"].to_numpy(dtype=float) / amp
            ratio = np.clip(ratio, 1e-4, 1 - 1e-4)
            mix = q * stats.beta.pdf(ratio, *spec.CB_RATIO_BLOCK) + (
                1 - q
            ) * stats.beta.pdf(ratio, *spec.CB_RATIO_NORMAL)
            cv = obs[f"{key}_cv"].to_numpy(dtype=float)
            cv_d = slow * stats.norm.pdf(cv, m_s, s_s) + (1 - slow) * stats.norm.pdf(
                cv, m_n, s_n
            )
            term = _log(mix) + _log(cv_d)
            if upper:
                term = term + stats.norm.logpdf(obs[f"{key}_fwave"], fm, fs)
            out += np.where(np.isnan(amp), 0.0, term)
    return out


def _log_pmri(obs: pd.DataFrame, c: str) -> np.ndarray:
    def side_pattern(name: str, p_any: float, p_one: float) -> np.ndarray:
        left = obs[f"pmri_{name}_left"].to_numpy(dtype=float)
        right = obs[f"pmri_{name}_right"].to_numpy(dtype=float)
        count = left + right
        p = np.where(
            count == 0,
            1 - p_any,
            np.where(count == 1, p_any * p_one / 2, p_any * (1 - p_one)),
        )
        return np.where(np.isnan(count), 0.0, _log(p))

    out = side_pattern("nerve", spec.PMRI_NERVE[c], spec.PMRI_NERVE_ONE_SIDE[c])
    out = out + side_pattern(
        "muscle", spec.PMRI_MUSCLE[c], spec.PMRI_MUSCLE_ONE_SIDE[c]
    )
    for side in SIDES:
        muscle = obs[f"pmri_muscle_{side}"].to_numpy(dtype=float)
        atrophy = obs[f"pmri_atrophy_{side}"].to_numpy(dtype=float)
        out = out + np.where(
            muscle == 1, _bernoulli(atrophy, spec.PMRI_ATROPHY[c]), 0.0
        )
    return out


def _log_severity_terms(obs: pd.DataFrame, u: str, nodes: np.ndarray) -> np.ndarray:
    """log p(severity-dependent values | phenotype u, s) at each node: (n, K)."""
    c = spec.PARENT[u]
    n = len(obs)
    out = np.zeros((n, nodes.size))
    by_modality: dict[str, list[spec.Continuous]] = {}
    for f in spec.CONTINUOUS:
        by_modality.setdefault(f.modality, []).append(f)
    for feats in by_modality.values():
        x = np.column_stack(
            [np.log(obs[f.name]) if f.log else obs[f.name] for f in feats]
        ).astype(float)
        parts = [_cont_parts(f, u, obs) for f in feats]
        control = np.column_stack([p[0] for p in parts])[:, None, :]
        effect = np.column_stack([p[1] for p in parts])[:, None, :]
        lam = np.array([f.loading[u] for f in feats])
        resid = x[:, None, :] - control - effect - nodes[None, :, None] * lam
        if any(f.group for f in feats):  # correlated block: acquired as a whole
            chol = np.linalg.cholesky(_block_cov(feats, u))
            z = np.linalg.solve(chol, resid.reshape(-1, len(feats)).T).T
            ll = (
                -0.5 * (z**2).sum(axis=1).reshape(n, nodes.size)
                - np.log(np.diag(chol)).sum()
                - 0.5 * len(feats) * _LOG_2PI
            )
            out += np.where(np.isnan(ll), 0.0, ll)
        else:
            sd = np.array([f.residual_sd(u) for f in feats])
            ll = stats.norm.logpdf(resid, scale=sd)
            out += np.nansum(ll, axis=2)
    for o in spec.ORDINALS:
        x = obs[o.name].to_numpy(dtype=float)[:, None]
        lam, sd = o.loading[u], o.sd[u]
        m = o.mean[u] + lam * nodes[None, :]
        r = np.sqrt(sd**2 - lam**2)
        lo = np.where(x <= o.lo, -np.inf, (x - o.step / 2 - m) / r)
        hi = np.where(x >= o.hi, np.inf, (x + o.step / 2 - m) / r)
        p = special.ndtr(hi) - special.ndtr(lo)
        out += np.where(np.isnan(x), 0.0, _log(np.maximum(p, 0.0)))
    p0, median, sd, lam = spec.LESIONS[c]
    les = obs["t2_lesion_volume_ml"].to_numpy(dtype=float)[:, None]
    with np.errstate(divide="ignore"):
        dens = stats.norm.logpdf(
            np.log(les), np.log(median) + lam * nodes[None, :], np.sqrt(sd**2 - lam**2)
        )
    lesion = np.where(les == 0, _log(p0), _log(1 - p0) + dens)
    out += np.where(np.isnan(les), 0.0, lesion)
    lam = spec.CMAP_LOADING[u]
    r = np.sqrt(spec.CMAP_SD[u] ** 2 - lam**2)
    for nerve, (_, _, normal, _) in spec.MOTOR_NERVES.items():
        mu = np.log(normal) + spec.cmap_shift(u, nerve)
        for side in SIDES:
            amp = obs[f"ncs_{nerve}_{side}_amp"].to_numpy(dtype=float)[:, None]
            ll = stats.norm.logpdf(np.log(amp), mu + lam * nodes[None, :], r)
            out += np.where(np.isnan(amp), 0.0, ll)
    return out
