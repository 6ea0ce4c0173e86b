"""Small scikit-learn estimators used inside the diagnosis pipelines.

Each one follows the scikit-learn contract (``__init__`` stores parameters,
``fit`` validates and learns attributes ending in ``_``), so cross-validation refits
everything learned from data inside each fold.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted

#: The acquisition-site column: a string pass-through read by the harmoniser.
SITE = "site"


class FoldFallbackWarning(UserWarning):
    """A fitted step could not estimate what it promises from the rows it was given
    (too few controls for normative scores or a site's ComBat effects, a site
    unseen in fit) and used a weaker estimate, which the message names. Small
    cross-validation folds raise it often; training records each one in the run
    (see :func:`recording_fallbacks`) instead of printing it per fold."""


@contextmanager
def recording_fallbacks() -> Iterator[list[str]]:
    """Collect the :class:`FoldFallbackWarning` messages raised inside the block
    (every one, not only the first per place); other warnings are shown as usual.

    Examples
    --------
    >>> with recording_fallbacks() as seen:
    ...     warnings.warn("ComBat: site B had 1 'HC' row", FoldFallbackWarning)
    >>> seen
    ["ComBat: site B had 1 'HC' row"]
    """
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FoldFallbackWarning)
        yield seen
    for w in caught:
        if issubclass(w.category, FoldFallbackWarning):
            seen.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class ColumnChecker(TransformerMixin, BaseEstimator):
    """Check that the input frame has the feature columns seen in ``fit``.

    The first step of every pipeline: at ``transform`` a missing fitted column
    raises, naming it and the input's columns the model does not use (a renamed
    column shows up in both lists), instead of silently misaligning; columns the
    model does not use are otherwise ignored (a features table also holds
    identifiers). It returns the fitted columns in the fitted order as floats.
    The acquisition-site column ``site``, when among the columns, is the one
    exception: it passes through as strings (missing stays ``<NA>``) for the site
    harmoniser, which drops it.

    Parameters
    ----------
    columns : list of str or None
        The feature columns to keep; ``None`` keeps every column seen in ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> checker = ColumnChecker().fit(pd.DataFrame({"a": [1.0]}))
    >>> checker.transform(pd.DataFrame({"a": [2]}))
         a
    0  2.0
    >>> checker.transform(pd.DataFrame({"A": [2]}))
    Traceback (most recent call last):
    ...
    ValueError: input is missing 1 feature column(s) the model was trained with: \
['a']. The input's columns the model does not use: ['A'] (a renamed column?). Add \
them (an empty column is fine: values may be missing) or retrain on this feature set.
    """

    def __init__(self, columns: list[str] | None = None):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"expected a pandas DataFrame with named feature columns, got "
                f"{type(X).__name__}; build it with features.extract or pandas."
            )
        cols = list(X.columns) if self.columns is None else list(self.columns)
        self._check(X, cols)
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        self.n_features_in_ = len(cols)
        return self

    def _check(self, X: pd.DataFrame, cols: list[str]) -> None:
        dtypes = dict(zip(X.columns, X.dtypes, strict=True))  # one lookup
        missing = [c for c in cols if c not in dtypes]
        if missing:
            unused = [str(c) for c in X.columns if c not in set(cols)]
            also = (
                f" The input's columns the model does not use: {unused[:10]}"
                f"{' ...' if len(unused) > 10 else ''} (a renamed column?)."
                if unused
                else ""
            )
            raise ValueError(
                f"input is missing {len(missing)} feature column(s) the model was "
                f"trained with: {missing[:10]}{' ...' if len(missing) > 10 else ''}."
                f"{also} Add them (an empty column is fine: values may be missing) "
                "or retrain on this feature set."
            )
        bad = [
            c
            for c in cols
            if c != SITE
            and not pd.api.types.is_numeric_dtype(dtypes[c])
            and not X[c].isna().all()
        ]
        if bad:
            example = X[bad[0]].dropna().iloc[0]
            raise ValueError(
                f"feature column(s) {bad[:10]} must be numeric; e.g. {bad[0]} holds "
                f"{example!r}. Convert the values to numbers or leave cells empty."
            )

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        cols = list(self.feature_names_in_)
        self._check(X, cols)
        numeric = [c for c in cols if c != SITE]
        # one float block (a per-column astype would leave a block per column)
        out = pd.DataFrame(
            X[numeric].to_numpy(dtype=float, na_value=np.nan, copy=True),
            columns=numeric,
            index=X.index,
            copy=False,  # the array is this frame's own
        )
        if SITE in cols:
            out.insert(cols.index(SITE), SITE, X[SITE].astype("string"))
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return self.feature_names_in_.copy()


def replace_columns(X: pd.DataFrame, columns: list[str], values) -> pd.DataFrame:
    """A copy of ``X`` with ``columns`` set to the matching columns of the 2-D
    ``values``, in ``X``'s column order: a few frame operations whatever the
    number of columns (assigning them one by one costs a block split each).

    Examples
    --------
    >>> X = pd.DataFrame({"a": [1.0], "site": ["s"], "b": [2.0]})
    >>> replace_columns(X, ["b", "a"], np.array([[20.0, 10.0]])).to_dict("list")
    {'a': [10.0], 'site': ['s'], 'b': [20.0]}
    """
    if all(dtype == np.float64 for dtype in X.dtypes):  # one float block: numpy
        out = X.to_numpy(dtype=float, copy=True)
        out[:, X.columns.get_indexer(columns)] = values
        return pd.DataFrame(out, columns=X.columns, index=X.index, copy=False)
    new = pd.DataFrame(values, columns=columns, index=X.index)
    rest = X.drop(columns=columns)
    return pd.concat([rest, new], axis=1)[list(X.columns)]


class _NamedColumnsStep(TransformerMixin, BaseEstimator):
    """A stateless step acting on the named ``columns``: ``fit`` only records the
    input's column names."""

    def __init__(self, columns: tuple[str, ...] = ()):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None):
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        return self


class SignedLog(_NamedColumnsStep):
    """Signed ``log1p`` of the named right-skewed columns; stateless."""

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        X = X.copy()
        for c in self.columns:
            if c in X:
                X[c] = np.sign(X[c]) * np.log1p(np.abs(X[c]))
        return X

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_.copy()


class BalancedClassifier(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on integer-encoded labels with balanced sample weights.

    Lets estimators without ``class_weight`` (XGBoost) weight classes inversely to
    their frequency, and keeps string class labels in ``classes_``.

    Parameters
    ----------
    estimator : classifier
        Cloned and fitted on ``LabelEncoder``-encoded ``y``.
    balanced : bool
        Use ``compute_sample_weight("balanced", y)``.
    """

    def __init__(self, estimator=None, balanced: bool = True):
        self.estimator = estimator
        self.balanced = balanced

    def fit(self, X, y):
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        weight = compute_sample_weight("balanced", y) if self.balanced else None
        self.estimator_ = clone(self.estimator).fit(
            X, self.encoder_.transform(y), sample_weight=weight
        )
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", None)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        if isinstance(X, pd.DataFrame) and type(self.estimator_).__module__.startswith(
            "xgboost"
        ):
            # XGBoost predicts in float32 anyway; a row-major float32 array spares it
            # reading the frame column by column (1.5x faster, same probabilities)
            X = X.to_numpy(dtype=np.float32, na_value=np.nan)
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        # XGBoost's float32 probabilities sum to one only within float32 rounding
        # (~1e-7), which float64 consumers (scikit-learn's log_loss checks at
        # ~1.5e-8) see as not probabilities: renormalise in float64
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class FoldCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """``CalibratedClassifierCV`` that copes with classes rarer than ``cv``.

    Calibration is fitted by internal stratified K-fold on the data given to
    ``fit`` (inside a pipeline: the training fold only). When the rarest class has
    fewer than ``cv`` rows, the number of internal folds drops to that count (at
    least 2), where ``CalibratedClassifierCV`` would raise; a class with a single
    row is then missing from one internal fit, which temperature scaling cannot
    average over, so that fit uses ``"sigmoid"`` (``method_``) with a
    :class:`FoldFallbackWarning`. Class weights of the
    wrapped estimator (``class_weight`` or :class:`BalancedClassifier`) apply in
    every internal fit; the calibrators themselves are unweighted, so the
    probabilities match the training prevalence.

    Parameters
    ----------
    estimator : classifier
        Cloned for each internal fold.
    method : {"sigmoid", "isotonic", "temperature"}
        Calibration method of ``CalibratedClassifierCV``.
    cv : int
        Internal folds (fewer when a class has fewer rows).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.arange(20.0).reshape(-1, 1)
    >>> y = np.array(["a"] * 10 + ["b"] * 8 + ["c"] * 2)
    >>> clf = FoldCalibratedClassifier(LogisticRegression()).fit(X, y)
    >>> clf.classes_.tolist(), clf.n_splits_
    (['a', 'b', 'c'], 2)
    """

    def __init__(self, estimator=None, method: str = "sigmoid", cv: int = 3):
        self.estimator = estimator
        self.method = method
        self.cv = cv

    def fit(self, X, y):
        y = np.asarray(y)
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) == 2 and counts.min() < 2:
            rare = str(labels[np.argmin(counts)])
            raise ValueError(
                f"class {rare!r} has {counts.min()} training row; calibrating "
                "probabilities of a two-class task needs at least 2 rows per class. "
                "Add rows of that class or build the pipeline with calibrate=None."
            )
        self.n_splits_ = int(max(2, min(self.cv, counts.min())))
        cv = self.n_splits_
        self.method_ = self.method
        if counts.min() < self.n_splits_:
            # explicit splits skip CalibratedClassifierCV's rows-per-class check; the
            # singleton class is then learned in one internal fold only
            cv = list(StratifiedKFold(self.n_splits_).split(np.zeros(len(y)), y))
            if self.method == "temperature":
                # scikit-learn's temperature scaling cannot average internal fits
                # that saw different classes; one-vs-rest sigmoids can
                self.method_ = "sigmoid"
                rare = ", ".join(str(c) for c in labels[counts < self.n_splits_])
                warnings.warn(
                    f"calibration: class(es) {rare} had a single training row, so "
                    "an internal fold lacks them; calibrated with 'sigmoid' instead "
                    "of 'temperature'.",
                    FoldFallbackWarning,
                    stacklevel=2,
                )
        self.calibrated_ = CalibratedClassifierCV(
            clone(self.estimator), method=self.method_, cv=cv
        ).fit(X, y)
        self.classes_ = self.calibrated_.classes_
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.calibrated_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def prefixed_columns(
    X: pd.DataFrame, prefixes: tuple[str, ...], exclude: tuple[str, ...] = ()
) -> list[str]:
    """Numeric columns of ``X`` starting with one of ``prefixes``, bar 0/1 flags."""
    cols = []
    for c in X.columns:
        if c == SITE or c in exclude or not str(c).startswith(tuple(prefixes)):
            continue
        if not pd.api.types.is_numeric_dtype(X[c]):
            continue
        values = X[c].dropna().to_numpy(float)
        if values.size and np.isin(values, (0.0, 1.0)).all():
            continue  # availability or rejection flags are not measurements
        cols.append(c)
    return cols


def reference_rows(y, reference: str | None, n_rows: int, owner: str) -> np.ndarray:
    """Boolean mask of the rows labelled ``reference`` (every row when ``None``)."""
    if reference is None:
        return np.ones(n_rows, dtype=bool)
    if y is None:
        raise ValueError(
            f"{owner}(reference={reference!r}) needs the diagnosis labels y in fit to "
            "find the reference rows: call fit(X, y) (a Pipeline passes y to every "
            "step), or set reference=None to use every training row."
        )
    y = np.asarray(y)
    if y.shape != (n_rows,):
        raise ValueError(
            f"{owner}: y has shape {y.shape} but X has {n_rows} rows; pass one label "
            "per row of X."
        )
    return np.array([str(v) == reference for v in y])


def checked_covariates(X: pd.DataFrame, covariates, owner: str) -> list[str]:
    """``covariates`` as a list, each checked to be a column of ``X``."""
    missing = [c for c in covariates if c not in X.columns]
    kept = tuple(c for c in covariates if c not in missing)
    if missing:
        raise ValueError(
            f"{owner}: covariate(s) {missing} are not among the input columns "
            f"{list(X.columns)[:6]}...; add them (python -m features extract writes "
            "age and male; map a table's own with --age-column / --sex-column), or "
            f"build {owner} with covariates={kept}."
        )
    return list(covariates)


class DropColumns(_NamedColumnsStep):
    """Drop the named columns (covariates used by earlier steps only); stateless.

    Examples
    --------
    >>> DropColumns(("age",)).fit_transform(pd.DataFrame({"age": [60.0], "x": [1.0]}))
         x
    0  1.0
    """

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        return X.drop(columns=[c for c in self.columns if c in X.columns])

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        kept = [c for c in self.feature_names_in_ if c not in self.columns]
        return np.asarray(kept, dtype=object)


def covariate_means(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Training means of the covariates (0 where a covariate is never observed)."""
    values = X[columns].to_numpy(float) if columns else np.zeros((len(X), 0))
    observed = ~np.isnan(values)
    total = np.where(observed, values, 0.0).sum(axis=0)
    return np.where(observed.any(axis=0), total / np.maximum(observed.sum(0), 1), 0.0)


def covariate_design(
    X: pd.DataFrame, columns: list[str], means: np.ndarray
) -> np.ndarray:
    """Covariates centred on the training means, missing values at the mean."""
    values = X[columns].to_numpy(float) if columns else np.zeros((len(X), 0))
    return np.where(np.isnan(values), 0.0, values - means)
