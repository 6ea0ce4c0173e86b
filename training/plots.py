"""Validation figures: ROC, reliability, confusion, decision curve, bar charts.

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot, so no
global figure registry or interactive backend is involved; PNGs are rendered by Agg.
The caller saves (``fig.savefig`` or ``mlflow.log_figure``) and discards it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from common import html as h
from common.statistics import auc
from training.evaluation import calibration_table, check_proba


def _diagonal(ax) -> None:
    ax.plot([0, 1], [0, 1], ls="--", c="0.6", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")


def roc_curves(y, proba, classes: Sequence, *, positive: str = "ALS") -> Figure:
    """One-vs-rest ROC curve of each class, and ``positive`` vs rest on its own.

    The right panel (when ``positive`` is a class present in ``y``) marks the argmax
    operating point. A class absent from ``y`` has no curve.

    Parameters
    ----------
    y : array-like of shape (n_subjects,)
    proba : array-like of shape (n_subjects, n_classes)
    classes : sequence
    positive : str, default="ALS"

    Returns
    -------
    Figure
    """
    proba, classes, y = check_proba(proba, classes, y)
    y_idx = np.array([classes.index(v) for v in y.tolist()], dtype=int)
    show_pos = positive in classes and 0 < (y == positive).sum() < len(y)
    fig, axes = h.subplots(
        1,
        2 if show_pos else 1,
        squeeze=False,
        figsize=(11 if show_pos else 5.5, 5),
        layout="constrained",
    )
    axes = axes[0]
    for j, c in enumerate(classes):
        if 0 < (y_idx == j).sum() < len(y_idx):
            area = auc(proba[:, j], y_idx == j)
            fpr, tpr, _ = roc_curve(y_idx == j, proba[:, j])
            axes[0].plot(fpr, tpr, label=f"{c} (AUC {area:.3f})")
    axes[0].set_title("One-vs-rest ROC per class")
    if show_pos:
        j = classes.index(positive)
        pos = y_idx == j
        fpr, tpr, _ = roc_curve(pos, proba[:, j])
        area = auc(proba[:, j], pos)
        axes[1].plot(fpr, tpr, c="C3", label=f"AUC {area:.3f}")
        called = proba.argmax(axis=1) == j
        axes[1].plot(
            called[~pos].mean(),
            called[pos].mean(),
            "ko",
            label="argmax operating point",
        )
        axes[1].set_title(f"{positive} vs rest")
    for ax in axes:
        _diagonal(ax)
        ax.set_xlabel("False positive rate (1 - specificity)")
        ax.set_ylabel("True positive rate (sensitivity)")
        ax.legend(loc="lower right", fontsize="small")
    return fig


def calibration_plot(y, proba, classes: Sequence, *, n_bins: int = 10) -> Figure:
    """Reliability diagrams: top-class confidence (with ECE) and each class.

    Parameters
    ----------
    y : array-like of shape (n_subjects,)
    proba : array-like of shape (n_subjects, n_classes)
    classes : sequence
    n_bins : int, default=10
        Equal-width probability bins; empty bins are not drawn.

    Returns
    -------
    Figure
    """
    proba, classes, y = check_proba(proba, classes, y)
    y_idx = np.array([classes.index(v) for v in y.tolist()], dtype=int)
    correct = proba.argmax(axis=1) == y_idx
    fig, (top, per_class) = h.subplots(1, 2, figsize=(11, 5), layout="constrained")
    t = calibration_table(correct, proba.max(axis=1), n_bins)
    t = t[t["count"] > 0]
    ece = float(
        (t["count"] * (t["observed_fraction"] - t["mean_predicted"]).abs()).sum()
    )
    top.bar(
        (t["bin_low"] + t["bin_high"]) / 2,
        t["observed_fraction"],
        width=1 / n_bins,
        alpha=0.5,
        edgecolor="white",
        label="accuracy per bin",
    )
    top.plot(
        t["mean_predicted"], t["observed_fraction"], "o-", c="C0", label="bin mean"
    )
    top.set_title(f"Top-class reliability (ECE {ece / len(y):.3f})")
    top.set_xlabel("Confidence (top-class probability)")
    top.set_ylabel("Accuracy")
    for j, c in enumerate(classes):
        t = calibration_table(y_idx == j, proba[:, j], n_bins)
        t = t[t["count"] > 0]
        per_class.plot(t["mean_predicted"], t["observed_fraction"], "o-", label=c)
    per_class.set_title("Per-class reliability (one vs rest)")
    per_class.set_xlabel("Predicted probability of the class")
    per_class.set_ylabel("Observed fraction of the class")
    for ax in (top, per_class):
        _diagonal(ax)
        ax.legend(loc="upper left", fontsize="small")
    return fig


def confusion_plot(confusion: pd.DataFrame) -> Figure:
    """Confusion matrix: colour = fraction of the true class, text = count (%).

    Parameters
    ----------
    confusion : DataFrame
        Square counts, rows true and columns predicted (``Evaluation.confusion``).

    Returns
    -------
    Figure
    """
    if confusion.shape[0] != confusion.shape[1] or list(confusion.index) != list(
        confusion.columns
    ):
        raise ValueError(
            f"confusion has rows {list(confusion.index)} and columns "
            f"{list(confusion.columns)}; pass a square matrix with the same classes "
            "in the same order, e.g. Evaluation.confusion."
        )
    counts = confusion.to_numpy(dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    k = len(confusion)
    fig, ax = h.subplots(figsize=(1.1 * k + 2.5, 1.1 * k + 1.5), layout="constrained")
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="Fraction of the true class")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}\n({100 * frac[i, j]:.0f}%)",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.5 else "black",
                fontsize="small",
            )
    labels = [str(c) for c in confusion.index]
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title("Confusion matrix")
    return fig


def decision_curve_plot(dc: pd.DataFrame, *, label: str = "model") -> Figure:
    """Net benefit against threshold probability (output of ``decision_curve``).

    Parameters
    ----------
    dc : DataFrame
        Columns ``threshold``, ``net_benefit_model``, ``net_benefit_all``,
        ``net_benefit_none``.
    label : str, default="model"
        Legend entry of the model's curve.

    Returns
    -------
    Figure
    """
    need = ["threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none"]
    missing = [c for c in need if c not in dc.columns]
    if missing:
        raise ValueError(
            f"dc lacks columns {missing}; pass the output of "
            "training.evaluation.decision_curve."
        )
    fig, ax = h.subplots(figsize=(6.5, 5), layout="constrained")
    ax.plot(dc["threshold"], dc["net_benefit_model"], c="C3", label=label)
    ax.plot(dc["threshold"], dc["net_benefit_all"], c="0.4", label="treat all")
    ax.plot(dc["threshold"], dc["net_benefit_none"], c="k", ls="--", label="treat none")
    top = max(dc["net_benefit_model"].max(), dc["net_benefit_all"].max(), 0.01) * 1.1
    ax.set_ylim(-0.1 * top, top)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit")
    ax.set_title("Decision curve")
    ax.legend(fontsize="small")
    return fig


def bar_plot(
    data: pd.Series | pd.DataFrame,
    title: str,
    *,
    xlabel: str = "value",
    ylabel: str | None = None,
    reference: float | None = None,
) -> Figure:
    """Horizontal bars of label -> value, with CI whiskers when given.

    Parameters
    ----------
    data : Series or DataFrame
        A Series of values, or a DataFrame with an ``estimate`` column (else its
        first column) and optional ``ci_low`` / ``ci_high`` columns.
    title : str
    xlabel : str, default="value"
    ylabel : str, optional
        Label of the category axis; default the index name of ``data``.
    reference : float, optional
        Draw a vertical line here (e.g. 0.5 for a chance-level AUC).

    Returns
    -------
    Figure
    """
    if len(data) == 0:
        raise ValueError(f"bar_plot({title!r}) got no rows; pass at least one value.")
    if isinstance(data, pd.DataFrame):
        values = data["estimate"] if "estimate" in data else data.iloc[:, 0]
        err = None
        if {"ci_low", "ci_high"} <= set(data.columns):
            err = np.vstack([values - data["ci_low"], data["ci_high"] - values])
    else:
        values, err = data, None
    values = pd.to_numeric(values)
    fig, ax = h.subplots(figsize=(6.5, 0.4 * len(values) + 1.5), layout="constrained")
    pos = np.arange(len(values))
    ax.barh(pos, values.to_numpy(), xerr=err, capsize=3, color="C0", alpha=0.8)
    ax.set_yticks(pos, [str(i) for i in values.index])
    ax.invert_yaxis()  # first label on top
    if reference is not None:
        ax.axvline(reference, c="0.4", ls="--", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel((values.index.name or "") if ylabel is None else ylabel)
    ax.set_title(title)
    return fig
