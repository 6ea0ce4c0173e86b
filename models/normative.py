"""Normative z-scores: each biomarker against training-fold controls of the same age
and sex.

For every chosen feature a linear model ``value ~ 1 + age + male`` is fitted on the
reference class (healthy controls) of the training rows, and each value becomes
``(value - predicted) / residual SD``: how many control SDs a subject lies from
controls like them. Concentrations are log-transformed first (their spread grows
with the level). Being a pipeline step, the norms are refit on each training fold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from features.dictionary import IMAGING_PREFIXES
from models.estimators import (
    FoldFallbackWarning,
    checked_covariates,
    covariate_design,
    covariate_means,
    prefixed_columns,
    reference_rows,
    replace_columns,
)

NORMATIVE_PREFIXES = (*IMAGING_PREFIXES, "nfl_pg_ml", "chi3l1_ng_ml")
CONCENTRATIONS = ("nfl_pg_ml", "chi3l1_ng_ml")


class NormativeZ(TransformerMixin, BaseEstimator):
    """Replace features by z-scores against age- and sex-matched controls.

    Parameters
    ----------
    columns : tuple of str
        Prefixes of the columns to z-score (0/1 flags under them are left alone);
        other columns pass through untouched.
    log_columns : tuple of str
        Columns transformed with ``log1p`` (negative values read as 0) before
        modelling.
    covariates : tuple of str
        Covariates of the normative model; each must be an input column (fit
        raises otherwise). Missing values are filled with the training mean.
    reference : str or None
        Label of the normative rows; ``None`` uses every training row.
    min_reference : int
        A feature with fewer reference rows holding a value falls back to the mean
        and SD of all its training values, unadjusted (with a warning).
    keep_raw : bool
        Keep the raw columns and append the z-scores as ``z_<name>``.

    Attributes
    ----------
    features_ : ndarray of str
        The z-scored columns.
    coef_ : ndarray of shape (n_features, 1 + n_covariates)
        Normative model per feature: intercept, then ``covariates_`` (centred on
        ``covariate_means_``).
    scale_ : ndarray of shape (n_features,)
        Residual SD of each feature among the reference rows.
    n_reference_ : ndarray of shape (n_features,)
        Reference rows with a value, per feature.
    fallback_ : list of str
        Features scored against all training rows instead.

    Examples
    --------
    >>> X = pd.DataFrame({"age": [40.0, 50, 60, 70, 80, 60],
    ...                   "nfl_pg_ml": [9.0, 11, 14, 17, 21, 80]})
    >>> y = ["HC"] * 5 + ["ALS"]
    >>> z = NormativeZ(covariates=("age",), min_reference=3).fit(X, y).transform(X)
    >>> bool(z["nfl_pg_ml"].iloc[-1] > 10)
    True
    """

    def __init__(
        self,
        columns: tuple[str, ...] = NORMATIVE_PREFIXES,
        log_columns: tuple[str, ...] = CONCENTRATIONS,
        covariates: tuple[str, ...] = ("age", "male"),
        reference: str | None = "HC",
        min_reference: int = 5,
        keep_raw: bool = False,
    ):
        self.columns = columns
        self.log_columns = log_columns
        self.covariates = covariates
        self.reference = reference
        self.min_reference = min_reference
        self.keep_raw = keep_raw

    def fit(self, X: pd.DataFrame, y=None):
        _check_frame(X)
        ref = reference_rows(y, self.reference, len(X), "NormativeZ")
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(X.columns)
        self.covariates_ = checked_covariates(X, self.covariates, "NormativeZ")
        features = prefixed_columns(X, self.columns, exclude=tuple(self.covariates_))
        self.features_ = np.asarray(features, dtype=object)
        self.covariate_means_ = covariate_means(X, self.covariates_)
        D = self._design(X)
        V = self._values(X)
        coef = np.zeros((len(features), D.shape[1]))
        scale = np.ones(len(features))
        n_ref = np.zeros(len(features), dtype=int)
        fallback = []
        for g, name in enumerate(features):
            rows = ref & ~np.isnan(V[:, g])
            n_ref[g] = rows.sum()
            if n_ref[g] >= max(self.min_reference, D.shape[1] + 1):
                coef[g], *_ = np.linalg.lstsq(D[rows], V[rows, g], rcond=None)
                resid = V[rows, g] - D[rows] @ coef[g]
                sd = np.sqrt(resid @ resid / (n_ref[g] - D.shape[1]))
            else:
                fallback.append(name)
                values = V[~np.isnan(V[:, g]), g]
                coef[g, 0] = values.mean() if values.size else np.nan
                sd = values.std(ddof=1) if values.size > 1 else np.nan
            scale[g] = sd if sd > 0 else 1.0  # a constant feature: differences only
        # plain arrays (no pandas objects): MLflow stores the model with skops
        self.coef_, self.scale_, self.n_reference_ = coef, scale, n_ref
        self.fallback_ = fallback
        if fallback:
            warnings.warn(
                f"NormativeZ: {len(fallback)} feature(s) have fewer than "
                f"{self.min_reference} {self.reference!r} training rows with a value "
                f"({', '.join(fallback[:5])}{' ...' if len(fallback) > 5 else ''}); "
                "they are scored against the mean and SD of all training rows, "
                "unadjusted for age and sex. Add control data or lower min_reference.",
                FoldFallbackWarning,
                stacklevel=2,
            )
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        _check_frame(X)
        missing = [c for c in self.features_ if c not in X.columns]
        if missing:
            raise ValueError(
                f"NormativeZ.transform: input lacks {len(missing)} column(s) seen in "
                f"fit: {missing[:10]}. Pass the same feature columns as in fit."
            )
        D = self._design(X)
        z = (self._values(X) - D @ self.coef_.T) / self.scale_
        out = X.copy()
        if self.keep_raw:
            z_frame = pd.DataFrame(z, index=X.index, columns=self._z_names())
            return pd.concat([out, z_frame], axis=1)
        return replace_columns(out, list(self.features_), z)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        names = list(self.feature_names_in_)
        return np.asarray(
            names + (self._z_names() if self.keep_raw else []), dtype=object
        )

    def _values(self, X: pd.DataFrame) -> np.ndarray:
        V = X[list(self.features_)].to_numpy(float, copy=True)
        for g, name in enumerate(self.features_):
            if name in self.log_columns:
                V[:, g] = np.log1p(np.clip(V[:, g], 0.0, None))
        return V

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        C = covariate_design(X, self.covariates_, self.covariate_means_)
        return np.hstack([np.ones((len(X), 1)), C])

    def _z_names(self) -> list[str]:
        return [f"z_{c}" for c in self.features_]


def _check_frame(X) -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"NormativeZ expects a pandas DataFrame with named feature columns, got "
            f"{type(X).__name__}; put it after ColumnChecker in the pipeline."
        )
