"""The explanation report: one self-contained HTML file per scored cohort.

A cohort page (predicted class mix, flags, SHAP importance by modality and by
feature, a SHAP beeswarm, shifts from the training distribution, the model card
with its metrics, calibration and intended use) and one section per subject
(probabilities, conformal set, out-of-distribution and site flags, a SHAP waterfall
and its key biomarkers against the training controls). Figures are embedded as
base64 PNG (cohort) or SVG (per subject, drawn by hand: a few kB each) and there is
no script: the file makes no request of any kind.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from common import html as h
from common.table_io import output_path
from serve.bundle import Bundle, load_source
from serve.config import ExplainConfig
from serve.explain import Explanation, importance, shap_values
from serve.predict import load_input, prepare_input, score_frame

INTENDED_USE = (
    "Research use only. The model ranks the diagnoses ALS, MMN, NMO, MS and healthy "
    "control for research cohorts whose biomarkers were acquired and processed like "
    "the training cohort's. It is not a medical device and must not decide a "
    "diagnosis, a referral or trial eligibility on its own: the conformal set says "
    "which diagnoses remain plausible, the out-of-distribution flag says when the "
    "subject resembles none of them (e.g. CIDP), and the site flag says when the "
    "scanner was never seen in training."
)


def run_explain(cfg: ExplainConfig) -> Path:
    """Load ``cfg``'s model and input and write the report to ``cfg.out`` (SHAP
    values computed on the Dask cluster of ``cfg.dask`` when given)."""
    from common.executor import executor

    out = output_path(cfg.out, overwrite=cfg.overwrite, types=(".html",))
    bundle = load_source(cfg.source)
    table = load_input(cfg.cohort, cfg.features, bundle.mapping.text_columns())
    with executor(cfg.dask) as client:
        return write_report(
            bundle,
            table,
            out,
            overwrite=cfg.overwrite,
            max_subjects=cfg.max_subjects,
            top=cfg.top,
            seed=cfg.seed,
            source=str(cfg.cohort or cfg.features),
            client=client,
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
    client=None,
) -> Path:
    """Write the HTML explanation report of ``table`` scored by ``bundle``.

    The first ``max_subjects`` scorable rows are explained (on the workers of the
    Dask ``client`` when given) and get a section; every row is in the class mix
    and the flag counts.
    """
    out = output_path(out, overwrite=overwrite, types=(".html",))
    table, problems = bundle.canonical(table.reset_index(drop=True), source)
    frame, errors = prepare_input(bundle, table, source, problems=problems)
    preds = score_frame(bundle, table, frame, errors)
    scored = np.flatnonzero(errors == "")
    shown = scored[:max_subjects]
    exp = (
        shap_values(bundle, frame.iloc[shown], seed=seed, client=client)
        if len(shown)
        else None
    )
    parts = [
        "<h1>ALS and mimics: model explanation report</h1>",
        f"<p>Model <b>{h.e(bundle.version)}</b> ({h.e(bundle.family)}, task "
        f"{h.e(bundle.metadata.get('task', ''))}); input {h.e(source)}: "
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
        parts.append(f'<p class="flag">Not scored: {h.e(errors[i])}</p>')
    h.write_page(out, "ALS and mimics explanation report", parts, overwrite=overwrite)
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
        h.table(flags),
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
            f"<h3>SHAP beeswarm: push on p({h.e(cls)})</h3>",
            _beeswarm(exp, cls, list(best.index[:top])),
        ]
    shifts = _shifts(bundle, frame)
    if len(shifts):
        parts += [
            "<h3>Largest shifts from the training distribution</h3>",
            "<p>(cohort median - training median) / training SD, per feature: a "
            "new scanner, protocol or unit shows here first.</p>",
            h.table(shifts),
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
        f"<p><b>Intended use.</b> {h.e(INTENDED_USE)}</p>",
        f"<p>Trained on {meta.get('training_subjects', '?')} subject-visits from "
        f"{h.e(meta.get('data_source', 'an unnamed source'))}, sites "
        f"{h.e(', '.join(map(str, meta.get('sites', []))) or 'none recorded')}.</p>",
        "<p><b>Fingerprint</b> (SHA-256 of the manifest its files were checked "
        "against; compare it with the one its trainers publish): "
        + (
            f"<code>{h.e(bundle.fingerprint)}</code>"
            if bundle.fingerprint
            else "<b>none: loaded with --trust-unverified-model, its files were not "
            "checked</b>"
        )
        + "</p>",
        h.table(counts),
        "<h3>Nested cross-validation metrics (95 % bootstrap CI)</h3>",
        h.table(ci) if len(ci) else "<p>not recorded</p>",
        "<h3>Calibration of the out-of-fold probabilities</h3>",
        _calibration(meta.get("calibration", {})),
        f"<h3>Conformal sets (alpha {conformal['alpha']})</h3>",
        "<p>Each class is in a subject's set unless its probability is below the "
        "class's threshold; out-of-fold coverage per class:</p>",
        h.table(coverage),
        "<h3>Out-of-distribution flag</h3>",
        f"<p>Distance to the nearest training class over "
        f"{ood.get('n_features', '?')} continuous features; flagged above 1.0, "
        f"which {100 * ood.get('training_flag_rate', float('nan')):.1f} % of "
        "cross-fitted training subjects exceed.</p>",
        "<h3>Made with</h3>",
        h.table(packages),
    ]
    return parts


def _subject(bundle, row: pd.Series, exp: Explanation, pos: int, top: int):
    pid = str(row.get("participant_id", f"row {pos + 1}"))
    session = row.get("session")
    label = pid + (f" {session}" if isinstance(session, str) and session else "")
    cls = str(row["predicted_class"])
    probs = pd.DataFrame([{c: row[f"p_{c}"] for c in bundle.classes}])
    flags = [
        _flag(
            bool(row["ood"]),
            f"OUT OF DISTRIBUTION (score {row['ood_score']:.2f})",
            f"in distribution (score {row['ood_score']:.2f})",
        ),
        _flag(
            bool(row["unseen_site"]),
            "SITE NOT SEEN IN TRAINING",
            "site seen in training",
        ),
    ]
    anchor = re.sub(r"[^A-Za-z0-9_-]", "_", label)
    return [
        f'<section id="s-{anchor}-{pos}">',
        f"<h3>{h.e(label)}: predicted {h.e(cls)}</h3>",
        h.table(probs),
        f"<p>Conformal set at alpha {bundle.alpha}: <b>{h.e(row['prediction_set'])}"
        f"</b>; p(ALS vs mimics) {row['p_als_vs_mimics']:.3f}; "
        + "; ".join(flags)
        + f"; modalities used: {h.e(row['modalities_used'] or 'none')}.</p>",
        _waterfall(exp, pos, cls, top),
        _against_controls(bundle, exp, pos, cls, min(top, 8)),
        "</section>",
    ]


def _value(v: float) -> str:
    return "not measured" if np.isnan(v) else f"{v:.3g}"


def _flag(on: bool, warning: str, fine: str) -> str:
    if on:
        return f'<span class="flag">{h.e(warning)}</span>'
    return f'<span class="ok">{h.e(fine)}</span>'


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


def _barh(labels: list[str], values: np.ndarray, xlabel: str) -> str:
    fig, ax = h.subplots(figsize=(7, 0.28 * len(labels) + 0.9))
    ax.barh(range(len(labels)), values, color="#557")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    return h.png(fig)


def _beeswarm(exp: Explanation, cls: str, features: list[str]) -> str:
    """One row per feature: each subject's SHAP value, coloured by its value's
    rank within the cohort (grey: missing)."""
    k = exp.classes.index(cls)
    rng = np.random.default_rng(0)
    fig, ax = h.subplots(figsize=(7, 0.32 * len(features) + 1))
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
    return h.png(fig)


def _waterfall(exp: Explanation, i: int, cls: str, top: int) -> str:
    """From the base probability, each of the top features' push, then the rest,
    on the probability scale 0-1 (red: towards ``cls``, blue: away)."""
    k = exp.classes.index(cls)
    contrib = exp.values[i, :, k]
    idx = list(np.argsort(-np.abs(contrib))[:top])
    labels = [f"{exp.features[j]} = {_value(exp.data.iloc[i, j])}" for j in idx]
    labels.append(f"{len(contrib) - len(idx)} other features")
    steps = [*contrib[idx], contrib.sum() - contrib[idx].sum()]
    base = float(exp.base_values[i, k])
    svg = _Svg(len(steps), f"p({cls}): base {base:.2f} -> {base + sum(steps):.2f}")
    start = base
    for r, step in enumerate(steps):
        color = "#c0392b" if step > 0 else "#2471a3"
        svg.label(r, labels[r])
        svg.bar(r, start, start + step, color)
        svg.text(r, max(start, start + step), f"{step:+.3f}")
        start += step
    svg.axis(0.0, 1.0, [base, start])
    return svg.img()


def _against_controls(bundle, exp: Explanation, i: int, cls: str, n: int) -> str:
    """The subject's most influential biomarkers against the training controls'
    2.5-97.5 % range (shaded) and median (tick); each row on its own scale."""
    ref = bundle.metadata["reference"]
    k = exp.classes.index(cls)
    chosen = []
    for j in np.argsort(-np.abs(exp.values[i, :, k])):
        f, stats = exp.features[j], ref.get(exp.features[j], {})
        value = exp.data.iloc[i, j]
        lo, hi = stats.get("controls_q025"), stats.get("controls_q975")
        if f.startswith("has_") or lo is None or hi is None or not hi > lo:
            continue
        if not np.isnan(value):
            chosen.append((f, float(value), stats))
        if len(chosen) == n:
            break
    if not chosen:
        return "<p>No biomarker with a control range to show.</p>"
    svg = _Svg(len(chosen), "key biomarkers vs training controls (95 % range)")
    for r, (f, value, st) in enumerate(chosen):
        lo, hi, mid = st["controls_q025"], st["controls_q975"], st["controls_q50"]
        pad = 0.25 * (hi - lo)
        left, right = min(lo, value) - pad, max(hi, value) + pad
        unit = bundle.schema.get(f, {}).get("unit", "")
        svg.label(r, f"{f} ({unit})" if unit else f)
        svg.band(r, (lo - left) / (right - left), (hi - left) / (right - left))
        svg.tick(r, (mid - left) / (right - left))
        inside = lo <= value <= hi
        svg.dot(r, (value - left) / (right - left), "#276227" if inside else "#c0392b")
        svg.text(r, 1.0, f"{value:.3g} (controls {lo:.3g}-{hi:.3g})")
    return svg.img()


class _Svg:
    """A small horizontal chart as SVG: a label column, then one row per item on a
    0-1 plot scale. Written by hand: a few kB per chart, no plotting library."""

    LABEL, PLOT, NOTE, ROW = 300, 330, 190, 20

    def __init__(self, rows: int, title: str):
        self.rows = rows
        self.parts = [
            f'<text x="4" y="14" font-weight="bold">{html.escape(title)}</text>'
        ]

    def _x(self, v: float) -> float:
        return self.LABEL + self.PLOT * float(np.clip(v, 0.0, 1.0))

    def _y(self, r: int) -> int:
        return 24 + self.ROW * r

    def label(self, r: int, text: str) -> None:
        self.parts.append(
            f'<text x="{self.LABEL - 6}" y="{self._y(r) + 14}" text-anchor="end">'
            f"{html.escape(text[:48])}</text>"
        )

    def bar(self, r: int, a: float, b: float, color: str) -> None:
        x0, x1 = sorted((self._x(a), self._x(b)))
        self.parts.append(
            f'<rect x="{x0:.1f}" y="{self._y(r) + 3}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{self.ROW - 6}" fill="{color}"/>'
        )

    def band(self, r: int, a: float, b: float) -> None:
        self.bar(r, a, b, "#cde")

    def tick(self, r: int, v: float) -> None:
        x = self._x(v)
        self.parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self._y(r) + 2}" '
            f'y2="{self._y(r) + self.ROW - 2}" stroke="#357"/>'
        )

    def dot(self, r: int, v: float, color: str) -> None:
        self.parts.append(
            f'<circle cx="{self._x(v):.1f}" cy="{self._y(r) + self.ROW / 2}" r="5" '
            f'fill="{color}"/>'
        )

    def text(self, r: int, v: float, text: str) -> None:
        self.parts.append(
            f'<text x="{self._x(v) + 6:.1f}" y="{self._y(r) + 14}" fill="#333">'
            f"{html.escape(text)}</text>"
        )

    def axis(self, lo: float, hi: float, marks: list[float]) -> None:
        y = self._y(self.rows) + 4
        for v in (lo, (lo + hi) / 2, hi):
            self.parts.append(
                f'<text x="{self._x(v):.1f}" y="{y + 12}" text-anchor="middle">'
                f"{v:.1f}</text>"
            )
        for v in marks:  # the base value and the subject's probability
            self.tick(-1, v)
            x = self._x(v)
            self.parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="20" y2="{y}" '
                'stroke="#999" stroke-dasharray="3,3"/>'
            )

    def img(self) -> str:
        width = self.LABEL + self.PLOT + self.NOTE
        height = self._y(self.rows) + 20
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" font-family="sans-serif" font-size="11">'
            + "".join(self.parts)
            + "</svg>"
        )
        data = base64.b64encode(svg.encode()).decode()
        return f'<img alt="chart" src="data:image/svg+xml;base64,{data}">'


def _calibration(cal: dict) -> str:
    if not cal:
        return "<p>not recorded</p>"
    fig, ax = h.subplots(figsize=(5, 4.5))
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
    return h.png(fig)
