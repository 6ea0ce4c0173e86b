"""Out-of-distribution score: how far a subject lies from the nearest training class.

A classifier always answers with one of the classes it knows; a patient with
chronic inflammatory demyelinating polyneuropathy (CIDP), or a scan from a broken
pipeline, still gets probabilities that sum to one. This detector says when the
input is unlike every training class, so a prediction can be set aside.

Each class is modelled as a Gaussian on globally standardised features (pairwise-
complete covariance, shrunk towards its diagonal). A subject's squared Mahalanobis
distance to class ``c`` is taken over the features it has (the marginal of a
Gaussian is a Gaussian), and turned into an approximately standard-normal score
with the Wilson-Hilferty transform of a chi-square with as many degrees of freedom
as observed features, so subjects with different modalities are comparable. The
score is the smallest over classes (distance to the nearest class); the flag
threshold is a quantile of *cross-fitted* training scores (each training subject
scored by moments fitted without it), so about ``1 - quantile`` of in-distribution
subjects are flagged.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from models.estimators import SITE

_VARIANCE_FLOOR = 0.05  # in units of the global variance: no class is a point mass
_MAX_PATTERNS = 512  # cached precision matrices (missingness patterns)


class NearestClassDistance(BaseEstimator):
    """Distance of each subject to the nearest training class (higher: more unusual).

    Parameters
    ----------
    log_columns : tuple of str
        Right-skewed columns read as ``log1p`` (negative values as 0).
    exclude_prefixes : tuple of str
        Columns left out: by default the ``has_`` availability flags (which tests
        were done is not biology; a cohort missing a modality is not unusual).
    min_distinct : int
        Columns with fewer distinct training values (flags, ratings, counts) are
        left out: a Gaussian distance on them measures rarity, not strangeness.
    shrinkage : float or None
        Least weight of each class covariance's diagonal (Ledoit-Wolf's estimate
        when larger): with fewer subjects per class than features the full
        covariance overfits and in-distribution distances grow heavy tails.
    quantile : float
        Flag threshold: this quantile of the cross-fitted training scores.
    cv : int
        Folds of the cross-fitting that sets the threshold.
    random_state : int
        Seed of the cross-fitting folds.

    Attributes
    ----------
    features_ : ndarray of str
        The columns used.
    threshold_ : float
        Scores above it are flagged by :meth:`is_outlier`.
    training_flag_rate_ : float
        Fraction of cross-fitted training scores above ``threshold_``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    >>> y = np.repeat(["x", "y"], 100)
    >>> det = NearestClassDistance().fit(X, y)
    >>> far = pd.DataFrame({"a": [25.0], "b": [0.0], "c": [np.nan]})
    >>> bool(det.is_outlier(far)[0])
    True
    """

    def __init__(
        self,
        log_columns: tuple[str, ...] = (),
        exclude_prefixes: tuple[str, ...] = ("has_",),
        min_distinct: int = 6,
        shrinkage: float | None = 0.5,
        quantile: float = 0.99,
        cv: int = 5,
        random_state: int = 0,
    ):
        self.log_columns = log_columns
        self.exclude_prefixes = exclude_prefixes
        self.min_distinct = min_distinct
        self.shrinkage = shrinkage
        self.quantile = quantile
        self.cv = cv
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y):
        if not 0.5 <= self.quantile < 1:
            raise ValueError(
                f"quantile = {self.quantile}; it must lie in [0.5, 1), e.g. 0.99 to "
                "flag about 1 % of in-distribution subjects."
            )
        y = np.asarray(y).astype(str)
        if len(y) != len(X):
            raise ValueError(
                f"NearestClassDistance: y has {len(y)} labels for {len(X)} rows."
            )
        cols = [
            c
            for c in X.columns
            if c != SITE
            and not str(c).startswith(tuple(self.exclude_prefixes))
            and pd.api.types.is_numeric_dtype(X[c])
            and X[c].nunique() >= self.min_distinct
        ]
        V = self._values(X, cols)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
            center, scale = np.nanmean(V, axis=0), np.nanstd(V, axis=0)
        keep = (np.sum(~np.isnan(V), axis=0) >= 2) & (scale > 0)
        if not len(cols) or not keep.any():
            raise ValueError(
                "NearestClassDistance: no column varies in the training rows; "
                "nothing to measure distances on."
            )
        self.features_ = np.asarray(cols, dtype=object)[keep]
        self.center_, self.scale_ = center[keep], scale[keep]
        Z = (V[:, keep] - self.center_) / self.scale_
        self.classes_ = np.unique(y)
        self.means_, self.covariance_ = _moments(Z, y, self.classes_, self.shrinkage)
        n_splits = int(min(self.cv, np.unique(y, return_counts=True)[1].min()))
        if n_splits >= 2:
            folds = StratifiedKFold(
                n_splits, shuffle=True, random_state=self.random_state
            )
            parts = [
                (test, *_moments(Z[train], y[train], self.classes_, self.shrinkage))
                for train, test in folds.split(Z, y)
            ]
        else:  # too few subjects per class to cross-fit: in-sample scores
            parts = [(np.arange(len(y)), self.means_, self.covariance_)]
        # each statistic gets half the flag budget; the score is in threshold units
        q = 1 - (1 - self.quantile) / 2
        # Each feature's own spread of cross-fitted deviations from the nearest
        # class: a bimodal column (a conduction-block ratio) is not allowed to set
        # the single-value threshold of every other column.
        deviation = np.full(Z.shape, np.nan)
        for test, means, covs in parts:
            deviation[test] = _deviations(Z[test], means, covs)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
            spread = np.nanquantile(deviation, q, axis=0)
        self.feature_scale_ = np.maximum(np.nan_to_num(spread, nan=1.0), 1.0)
        oof = np.full((len(y), 2), np.nan)
        for test, means, covs in parts:
            oof[test] = _nearest(Z[test], means, covs, {}, self.feature_scale_)
        finite = oof[np.isfinite(oof).all(axis=1)]
        self.thresholds_ = np.quantile(finite, q, axis=0)
        self.thresholds_ = np.maximum(self.thresholds_, 1e-6)
        self.threshold_ = 1.0
        self.training_flag_rate_ = float(
            np.mean((finite / self.thresholds_).max(axis=1) > self.threshold_)
        )
        self.n_features_in_ = len(X.columns)
        return self

    def _values(self, X: pd.DataFrame, cols) -> np.ndarray:
        V = X[list(cols)].to_numpy(dtype=float, na_value=np.nan, copy=True)
        for j, c in enumerate(cols):
            if c in self.log_columns:
                V[:, j] = np.log1p(np.clip(V[:, j], 0, None))
        return V

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Score of each row: ~N(0, 1) inside a class, large far from every class.

        NaN for a row with none of the detector's features.
        """
        check_is_fitted(self)
        missing = [c for c in self.features_ if c not in X.columns]
        if missing:
            raise ValueError(
                f"input lacks {len(missing)} column(s) the detector was fitted on: "
                f"{missing[:10]}. Add them as empty columns if not measured."
            )
        Z = (self._values(X, self.features_) - self.center_) / self.scale_
        cache = self.__dict__.setdefault("_precisions", {})
        if len(cache) > _MAX_PATTERNS:
            cache.clear()
        # detectors fitted before per-feature scales: every feature in SD units
        scale = getattr(self, "feature_scale_", np.ones(len(self.features_)))
        stats = _nearest(Z, self.means_, self.covariance_, cache, scale)
        return (stats / self.thresholds_).max(axis=1)

    def is_outlier(self, X: pd.DataFrame) -> np.ndarray:
        """Boolean flag: score above ``threshold_`` (False for unscorable rows)."""
        return np.nan_to_num(self.score_samples(X), nan=-np.inf) > self.threshold_

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_precisions", None)  # a per-process cache, never persisted
        return state


def _moments(
    Z: np.ndarray, y: np.ndarray, classes, shrinkage: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Class means and the pooled (tied) within-class covariance of standardised Z.

    Pairwise-complete covariance of the residuals from each subject's class mean,
    shrunk towards its diagonal and made positive definite.
    """
    d = Z.shape[1]
    means = np.zeros((len(classes), d))
    resid = np.full_like(Z, np.nan)
    for k, c in enumerate(classes):
        rows = y == c
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means[k] = np.nan_to_num(np.nanmean(Z[rows], axis=0), nan=0.0)
        resid[rows] = Z[rows] - means[k]
    cov = np.nan_to_num(pd.DataFrame(resid).cov(min_periods=3).to_numpy(), nan=0.0)
    var = np.maximum(np.diag(cov), _VARIANCE_FLOOR)
    np.fill_diagonal(cov, var)
    filled = np.nan_to_num(resid) / np.sqrt(var)
    lam = ledoit_wolf_shrinkage(filled) if len(Z) > 1 else 1.0
    if shrinkage is not None:
        lam = max(lam, shrinkage)
    cov = (1 - lam) * cov + lam * np.diag(var)
    w, v = np.linalg.eigh(cov)  # pairwise-complete covariances may be indefinite
    cov = (v * np.maximum(w, _VARIANCE_FLOOR * 0.1)) @ v.T
    return means, cov


def _deviations(Z: np.ndarray, means: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """|z| of each value from the nearest class mean on that feature, (n, p)."""
    sd = np.sqrt(np.diag(cov))
    return np.min(np.abs(Z[:, None, :] - means[None, :, :]) / sd, axis=1)


def _nearest(
    Z: np.ndarray,
    means: np.ndarray,
    cov: np.ndarray,
    cache: dict,
    scale: np.ndarray | None = None,
):
    """Two distances to the nearest class, per row (NaN without features):
    the Wilson-Hilferty z of the Mahalanobis distance (an unusual combination),
    and the largest distance of one value from the nearest class mean on its
    feature, in units of that feature's ``scale`` (its cross-fitted spread): one
    value far out, a unit mix-up, a conduction velocity no training class has."""
    scale = np.ones(Z.shape[1]) if scale is None else np.asarray(scale)
    observed = ~np.isnan(Z)
    out = np.full((len(Z), 2), np.nan)
    sd = np.sqrt(np.diag(cov))
    packed = np.ascontiguousarray(np.packbits(observed, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    patterns, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(patterns) + 1))
    for p in range(len(patterns)):
        rows = order[bounds[p] : bounds[p + 1]]
        mask = observed[rows[0]]
        k = int(mask.sum())
        if k == 0:
            continue
        key = patterns[p].tobytes()
        M = means[:, mask]
        if key not in cache:
            precision = np.linalg.inv(cov[np.ix_(mask, mask)])
            cache[key] = precision, ((M @ precision) * M).sum(axis=1)
        precision, mpm = cache[key]
        X = Z[np.ix_(rows, np.flatnonzero(mask))]
        XP = X @ precision
        # (x - m)' P (x - m) for every class at once
        d2 = ((XP * X).sum(axis=1)[:, None] - 2 * XP @ M.T + mpm[None, :]).min(axis=1)
        # each value against the nearest class on its own feature, in units of
        # that feature's spread: a value no training class has
        # (a running minimum over the classes: no (rows, classes, features) array)
        far = np.abs(X - M[0])
        for m in M[1:]:
            np.minimum(far, np.abs(X - m), out=far)
        extreme = (far / (sd[mask] * scale[mask])).max(axis=1)
        # Wilson-Hilferty: (d2/k)^(1/3) is ~normal with this mean and variance
        v = 2.0 / (9.0 * k)
        out[rows, 0] = (np.cbrt(np.maximum(d2, 0) / k) - (1 - v)) / np.sqrt(v)
        out[rows, 1] = extreme
    return out
