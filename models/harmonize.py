"""ComBat site harmonisation of imaging features, fitted on training-fold controls.

ComBat (Johnson et al. 2007, Biostatistics 8:118; Fortin et al. 2018, NeuroImage
167:104 for cortical thickness) models each feature ``g`` of subject ``j`` at site
``i`` as ``y = alpha_g + X beta_g + gamma_ig + delta_ig * eps``: a site shifts the
mean (``gamma``) and scales the spread (``delta``) after the covariates to preserve
(age, sex). Site effects are estimated per feature and shrunk towards their site's
average across features (empirical Bayes), then removed.

Here the site effects are estimated from the reference class (healthy controls) of
the training rows only, so the disease mix of a site never looks like a scanner
effect, and ``transform`` needs no labels.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from features.dictionary import IMAGING_PREFIXES
from models.estimators import (
    SITE,
    FoldFallbackWarning,
    checked_covariates,
    covariate_design,
    covariate_means,
    prefixed_columns,
    reference_rows,
    replace_columns,
)

UNSEEN = "site_unseen"


class ComBat(TransformerMixin, BaseEstimator):
    """Remove additive and multiplicative site effects from imaging features.

    Parameters
    ----------
    columns : tuple of str
        Prefixes of the columns to harmonise; other columns pass through untouched
        (as do 0/1 flags under those prefixes).
    covariates : tuple of str
        Columns whose effects are preserved; each must be an input column (fit
        raises otherwise). Missing values are filled with the training mean.
    reference : str or None
        Label of the rows the site effects are estimated from; ``None`` uses all rows.
    min_reference : int
        A site with fewer reference rows holding a value of a feature estimates that
        feature's effects from all its rows instead (listed in ``fallback_sites_``).
    eb : bool
        Empirical-Bayes shrinkage of the site effects across features.

    Attributes
    ----------
    features_ : ndarray of str
        The harmonised columns.
    sites_ : ndarray of str
        Sites seen in ``fit``; rows of other sites (or none) pass through unharmonised
        and are flagged in the output column ``site_unseen``.
    gamma_, delta_ : ndarray of shape (n_sites, n_features)
        Standardised additive and multiplicative site effects, rows in ``sites_``
        and columns in ``features_`` order (NaN: no training values of that feature
        at that site, left unharmonised).
    grand_mean_, var_pooled_ : ndarray
        Per-feature mean (at the mean covariates) and pooled residual variance.
    beta_ : ndarray of shape (n_features, n_covariates)
        Effects of ``covariates_`` (centred on ``covariate_means_``), preserved.
    fallback_sites_ : dict of str to list of str
        Sites, and their features, estimated from all rows (too few reference rows).

    Examples
    --------
    >>> X = pd.DataFrame({"site": ["a", "a", "b", "b"], "fs_x": [1.0, 2.0, 11.0, 12.0]})
    >>> ComBat(reference=None, eb=False, covariates=()).fit_transform(X)
           fs_x  site_unseen
    0  6.146447          0.0
    1  6.853553          0.0
    2  6.146447          0.0
    3  6.853553          0.0
    """

    def __init__(
        self,
        columns: tuple[str, ...] = IMAGING_PREFIXES,
        covariates: tuple[str, ...] = ("age", "male"),
        reference: str | None = "HC",
        min_reference: int = 3,
        eb: bool = True,
    ):
        self.columns = columns
        self.covariates = covariates
        self.reference = reference
        self.min_reference = min_reference
        self.eb = eb

    def fit(self, X: pd.DataFrame, y=None):
        site = _sites(X, "ComBat.fit")
        ref = reference_rows(y, self.reference, len(X), "ComBat")
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(X.columns)
        self.covariates_ = checked_covariates(X, self.covariates, "ComBat")
        features = prefixed_columns(X, self.columns, exclude=tuple(self.covariates_))
        self.features_ = np.asarray(features, dtype=object)
        self.sites_ = np.asarray(
            sorted({s for s in site if s is not None}), dtype=object
        )
        self.covariate_means_ = covariate_means(X, self.covariates_)
        C = covariate_design(X, self.covariates_, self.covariate_means_)
        Y = X[features].to_numpy(float, copy=True)
        n_s, n_f = len(self.sites_), len(features)
        self.grand_mean_ = np.full(n_f, np.nan)
        self.var_pooled_ = np.full(n_f, np.nan)
        beta = np.zeros((n_f, C.shape[1]))
        S0, S1, S2 = (np.zeros((n_s, n_f)) for _ in range(3))  # count, sum z, sum z^2
        fallback: dict[str, list[str]] = {}
        at = {s: site == s for s in self.sites_}
        for g, name in enumerate(features):
            use = np.zeros(len(X), dtype=bool)
            for s in self.sites_:
                obs = at[s] & ~np.isnan(Y[:, g])
                if (obs & ref).sum() >= self.min_reference:
                    use |= obs & ref
                elif obs.any():
                    use |= obs
                    if self.reference is not None:
                        fallback.setdefault(str(s), []).append(name)
            fit = _fit_feature(Y[use, g], site[use], self.sites_, C[use])
            if fit is None:
                continue
            self.grand_mean_[g], beta[g], self.var_pooled_[g] = fit
            z = (Y[use, g] - self.grand_mean_[g] - C[use] @ beta[g]) / np.sqrt(
                self.var_pooled_[g]
            )
            for i, s in enumerate(self.sites_):
                zs = z[site[use] == s]
                S0[i, g], S1[i, g], S2[i, g] = zs.size, zs.sum(), (zs**2).sum()
        gamma, delta = _site_effects(S0, S1, S2, self.eb)
        # plain arrays (no pandas objects): MLflow stores the model with skops
        self.gamma_, self.delta_, self.beta_ = gamma, delta, beta
        self.fallback_sites_ = fallback
        if fallback:
            warnings.warn(
                f"ComBat: {_describe_fallback(fallback, self.reference, ref.sum())} "
                f"had fewer than {self.min_reference} {self.reference!r} rows with a "
                "value; their site effects were estimated from all their rows, so "
                "their disease mix can bias them.",
                FoldFallbackWarning,
                stacklevel=2,
            )
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        site = _sites(X, "ComBat.transform")
        features = list(self.features_)
        missing = [c for c in features if c not in X.columns]
        if missing:
            raise ValueError(
                f"ComBat.transform: input lacks {len(missing)} harmonised column(s) "
                f"seen in fit: {missing[:10]}. Pass the same feature columns as in fit."
            )
        C = covariate_design(X, self.covariates_, self.covariate_means_)
        Y = X[features].to_numpy(float, copy=True)
        out = X.drop(columns=SITE)  # a new frame: X is left as it was
        seen = np.isin(site, self.sites_)
        partial = {}
        sd = np.sqrt(self.var_pooled_)
        for i, s in enumerate(self.sites_):
            rows = np.flatnonzero(site == s)
            if not rows.size:
                continue
            gamma, delta = self.gamma_[i], self.delta_[i]
            ok = np.isfinite(gamma)
            values = Y[rows]
            fitted = self.grand_mean_ + C[rows] @ self.beta_.T
            adjusted = fitted + (values - fitted - sd * gamma) / np.sqrt(delta)
            Y[rows] = np.where(ok, adjusted, values)
            lost = ~ok & np.isfinite(self.gamma_).any(axis=0)
            lost &= ~np.isnan(values).all(axis=0)
            if lost.any():
                partial[str(s)] = list(np.asarray(features)[lost])
        out = replace_columns(out, features, Y)
        out[UNSEEN] = (~seen).astype(float)
        if (~seen).any():
            names = sorted({"<missing>" if s is None else str(s) for s in site[~seen]})
            warnings.warn(
                f"ComBat: {int((~seen).sum())} row(s) from site(s) not seen in "
                f"training ({', '.join(names)}) were passed through unharmonised and "
                f"flagged in column {UNSEEN!r}; their imaging features keep their "
                "scanner offsets. Retrain with data from those sites to harmonise "
                "them.",
                FoldFallbackWarning,
                stacklevel=2,
            )
        for s, cols in partial.items():
            warnings.warn(
                f"ComBat: site {s} had no training values of {len(cols)} feature(s) "
                f"({', '.join(cols[:5])}{' ...' if len(cols) > 5 else ''}); those "
                "values were passed through unharmonised.",
                FoldFallbackWarning,
                stacklevel=2,
            )
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        kept = [c for c in self.feature_names_in_ if c != SITE]
        return np.asarray([*kept, UNSEEN], dtype=object)


def _sites(X, where: str) -> np.ndarray:
    """Site labels of ``X`` as strings, ``None`` where missing."""
    if not isinstance(X, pd.DataFrame) or SITE not in X.columns:
        found = list(X.columns)[:10] if isinstance(X, pd.DataFrame) else type(X)
        raise ValueError(
            f"{where}: ComBat needs the acquisition site in a column named {SITE!r} "
            f"(found {found}). Add the site column to the features (it may be empty "
            "for unknown sites), or build the pipeline without it (no harmonisation)."
        )
    site = X[SITE].astype("string")
    return np.where(site.isna().to_numpy(), None, site.to_numpy(dtype=object))


def _fit_feature(y, site, sites, C):
    """OLS on site indicators and covariates: (grand mean, beta, pooled variance)."""
    present = [s for s in sites if (site == s).any()]
    if not present:
        return None
    onehot = (site[:, None] == np.asarray(present)[None, :]).astype(float)
    coef, *_ = np.linalg.lstsq(np.hstack([onehot, C]), y, rcond=None)
    k = len(present)
    grand = onehot.sum(axis=0) @ coef[:k] / len(y)
    resid = y - np.hstack([onehot, C]) @ coef
    var = float(np.mean(resid**2))
    if not var > 1e-12 * max(1.0, float(np.mean(y**2))):
        return None  # no residual spread: nothing to standardise
    return grand, coef[k:], var


def _site_effects(n, s1, s2, eb: bool) -> tuple[np.ndarray, np.ndarray]:
    """Location/scale site effects from per-(site, feature) sums of standardised z.

    A site with a single value of a feature is location-adjusted only (delta 1).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma_hat = np.where(n > 0, s1 / n, np.nan)
        delta_hat = np.where(n > 1, (s2 - n * gamma_hat**2) / (n - 1), np.nan)
    delta_hat = np.where(delta_hat > 0, delta_hat, np.where(n > 1, np.nan, 1.0))
    delta_hat = np.where(n > 0, delta_hat, np.nan)
    gamma = gamma_hat.copy()
    delta = np.where(n > 0, np.where(np.isfinite(delta_hat), delta_hat, 1.0), np.nan)
    if not eb:
        return gamma, delta
    for i in range(n.shape[0]):
        has = n[i] > 0
        scaled = has & (n[i] > 1) & np.isfinite(delta_hat[i])
        g_bar = gamma_hat[i, has].mean() if has.any() else 0.0
        tau2 = gamma_hat[i, has].var(ddof=1) if has.sum() > 1 else np.nan
        m = delta_hat[i, scaled].mean() if scaled.any() else np.nan
        v = delta_hat[i, scaled].var(ddof=1) if scaled.sum() > 1 else np.nan
        shrink_delta = np.isfinite(v) and v > 0
        if shrink_delta:
            a, b = (2 * v + m**2) / v, (m * v + m**3) / v
        g, d = gamma[i, has], delta[i, has]
        ni, sc = n[i, has], scaled[has]
        for _ in range(1000):
            g_new = g
            if np.isfinite(tau2):
                g_new = (ni * tau2 * gamma_hat[i, has] + d * g_bar) / (ni * tau2 + d)
            d_new = d
            if shrink_delta:
                ss = s2[i, has] - 2 * g_new * s1[i, has] + ni * g_new**2
                d_new = np.where(sc, (b + 0.5 * ss) / (ni / 2 + a - 1), d)
            change = max(
                np.max(np.abs(g_new - g) / np.maximum(np.abs(g), 1e-12), initial=0.0),
                np.max(np.abs(d_new - d) / d, initial=0.0),
            )
            g, d = g_new, d_new
            if change < 1e-4:
                break
        gamma[i, has], delta[i, has] = g, d
    return gamma, delta


def _describe_fallback(fallback: dict[str, list[str]], reference, n_ref: int) -> str:
    parts = [f"{s} ({len(cols)} feature(s))" for s, cols in sorted(fallback.items())]
    where = "site(s) " + ", ".join(parts)
    if n_ref == 0:
        where += f" [no training row is labelled {reference!r}]"
    return where
