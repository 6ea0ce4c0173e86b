"""The HTML report of an analysis plan: one section per measure, with its table and
its figures (box and strip plot per group, scatter with the fitted line, ROC curve
of a single marker, forest plot of coefficients, frequencies of a finding).

Self-contained: figures are base64 PNG, there is no script and no request.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import html as h
from common.statistics import marker_direction, roc_points

#: Figures drawn per measure at most (the CSV holds every estimate).
MAX_FIGURES = 12
_SHOWN = [
    "variable",
    "term",
    "group_a",
    "group_b",
    "stratum",
    "n",
    "value_a",
    "value_b",
]
_SHOWN += ["estimate", "ci_low", "ci_high", "statistic", "effect_size", "p"]
_SHOWN += ["p_adjusted", "note"]


def write_report(
    analysis, out: Path, *, source: str, simulated: bool, rows: int
) -> Path:
    """Write the report of ``analysis`` (a :class:`training.analysis.run.Analysis`)."""
    plan = analysis.plan
    title = plan.settings.heading
    parts = [
        f"<h1>{h.e(title)}</h1>",
        f"<p>Plan <b>{h.e(plan.name)}</b> ({h.e(plan.path.name)})"
        + (f", reproducing {h.e(plan.settings.source)}" if plan.settings.source else "")
        + f"; input {h.e(source)}: {rows} rows. Values are "
        + (
            "ComBat-harmonised (fitted on the controls)"
            if plan.settings.harmonize
            else "raw (not harmonised)"
        )
        + ". Intervals are 95 %; p_adjusted is Benjamini-Hochberg within each "
        "family.</p>",
    ]
    if plan.settings.description:
        parts.append(f"<p>{h.e(plan.settings.description)}</p>")
    if simulated:
        parts.append(
            '<p class="warn">SIMULATED cohort (no real patients): these statistics '
            "describe the simulation, calibrated to published figures, not any "
            "clinic.</p>"
        )
    if analysis.notes:
        parts.append("<h2>Not computed or adjusted</h2><ul>")
        parts += [f'<li class="flag">{h.e(n)}</li>' for n in analysis.notes]
        parts.append("</ul>")
    else:
        parts.append('<p class="ok">Every estimate of the plan was computed.</p>')
    for m in plan.measures:
        frame = analysis.measure(m.name)
        shown = [c for c in _SHOWN if c in frame.columns and frame[c].notna().any()]
        if (frame["stratum"] == "all").all():
            shown.remove("stratum")
        parts.append(
            f'<section id="{h.e(m.name)}"><h2>{h.e(m.get("title", m.name))}</h2>'
        )
        covs = m.get("covariates", [])
        parts.append(
            f"<p>Test <b>{h.e(m.test)}</b>"
            + (f", adjusted for {h.e(', '.join(covs))}" if covs else "")
            + f"; family {h.e(m.get('family', m.name))}; {len(frame)} estimates"
            + (
                f" ({h.e(frame['estimate_name'].dropna().iloc[0])})"
                if frame["estimate_name"].notna().any()
                else ""
            )
            + ".</p>"
        )
        parts.append(f'<div class="scroll">{h.table(_readable(frame[shown]))}</div>')
        figures = [f for f in analysis.figures if f.measure == m.name]
        for fig in figures[:MAX_FIGURES]:
            parts.append(_FIGURES[fig.kind](fig))
        if len(figures) > MAX_FIGURES:
            parts.append(
                f"<p>The first {MAX_FIGURES} of {len(figures)} figures are shown.</p>"
            )
        parts.append("</section>")
    return h.write_page(out, title, parts, overwrite=True)  # the caller's temp file


def _readable(frame):
    """Numbers to 4 significant digits, p-values to 2 (so 1e-30 is not 0.000)."""
    out = frame.astype(object)
    for c in frame.columns:
        if frame[c].dtype.kind == "f":
            digits = ".2g" if c.startswith("p") else ".4g"
            out[c] = [f"{v:{digits}}" if v == v else "" for v in frame[c]]
    return out


def _groups(fig) -> str:
    values = fig.data["values"]
    fig_, ax = h.subplots(figsize=(1.3 * len(values) + 2.2, 3.2))
    ax.boxplot(list(values.values()), showfliers=False)
    ax.set_xticks(range(1, len(values) + 1), list(values))
    rng = np.random.default_rng(0)
    for k, v in enumerate(values.values(), start=1):
        ax.scatter(
            k + rng.uniform(-0.15, 0.15, len(v)), v, s=6, alpha=0.5, color="#557"
        )
    ax.set_title(fig.title, fontsize=9)
    return h.png(fig_)


def _bars(fig) -> str:
    values = fig.data["values"]
    fig_, ax = h.subplots(figsize=(1.2 * len(values) + 2.2, 2.8))
    freq = [float(np.mean(v)) for v in values.values()]
    ax.bar(list(values), freq, color="#557")
    for k, (v, f) in enumerate(zip(values.values(), freq, strict=True)):
        ax.text(
            k, f, f"{int(np.sum(v))}/{len(v)}", ha="center", va="bottom", fontsize=8
        )
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("frequency")
    ax.set_title(fig.title, fontsize=9)
    return h.png(fig_)


def _roc(fig) -> str:
    (na, neg), (nb, pos) = fig.data["values"].items()
    direction = fig.data["direction"]
    if direction == "auto":
        direction = marker_direction(neg, pos)
    fpr, tpr, _ = roc_points(neg, pos, direction)
    fig_, ax = h.subplots(figsize=(3.4, 3.4))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.plot(fpr, tpr, color="#557")
    ax.set_xlabel(f"1 - specificity ({na})")
    ax.set_ylabel(f"sensitivity ({nb})")
    ax.set_title(fig.title, fontsize=9)
    return h.png(fig_)


def _scatter(fig) -> str:
    x, y = fig.data["x"], fig.data["y"]
    fig_, ax = h.subplots(figsize=(4.2, 3.4))
    labels = fig.data["label"]
    for lab in sorted(set(labels)):
        k = labels == lab
        ax.scatter(x[k], y[k], s=8, alpha=0.6, label=lab)
    if len(x) > 2 and np.std(x) > 0:
        slope, icpt = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 20)
        ax.plot(grid, icpt + slope * grid, color="black", lw=1)
    ax.set_xlabel(fig.data["x_name"])
    ax.set_ylabel(fig.data["y_name"])
    r = fig.data.get("estimate")
    ax.set_title(
        fig.title + (f"; r = {r:.2f}" if r is not None and np.isfinite(r) else ""),
        fontsize=9,
    )
    if len(set(labels)) > 1:
        ax.legend(fontsize=7)
    return h.png(fig_)


def _forest(fig) -> str:
    rows = [r for r in fig.data["rows"] if np.isfinite(r.get("estimate", np.nan))]
    if not rows:
        return "<p>No coefficient could be estimated.</p>"
    fig_, ax = h.subplots(figsize=(5.5, 0.4 * len(rows) + 1.0))
    for k, r in enumerate(rows):
        ax.plot([r["ci_low"], r["ci_high"]], [k, k], color="#557")
        ax.plot(r["estimate"], k, "o", color="#557")
    ax.axvline(1.0 if fig.data["log"] else 0.0, color="grey", ls="--", lw=0.8)
    if fig.data["log"]:
        ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [r["term"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel(
        "odds ratio (95 % CI)" if fig.data["log"] else "coefficient (95 % CI)"
    )
    ax.set_title(fig.title, fontsize=9)
    return h.png(fig_)


def _table(fig) -> str:
    counts = fig.data["table"]
    return f"<h3>{h.e(fig.title)}</h3>" + h.table(counts.reset_index())


_FIGURES = {
    "groups": _groups,
    "bars": _bars,
    "roc": _roc,
    "scatter": _scatter,
    "forest": _forest,
    "table": _table,
}
