"""The explanation report: one self-contained HTML file per scored cohort.

A cohort page (predicted class mix, flags, SHAP importance by modality and by
feature, a SHAP beeswarm, shifts from the training distribution, the model card
with its metrics, calibration and intended use) and one section per subject
(probabilities, conformal set, out-of-distribution and site flags, a SHAP waterfall
and its key biomarkers against the training controls). Figures are embedded as
base64 PNG and there is no script: the file makes no request of any kind.
"""

from __future__ import annotations

import base64
import html
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from serve.bundle import Bundle, load_bundle
from serve.config import ExplainConfig
from serve.explain import Explanation, importance, shap_values
from serve.predict import load_input, predict, prepare_input

INTENDED_USE = (
    "Research use only. The model ranks the diagnoses ALS, MMN, NMO, MS and healthy "
    "control for research cohorts whose biomarkers were acquired and processed like "
    "the training cohort's. It is not a medical device and must not decide a "
    "diagnosis, a referral or trial eligibility on its own: the conformal set says "
    "which diagnoses remain plausible, the out-of-distribution flag says when the "
    "subject resembles none of them (e.g. CIDP), and the site flag says when the "
    "scanner was never seen in training."
)
CSS = (
    "body{font-family:sans-serif;max-width:1050px;margin:auto;padding:0 12px}"
    "table{border-collapse:collapse;margin:6px 0}"
    "td,th{padding:2px 8px;border:1px solid #ccc;text-align:right}"
    ".warn{background:#fde2e2;color:#922;padding:8px;font-weight:bold}"
    ".flag{color:#922;font-weight:bold}.ok{color:#276227}"
    "section{border-top:1px solid #999;margin-top:18px}"
    "img{max-width:100%}"
)


def run_explain(cfg: ExplainConfig) -> Path:
    """Load ``cfg``'s model and input and write the report to ``cfg.out``."""
    out = Path(cfg.out)
    if out.exists() and not cfg.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it.")
    bundle = load_bundle(cfg.source.model, cfg.source.tracking_uri)
    table = load_input(cfg.cohort, cfg.features)
    return write_report(
        bundle,
        table,
        out,
        overwrite=cfg.overwrite,
        max_subjects=cfg.max_subjects,
        top=cfg.top,
        seed=cfg.seed,
        source=str(cfg.cohort or cfg.features),
    )


def write_report(
    bundle: Bundle,
    table: pd.DataFrame,
    out: Path,
    *,
    overwrite: bool = False,
    max_subjects: int = 200,
    top: int = 12,
    seed: int = 0,
    source: str = "input",
) -> Path:
    """Write the HTML explanation report of ``table`` scored by ``bundle``.

    The first ``max_subjects`` scorable rows are explained and get a section;
    every row is in the class mix and the flag counts.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it.")
    table = table.reset_index(drop=True)
    preds = predict(bundle, table, source=source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # predict already warned
        frame, errors = prepare_input(bundle, table, source)
    scored = np.flatnonzero(errors == "")
    shown = scored[:max_subjects]
    exp = shap_values(bundle, frame.iloc[shown], seed=seed) if len(shown) else None
    parts = [
        "<h1>ALS and mimics: model explanation report</h1>",
        f"<p>Model <b>{_e(bundle.version)}</b> ({_e(bundle.family)}, task "
        f"{_e(bundle.metadata.get('task', ''))}); input {_e(source)}: "
        f"{len(table)} subject-visits, {len(scored)} scored.</p>",
    ]
    if bundle.metadata.get("trained_on_simulated_data"):
        parts.append(
            '<p class="warn">This model was trained on a SIMULATED cohort (no real '
            "patients). Its figures describe the simulation, not any clinic. "
            "Research use only; not for clinical decisions.</p>"
        )
    parts += _cohort(bundle, table, preds, frame.iloc[scored], exp, shown, top)
    parts += _model_card(bundle)
    parts.append("<h2>Subjects</h2>")
    if len(scored) > len(shown):
        parts.append(
            f"<p>The first {len(shown)} of {len(scored)} scored subject-visits have "
            "a section (raise --max-subjects for more); every subject is in the "
            "predictions of `python -m serve score`.</p>"
        )
    for pos, i in enumerate(shown):
        parts += _subject(bundle, preds.iloc[i], exp, pos, top)
    for i in np.flatnonzero(errors != ""):
        parts.append(f'<p class="flag">Not scored: {_e(errors[i])}</p>')
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>ALS and mimics explanation report</title>"
        f"<style>{CSS}</style></head><body>" + "\n".join(parts) + "</body></html>"
    )
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def _cohort(bundle, table, preds, frame, exp, shown, top) -> list[str]:
    ok = preds["error"] == ""
    mix = (
        preds.loc[ok, "predicted_class"]
        .value_counts()
        .reindex(bundle.classes, fill_value=0)
    )
    flags = pd.DataFrame(
        {
            "subject-visits": [len(preds)],
            "scored": [int(ok.sum())],
            "not scored": [int((~ok).sum())],
            "out of distribution": [int(preds["ood"].fillna(False).sum())],
            "unseen site": [int(preds["unseen_site"].sum())],
            "ambiguous set (2+ classes)": [
                int(preds.loc[ok, "prediction_set"].str.count(",").gt(0).sum())
            ],
            "empty set": [int((preds.loc[ok, "prediction_set"] == "{}").sum())],
        }
    )
    parts = [
        "<h2>Cohort</h2>",
        _table(flags),
        "<h3>Predicted class mix</h3>",
        _barh(list(mix.index), mix.to_numpy(float), "subject-visits"),
    ]
    if exp is not None:
        per_feature, per_modality = importance(exp)
        best = per_feature.head(2 * top)
        cls = "ALS" if "ALS" in exp.classes else exp.classes[0]
        parts += [
            f"<p>SHAP values of the {len(shown)} explained subjects, in probability "
            "units, against aggregated training rows.</p>",
            "<h3>SHAP importance by modality</h3>",
            _barh(
                list(per_modality.index),
                per_modality.to_numpy(),
                "sum of mean |SHAP| over subjects and classes",
            ),
            "<h3>SHAP importance by feature</h3>",
            _barh(list(best.index), best.to_numpy(), "mean |SHAP|"),
            f"<h3>SHAP beeswarm: push on p({_e(cls)})</h3>",
            _beeswarm(exp, cls, list(best.index[:top])),
        ]
    shifts = _shifts(bundle, frame)
    if len(shifts):
        parts += [
            "<h3>Largest shifts from the training distribution</h3>",
            "<p>(cohort median - training median) / training SD, per feature: a "
            "new scanner, protocol or unit shows here first.</p>",
            _table(shifts),
        ]
    return parts


def _model_card(bundle: Bundle) -> list[str]:
    meta = bundle.metadata
    ci = pd.DataFrame(meta.get("nested_cv_metrics_ci", {})).T
    if len(ci):
        cols = [c for c in ("estimate", "ci_low", "ci_high") if c in ci.columns]
        ci = ci[cols].reset_index(names="metric")
    conformal = meta["conformal"]
    coverage = pd.DataFrame(
        {
            "class": list(conformal.get("coverage", {})),
            "coverage": list(conformal.get("coverage", {}).values()),
        }
    )
    ood = meta.get("ood", {})
    packages = pd.DataFrame([meta.get("packages", {})])
    counts = pd.DataFrame([meta.get("class_counts", {})])
    parts = [
        "<h2>Model card</h2>",
        f"<p><b>Intended use.</b> {_e(INTENDED_USE)}</p>",
        f"<p>Trained on {meta.get('training_subjects', '?')} subject-visits from "
        f"{_e(meta.get('data_source', 'an unnamed source'))}, sites "
        f"{_e(', '.join(map(str, meta.get('sites', []))) or 'none recorded')}.</p>",
        _table(counts),
        "<h3>Nested cross-validation metrics (95 % bootstrap CI)</h3>",
        _table(ci) if len(ci) else "<p>not recorded</p>",
        "<h3>Calibration of the out-of-fold probabilities</h3>",
        _calibration(meta.get("calibration", {})),
        f"<h3>Conformal sets (alpha {conformal['alpha']})</h3>",
        "<p>Each class is in a subject's set unless its probability is below the "
        "class's threshold; out-of-fold coverage per class:</p>",
        _table(coverage),
        "<h3>Out-of-distribution flag</h3>",
        f"<p>Distance to the nearest training class over "
        f"{ood.get('n_features', '?')} continuous features; flagged above 1.0, "
        f"which {100 * ood.get('training_flag_rate', float('nan')):.1f} % of "
        "cross-fitted training subjects exceed.</p>",
        "<h3>Made with</h3>",
        _table(packages),
    ]
    return parts


def _subject(bundle, row: pd.Series, exp: Explanation, pos: int, top: int):
    pid = str(row.get("participant_id", f"row {pos + 1}"))
    session = row.get("session")
    label = pid + (f" {session}" if isinstance(session, str) and session else "")
    cls = str(row["predicted_class"])
    probs = pd.DataFrame([{c: row[f"p_{c}"] for c in bundle.classes}])
    flags = [
        _flag(bool(row["ood"]), f"out of distribution (score {row['ood_score']:.2f})"),
        _flag(bool(row["unseen_site"]), "site not seen in training"),
    ]
    anchor = re.sub(r"[^A-Za-z0-9_-]", "_", label)
    return [
        f'<section id="s-{anchor}-{pos}">',
        f"<h3>{_e(label)}: predicted {_e(cls)}</h3>",
        _table(probs),
        f"<p>Conformal set at alpha {bundle.alpha}: <b>{_e(row['prediction_set'])}"
        f"</b>; p(ALS vs mimics) {row['p_als_vs_mimics']:.3f}; "
        + "; ".join(flags)
        + f"; modalities used: {_e(row['modalities_used'] or 'none')}.</p>",
        _waterfall(exp, pos, cls, top),
        _against_controls(bundle, exp, pos, cls, min(top, 8)),
        "</section>",
    ]


def _flag(on: bool, text: str) -> str:
    if on:
        return f'<span class="flag">{_e(text)}</span>'
    return f'<span class="ok">not {_e(text.split(" (")[0])}</span>'


def _shifts(bundle: Bundle, frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    ref = bundle.metadata["reference"]
    rows = []
    for c, stats in ref.items():
        if c not in frame or c.startswith("has_") or not stats.get("sd"):
            continue
        values = frame[c].dropna()
        if len(values) < 5 or stats.get("q50") is None:
            continue
        shift = (float(values.median()) - stats["q50"]) / stats["sd"]
        rows.append((c, len(values), float(values.median()), stats["q50"], shift))
    frame = pd.DataFrame(
        rows, columns=["feature", "n", "cohort median", "training median", "shift"]
    )
    return frame.reindex(frame["shift"].abs().sort_values(ascending=False).index)[:n]


# ---- figures -------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _barh(labels: list[str], values: np.ndarray, xlabel: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(labels) + 0.9))
    ax.barh(range(len(labels)), values, color="#557")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    return _png(fig)


def _beeswarm(exp: Explanation, cls: str, features: list[str]) -> str:
    """One row per feature: each subject's SHAP value, coloured by its value's
    rank within the cohort (grey: missing)."""
    plt = _plt()
    k = exp.classes.index(cls)
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(features) + 1))
    for r, f in enumerate(features):
        j = exp.features.index(f)
        x = exp.values[:, j, k]
        v = exp.data[f].to_numpy(float)
        rank = pd.Series(v).rank(pct=True).to_numpy()
        y = r + rng.uniform(-0.3, 0.3, len(x))
        miss = np.isnan(v)
        ax.scatter(x[miss], y[miss], s=8, c="#bbb")
        sc = ax.scatter(
            x[~miss], y[~miss], s=8, c=rank[~miss], cmap="coolwarm", vmin=0, vmax=1
        )
    ax.set_yticks(range(len(features)), features)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel(f"SHAP value (push on p({cls}))")
    fig.colorbar(sc, ax=ax, label="feature value (rank in cohort)")
    return _png(fig)


def _waterfall(exp: Explanation, i: int, cls: str, top: int) -> str:
    """From the base probability, each of the top features' push, then the rest."""
    plt = _plt()
    k = exp.classes.index(cls)
    contrib = exp.values[i, :, k]
    idx = list(np.argsort(-np.abs(contrib))[:top])
    rest = contrib.sum() - contrib[idx].sum()
    labels = [f"{exp.features[j]} = {exp.data.iloc[i, j]:.3g}" for j in idx]
    steps = [*contrib[idx], rest]
    labels.append(f"{len(contrib) - len(idx)} other features")
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(steps) + 1))
    start = exp.base_values[i, k]
    for r, step in enumerate(steps):
        ax.barh(r, step, left=start, color="#c0392b" if step > 0 else "#2471a3")
        start += step
    ax.set_yticks(range(len(steps)), labels)
    ax.invert_yaxis()
    ax.axvline(exp.base_values[i, k], color="grey", lw=0.5, ls="--")
    ax.axvline(start, color="black", lw=0.8)
    ax.set_xlabel(
        f"p({cls}): base {exp.base_values[i, k]:.2f} -> this subject {start:.2f}"
    )
    return _png(fig)


def _against_controls(bundle, exp: Explanation, i: int, cls: str, n: int) -> str:
    """The subject's most influential biomarkers against the training controls'
    2.5-97.5 % range (shaded) and median (tick)."""
    ref = bundle.metadata["reference"]
    k = exp.classes.index(cls)
    order = np.argsort(-np.abs(exp.values[i, :, k]))
    chosen = []
    for j in order:
        f = exp.features[j]
        stats = ref.get(f, {})
        value = exp.data.iloc[i, j]
        if (
            not f.startswith("has_")
            and stats.get("controls_q025") is not None
            and stats.get("controls_q975") is not None
            and stats["controls_q975"] > stats["controls_q025"]
            and not np.isnan(value)
        ):
            chosen.append((f, float(value), stats))
        if len(chosen) == n:
            break
    if not chosen:
        return "<p>No biomarker with a control range to show.</p>"
    plt = _plt()
    fig, axes = plt.subplots(len(chosen), 1, figsize=(7, 0.55 * len(chosen) + 0.4))
    for ax, (f, value, s) in zip(np.atleast_1d(axes), chosen, strict=True):
        lo, hi, mid = s["controls_q025"], s["controls_q975"], s["controls_q50"]
        pad = 0.25 * (hi - lo)
        ax.axvspan(lo, hi, color="#cde", label="controls 2.5-97.5 %")
        ax.axvline(mid, color="#357", lw=1)
        inside = lo <= value <= hi
        ax.plot([value], [0], "o", color="#276227" if inside else "#c0392b")
        ax.set_xlim(min(lo - pad, value - pad), max(hi + pad, value + pad))
        ax.set_yticks([])
        unit = bundle.schema.get(f, {}).get("unit", "")
        ax.set_ylabel(f"{f}\n({unit})" if unit else f, rotation=0, ha="right")
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle("key biomarkers vs training controls (shaded: 95 % range)", y=1.0)
    return _png(fig)


def _calibration(cal: dict) -> str:
    if not cal:
        return "<p>not recorded</p>"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
    for cls, bins in cal.items():
        ax.plot(
            [b["predicted"] for b in bins],
            [b["observed"] for b in bins],
            "o-",
            ms=3,
            label=cls,
        )
    ax.set_xlabel("predicted probability (decile mean)")
    ax.set_ylabel("observed frequency")
    ax.legend(fontsize=8)
    return _png(fig)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(
        index=False,
        float_format=lambda v: f"{v:.3f}",
        border=0,
        na_rep="",
        escape=True,
    )


def _e(text) -> str:
    return html.escape(str(text))
