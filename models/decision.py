"""The decision rules: which classes there are, which of them are ALS mimics, the
ALS-vs-mimics probability and the conformal prediction-set rule.

Training (metrics, evaluation, conformal calibration, the run), the model card and
serving all call these functions, so a model trained with ``--mimics MMN NMO``
reports and serves the same ALS-vs-mimics value. Nothing else recomputes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from common.schema import DIAGNOSES, POSITIVE

#: Every diagnosis a cohort may hold, in the order classes are reported.
CLASSES: tuple[str, ...] = DIAGNOSES
#: The label of the mimics pooled into one class (task ``als_vs_mimics``).
POOLED_MIMIC = "mimic"


def mimic_columns(classes: Sequence[str], mimics: Sequence[str]) -> list[int]:
    """Columns of ``classes`` that are mimics: those in ``mimics``, or the pooled
    ``mimic`` class; never the positive class.

    Examples
    --------
    >>> mimic_columns(["ALS", "MMN", "NMO", "MS", "HC"], ["MMN", "NMO"])
    [1, 2]
    >>> mimic_columns(["ALS", "mimic"], ["MMN", "NMO", "MS"])
    [1]
    """
    wanted = set(mimics) | {POOLED_MIMIC}
    return [k for k, c in enumerate(classes) if c in wanted and c != POSITIVE]


def als_vs_mimics(
    proba: np.ndarray, classes: Sequence[str], mimics: Sequence[str]
) -> np.ndarray:
    """p(ALS) / (p(ALS) + sum of p(mimic)): ALS against the mimics only, controls
    left out. NaN for every row when ``classes`` has no ALS or no mimic column.

    Examples
    --------
    >>> p = np.array([[0.6, 0.2, 0.2], [0.1, 0.3, 0.6]])
    >>> als_vs_mimics(p, ["ALS", "MMN", "HC"], ["MMN", "NMO", "MS"]).round(3)
    array([0.75, 0.25])
    """
    proba = np.asarray(proba, dtype=float)
    cols = mimic_columns(classes, mimics)
    if POSITIVE not in classes or not cols:
        return np.full(len(proba), np.nan)
    als = proba[:, list(classes).index(POSITIVE)]
    with np.errstate(invalid="ignore"):
        return als / np.clip(als + proba[:, cols].sum(axis=1), 1e-300, None)


def nonconformity(proba: np.ndarray) -> np.ndarray:
    """The conformal nonconformity score of each class: ``1 - p_c``."""
    return 1.0 - np.asarray(proba, dtype=float)


def in_set(proba: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Conformal membership, shape (n_subjects, n_classes): class ``c`` is in a
    subject's set when its nonconformity ``1 - p_c`` is within the class's
    threshold. A row of NaN probabilities is in no set.

    Examples
    --------
    >>> in_set(np.array([[0.7, 0.3], [0.5, 0.5]]), [0.4, 0.6])
    array([[ True, False],
           [False,  True]])
    """
    limits = np.asarray(thresholds, dtype=float)[None, :]
    with np.errstate(invalid="ignore"):
        return nonconformity(proba) <= limits


def format_set(members) -> str:
    """One prediction set as text: ``{ALS, MMN}``; ``{}`` for an empty set.

    Examples
    --------
    >>> format_set(("ALS", "MMN")), format_set(())
    ('{ALS, MMN}', '{}')
    """
    return "{" + ", ".join(str(c) for c in members) + "}"


def set_labels(member: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Each row's prediction set as text (:func:`format_set`) from a membership
    matrix (:func:`in_set`).

    Examples
    --------
    >>> set_labels(np.array([[True, True], [False, False]]), ["ALS", "MMN"]).tolist()
    ['{ALS, MMN}', '{}']
    """
    return _per_combination(member, classes, format_set)


def join_labels(member: np.ndarray, names: Sequence[str], sep: str = ",") -> np.ndarray:
    """Per row, the names whose column is True, joined by ``sep`` (``""`` for none).

    Examples
    --------
    >>> join_labels(np.array([[True, False, True]]), ["mri", "dti", "serum"]).tolist()
    ['mri,serum']
    """
    return _per_combination(member, names, lambda chosen: sep.join(map(str, chosen)))


def _per_combination(member, names: Sequence[str], fmt) -> np.ndarray:
    """``fmt`` of each row's chosen names, called once per distinct combination
    (there are few), not once per row."""
    member = np.asarray(member, dtype=bool)
    codes = member.astype(np.int64) @ (1 << np.arange(member.shape[1], dtype=np.int64))
    combos, inverse = np.unique(codes, return_inverse=True)
    text = [fmt([n for j, n in enumerate(names) if code >> j & 1]) for code in combos]
    return np.asarray(text, dtype=object)[inverse.ravel()]
