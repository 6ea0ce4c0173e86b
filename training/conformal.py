"""Class-conditional (Mondrian) split-conformal prediction sets.

Each class ``c`` gets its own threshold on the nonconformity score ``1 - p_c``,
learned from the calibration subjects whose true class is ``c`` (Vovk et al. 2005,
"Algorithmic Learning in a Random World", ch. 4.5). A new subject's set holds every
class whose score is within that class's threshold, so each class, however rare, is
covered with probability at least ``1 - alpha`` when calibration and test subjects are
exchangeable. A set may hold several classes (``{ALS, MMN}``: the model cannot tell
them apart at this confidence) or none (the subject resembles none of the known
classes).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.decision import format_set, in_set, nonconformity
from training.evaluation import check_proba


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha}; it must lie in (0, 1), e.g. 0.1.")


def as_strings(sets: Sequence[tuple]) -> list[str]:
    """Format prediction sets as ``{ALS, MMN}`` (``{}`` for an empty set).

    Examples
    --------
    >>> as_strings([("ALS", "MMN"), ()])
    ['{ALS, MMN}', '{}']
    """
    return [format_set(s) for s in sets]


@dataclass(frozen=True)
class ConformalSets:
    """Fitted class-conditional conformal thresholds; build with :func:`fit_conformal`.

    Attributes
    ----------
    classes : tuple
        Column order of the probabilities.
    alpha : float
        Target miscoverage per class.
    thresholds : dict
        Class -> largest nonconformity score ``1 - p_c`` still included.
    n_calibration : dict
        Class -> number of calibration subjects of that class.
    notes : tuple of str
        Classes whose threshold is 1.0 (always in the set) for lack of calibration
        subjects, and why.
    """

    classes: tuple
    alpha: float
    thresholds: dict
    n_calibration: dict
    notes: tuple[str, ...] = ()

    def predict_mask(self, proba) -> np.ndarray:
        """Boolean membership matrix, shape (n_subjects, n_classes)."""
        proba, _, _ = check_proba(proba, self.classes)
        return in_set(proba, [self.thresholds[c] for c in self.classes])

    def predict(self, proba) -> list[tuple]:
        """Prediction set of each subject: the classes in ``classes`` order.

        Parameters
        ----------
        proba : array-like of shape (n_subjects, n_classes)

        Returns
        -------
        list of tuple
        """
        names = np.asarray(self.classes, dtype=object)
        return [tuple(names[row].tolist()) for row in self.predict_mask(proba)]

    def as_strings(self, proba) -> list[str]:
        """Prediction sets formatted like ``{ALS, MMN}``."""
        return as_strings(self.predict(proba))


def fit_conformal(
    y_cal, proba_cal, classes: Sequence, alpha: float = 0.1
) -> ConformalSets:
    """Fit class-conditional (Mondrian) split-conformal thresholds.

    For class ``c`` with ``n_c`` calibration subjects and scores
    ``s = 1 - p_c`` among them, the threshold is the ``k``-th smallest score with
    ``k = ceil((n_c + 1)(1 - alpha))``. When ``k > n_c`` (``n_c < 1/alpha - 1``) no
    finite threshold guarantees coverage, so the class is always included
    (threshold 1.0), a note is recorded and a warning issued.

    Parameters
    ----------
    y_cal : array-like of shape (n_subjects,)
        True labels of the calibration subjects (never used to fit the model).
    proba_cal : array-like of shape (n_subjects, n_classes)
        Their predicted probabilities, columns in ``classes`` order.
    classes : sequence
    alpha : float, default=0.1
        Each class is covered with probability at least ``1 - alpha``.

    Returns
    -------
    ConformalSets

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]] * 5)
    >>> cs = fit_conformal(["A", "A", "B", "B"] * 5, p, ["A", "B"], alpha=0.2)
    >>> cs.thresholds
    {'A': 0.4, 'B': 0.30000000000000004}
    >>> cs.as_strings([[0.65, 0.35], [0.5, 0.5]])
    ['{A}', '{}']
    """
    _check_alpha(alpha)
    proba, classes, y = check_proba(proba_cal, classes, y_cal)
    thresholds, counts, notes = {}, {}, []
    for j, c in enumerate(classes):
        scores = np.sort(nonconformity(proba[y == c, j]))
        n_c = len(scores)
        counts[c] = n_c
        k = math.ceil(
            (n_c + 1) * (1 - alpha) - 1e-9
        )  # 1e-9: float noise in the product
        if k > n_c:
            need = math.ceil(1 / alpha - 1 - 1e-9)
            notes.append(
                f"class {c}: {n_c} calibration subjects, fewer than the {need} that "
                f"alpha = {alpha} needs; always included (threshold 1.0)."
            )
            thresholds[c] = 1.0
        else:
            thresholds[c] = float(scores[k - 1])
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return ConformalSets(tuple(classes), float(alpha), thresholds, counts, tuple(notes))


def coverage(y, sets: Sequence[tuple], classes: Sequence) -> pd.DataFrame:
    """Coverage and mean set size per true class, and overall.

    Parameters
    ----------
    y : array-like of shape (n_subjects,)
        True labels.
    sets : sequence of tuple
        Prediction sets, as from :meth:`ConformalSets.predict`.
    classes : sequence

    Returns
    -------
    DataFrame
        Indexed by class, then ``overall``; columns ``n``, ``coverage`` (fraction
        whose set holds the true class; NaN when n = 0), ``mean_set_size`` and
        ``empty`` (fraction with an empty set).

    Examples
    --------
    >>> cov = coverage(["A", "B"], [("A",), ("A",)], ["A", "B"])
    >>> cov["coverage"].tolist()
    [1.0, 0.0, 0.5]
    """
    classes = np.asarray(classes).tolist()
    y = np.asarray(y)
    if len(sets) != len(y):
        raise ValueError(
            f"{len(sets)} prediction sets for {len(y)} labels; pass one set per "
            "subject, in the order of y."
        )
    unknown = sorted(
        (set(y.tolist()) | {c for s in sets for c in s}) - set(classes), key=str
    )
    if unknown:
        raise ValueError(
            f"labels or set members {unknown} are not in classes {classes}."
        )
    hit = np.array([label in s for label, s in zip(y.tolist(), sets, strict=True)])
    size = np.array([len(s) for s in sets], dtype=float)
    rows = {}
    for c in [*classes, "overall"]:
        m = np.ones(len(y), bool) if c == "overall" else y == c
        n = int(m.sum())
        rows[c] = {
            "n": n,
            "coverage": float(hit[m].mean()) if n else np.nan,
            "mean_set_size": float(size[m].mean()) if n else np.nan,
            "empty": float((size[m] == 0).mean()) if n else np.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("class")


def cross_conformal_oof(
    y, oof_proba, fold_ids, classes: Sequence, alpha: float = 0.1
) -> list[tuple]:
    """Prediction sets of each fold, calibrated on the other folds' OOF probabilities.

    For out-of-fold probabilities of the whole cohort, the sets of fold ``f`` use
    thresholds fitted (:func:`fit_conformal`) on the subjects of every other fold, so
    no subject calibrates its own set and coverage can be measured over all folds
    with :func:`coverage`. Exchangeability is approximate (each fold's probabilities
    come from a different fitted model), so coverage is close to, not guaranteed at,
    ``1 - alpha``.

    Parameters
    ----------
    y : array-like of shape (n_subjects,)
    oof_proba : array-like of shape (n_subjects, n_classes)
    fold_ids : array-like of shape (n_subjects,)
        Outer fold of each subject; at least two distinct folds.
    classes : sequence
    alpha : float, default=0.1

    Returns
    -------
    list of tuple
        The set of each subject, in input order.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]] * 20)
    >>> sets = cross_conformal_oof(["A", "B"] * 20, p, np.arange(40) // 20, ["A", "B"])
    >>> sets[:2]
    [('A',), ('B',)]
    """
    _check_alpha(alpha)
    proba, classes, y = check_proba(oof_proba, classes, y)
    folds = np.asarray(fold_ids)
    if folds.shape != y.shape:
        raise ValueError(
            f"fold_ids has shape {folds.shape} but y has {len(y)} labels; pass one "
            "fold id per subject."
        )
    unique = sorted(set(folds.tolist()), key=str)
    if len(unique) < 2:
        raise ValueError(
            f"fold_ids holds {len(unique)} fold(s); cross-conformal sets need at "
            "least 2 (calibrate on the others, predict one)."
        )
    out: list[tuple] = [()] * len(y)
    for f in unique:
        test = folds == f
        fitted = fit_conformal(y[~test], proba[~test], classes, alpha)
        for i, s in zip(np.flatnonzero(test), fitted.predict(proba[test]), strict=True):
            out[i] = s
    return out
