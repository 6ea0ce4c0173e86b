"""SHAP explanations and a self-contained HTML report.

SHAP values are computed model-agnostically (permutation explainer on the pipeline's
``predict_proba``, background = the scored cohort), so they are in probability
units, per class, and correct for every model family the training can produce.
The report embeds its figures as base64 PNG: it makes no external request.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.dictionary import describe
from serve.bundle import Bundle
from serve.predict import predict

MAX_BACKGROUND = 50


@dataclass(frozen=True)
class Explanation:
    """SHAP values: ``values[i, j, k]`` = feature j's push on class k for subject i."""

    values: np.ndarray
    base_values: np.ndarray
    features: list[str]
    classes: list[str]
    data: pd.DataFrame


def shap_values(bundle: Bundle, table: pd.DataFrame, seed: int = 0) -> Explanation:
    """Permutation SHAP values of ``bundle`` on the feature columns of ``table``.

    The acquisition ``site`` (read by the harmonisation step) is not a feature to
    explain: each subject is explained at its own site.
    """
    import shap

    numeric = [c for c in bundle.feature_columns if c != "site"]
    X = table[numeric].astype(float).reset_index(drop=True)
    sites = (
        table["site"].astype("string").reset_index(drop=True)
        if "site" in bundle.feature_columns
        else None
    )
    background = X.sample(min(len(X), MAX_BACKGROUND), random_state=seed)
    pipe = bundle.pipeline
    order = [list(map(str, pipe.classes_)).index(c) for c in bundle.classes]
    masker = shap.maskers.Independent(
        background.to_numpy(), max_samples=len(background)
    )
    values, base = [], []
    for i in range(len(X)):

        def f(data: np.ndarray, i: int = i) -> np.ndarray:
            frame = pd.DataFrame(data, columns=numeric)
            if sites is not None:
                frame["site"] = pd.array([sites[i]] * len(frame), dtype="string")
            return pipe.predict_proba(frame[bundle.feature_columns])[:, order]

        explainer = shap.explainers.Permutation(f, masker, seed=seed)
        result = explainer(X.iloc[[i]].to_numpy(), max_evals=2 * X.shape[1] + 1)
        values.append(np.asarray(result.values)[0])
        base.append(np.asarray(result.base_values)[0])
    return Explanation(np.array(values), np.array(base), numeric, bundle.classes, X)


def modality_of(feature: str) -> str:
    """The modality of a feature column, from the features data dictionary."""
    entry = describe(feature)
    return entry.modality if entry is not None else "other"


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return (
        '<img alt="figure" src="data:image/png;base64,'
        f'{base64.b64encode(buf.getvalue()).decode()}">'
    )


def _barh(labels: list[str], values: np.ndarray, title: str, signed: bool = False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.3 * len(labels) + 1))
    colors = ["#c0392b" if v > 0 else "#2471a3" for v in values] if signed else "#555"
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.axvline(0, color="black", lw=0.5)
    return _png(fig)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0)


def write_report(
    bundle: Bundle,
    table: pd.DataFrame,
    out: Path,
    *,
    overwrite: bool = False,
    top: int = 12,
) -> Path:
    """Write the HTML explanation report of ``table`` scored by ``bundle``."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it.")
    preds = predict(bundle, table)
    exp = shap_values(bundle, table)
    classes = exp.classes
    mean_abs = np.abs(exp.values).mean(axis=(0, 2))
    order = np.argsort(mean_abs)[::-1][: top * 2]
    by_mod = pd.Series(mean_abs, index=exp.features).groupby(modality_of).sum()
    by_mod = by_mod.sort_values(ascending=False)
    meta = bundle.metadata
    parts = [
        "<h1>ALS and mimics: model explanation report</h1>",
        f"<p>Model <b>{html.escape(bundle.version)}</b> "
        f"({html.escape(bundle.family)}), "
        f"{len(table)} subject-visits scored.</p>",
    ]
    if meta.get("trained_on_simulated_data"):
        parts.append(
            '<p class="warn">This model was trained on a SIMULATED cohort '
            "(no real patients). Research use only; not for clinical "
            "decisions.</p>"
        )
    metrics = pd.DataFrame([meta.get("nested_cv_metrics", {})])
    mix = preds["predicted_class"].value_counts().rename_axis("class").reset_index()
    parts += [
        "<h2>Cohort</h2><h3>Predicted class mix</h3>",
        _table(mix),
        "<h3>Training performance (nested cross-validation)</h3>",
        _table(metrics),
        "<h3>SHAP importance by modality</h3>",
        _barh(
            list(by_mod.index), by_mod.to_numpy(), "sum of mean |SHAP| (probability)"
        ),
        "<h3>SHAP importance by feature</h3>",
        _barh(
            [exp.features[j] for j in order],
            mean_abs[order],
            "mean |SHAP| over subjects and classes",
        ),
        "<h2>Subjects</h2>",
    ]
    for i, row in preds.iterrows():
        k = classes.index(row["predicted_class"])
        contrib = exp.values[i, :, k]
        idx = np.argsort(np.abs(contrib))[::-1][:top]
        labels = [f"{exp.features[j]} = {exp.data.iloc[i, j]:.3g}" for j in idx]
        probs = pd.DataFrame([{c: row[f"p_{c}"] for c in classes}])
        flags = "(site not seen in training)" if bool(row["unseen_site"]) else ""
        parts += [
            f'<section id="{html.escape(str(row.get("participant_id", i)))}">',
            f"<h3>{html.escape(str(row.get('participant_id', i)))}: predicted "
            f"{html.escape(row['predicted_class'])} {html.escape(flags)}</h3>",
            _table(probs),
            f"<p>Modalities used: {html.escape(str(row['modalities_used']))}</p>",
            _barh(
                labels,
                contrib[idx],
                f"SHAP toward {row['predicted_class']} "
                f"(base {exp.base_values[i, k]:.2f})",
                signed=True,
            ),
            "</section>",
        ]
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>ALS and mimics explanation report</title><style>"
        "body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border:1px solid #ccc}"
        ".warn{background:#fde2e2;padding:8px;font-weight:bold}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
