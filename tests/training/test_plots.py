"""Validation figures: each is a Figure with labelled axes that renders to PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from training.evaluation import decision_curve, evaluate
from training.plots import (
    bar_plot,
    calibration_plot,
    confusion_plot,
    decision_curve_plot,
    roc_curves,
)

CLASSES = ["ALS", "MMN", "NMO", "HC"]


@pytest.fixture(scope="module")
def cohort():
    """60 subjects with informative, calibrated-ish probabilities."""
    rng = np.random.default_rng(0)
    y = np.asarray(CLASSES)[np.arange(60) % 4]
    logits = rng.normal(size=(60, 4)) + 2 * (y[:, None] == np.asarray(CLASSES))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def _check(fig, tmp_path, n_axes: int | None = None):
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert axes and (n_axes is None or len(axes) == n_axes)
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    path = tmp_path / "figure.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_roc_curves(cohort, tmp_path):
    y, proba = cohort
    fig = roc_curves(y, proba, CLASSES)
    _check(fig, tmp_path, n_axes=2)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(legend) == 4 and all("AUC" in t for t in legend)


def test_roc_curves_without_the_positive_class(cohort, tmp_path):
    y, proba = cohort
    _check(roc_curves(y, proba, CLASSES, positive="MS"), tmp_path, n_axes=1)


def test_calibration_plot(cohort, tmp_path):
    y, proba = cohort
    fig = calibration_plot(y, proba, CLASSES)
    _check(fig, tmp_path, n_axes=2)
    assert "ECE" in fig.axes[0].get_title()


def test_confusion_plot(cohort, tmp_path):
    ev = evaluate(*cohort, CLASSES, n_boot=0)
    fig = confusion_plot(ev.confusion)
    _check(fig, tmp_path, n_axes=1)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 16
    assert texts[0].startswith(str(ev.confusion.iloc[0, 0]))


def test_decision_curve_plot(cohort, tmp_path):
    y, proba = cohort
    fig = decision_curve_plot(decision_curve(y == "ALS", proba[:, 0]), label="ALS")
    _check(fig, tmp_path, n_axes=1)
    assert len(fig.axes[0].get_lines()) == 3


def test_bar_plot_with_ci(tmp_path):
    data = pd.DataFrame(
        {"estimate": [0.8, 0.7], "ci_low": [0.7, 0.6], "ci_high": [0.9, 0.8]},
        index=["all modalities", "NfL alone"],
    )
    fig = bar_plot(
        data, "Modality value", xlabel="macro AUC", ylabel="model", reference=0.5
    )
    _check(fig, tmp_path, n_axes=1)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["all modalities", "NfL alone"]


def test_bar_plot_of_a_series(tmp_path):
    series = pd.Series({"MRS": 0.02, "QSM": -0.01}).rename_axis("modality left out")
    fig = bar_plot(series, "AUC lost when left out", xlabel="delta macro AUC")
    _check(fig, tmp_path, n_axes=1)
    assert fig.axes[0].get_ylabel() == "modality left out"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: confusion_plot(pd.DataFrame([[1, 2]], ["ALS"], ["ALS", "HC"])),
            "pass a square matrix with the same classes",
        ),
        (
            lambda: confusion_plot(
                pd.DataFrame([[1, 0], [0, 1]], ["A", "B"], ["B", "A"])
            ),
            "pass a square matrix with the same classes",
        ),
        (
            lambda: decision_curve_plot(pd.DataFrame({"threshold": [0.5]})),
            r"dc lacks columns \['net_benefit_model'",
        ),
        (lambda: bar_plot(pd.Series(dtype=float), "empty"), "got no rows"),
    ],
)
def test_plots_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
