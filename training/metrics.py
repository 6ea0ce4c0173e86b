"""Discrimination metrics of multi-class probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

MIMICS = ("MMN", "NMO", "MS")  # the clinical question: ALS vs these (not controls)


def score(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Balanced accuracy, macro one-vs-rest AUC, ALS-vs-rest and ALS-vs-mimics AUC,
    and the proper scores log loss and (multi-class) Brier score.

    ALS vs mimics ranks ALS against MMN, NMO and MS subjects by
    p(ALS) / (p(ALS) + p(mimics)); controls are left out.

    Parameters
    ----------
    y : array of str
        True labels.
    proba : array, shape (n, len(classes))
        Predicted probabilities, columns in ``classes`` order.
    classes : list of str
        Column order of ``proba``.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> score(np.array(["ALS", "HC"]), p, ["ALS", "HC"])["als_vs_rest_auc"]
    1.0
    """
    classes = list(classes)
    y = np.asarray(y)
    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    present = sorted(c for c in classes if c in set(y))  # sklearn wants sorted labels
    cols = [classes.index(c) for c in present]
    out = {"balanced_accuracy": float(balanced_accuracy_score(y, pred))}
    if len(present) > 2:
        sub = proba[:, cols] / proba[:, cols].sum(axis=1, keepdims=True)
        out["macro_auc"] = float(
            roc_auc_score(y, sub, multi_class="ovr", labels=present, average="macro")
        )
    elif len(present) == 2:
        out["macro_auc"] = float(roc_auc_score(y == present[1], proba[:, cols[1]]))
    if "ALS" in classes and 0 < (y == "ALS").sum() < len(y):
        als = proba[:, classes.index("ALS")]
        out["als_vs_rest_auc"] = float(roc_auc_score(y == "ALS", als))
        mimics = [c for c in MIMICS if c in classes]
        rows = np.isin(y, ["ALS", *mimics])
        if mimics and 0 < (y[rows] == "ALS").sum() < rows.sum():
            other = proba[:, [classes.index(c) for c in mimics]].sum(axis=1)
            p = als / np.clip(als + other, 1e-300, None)
            out["als_vs_mimics_auc"] = float(roc_auc_score(y[rows] == "ALS", p[rows]))
    onehot = (y[:, None] == np.asarray(classes)[None, :]).astype(float)
    clipped = np.clip(proba, 1e-15, 1.0)
    out["log_loss"] = float(-np.mean(np.log((clipped * onehot).sum(axis=1))))
    out["brier"] = float(np.mean(((proba - onehot) ** 2).sum(axis=1)))
    return out
