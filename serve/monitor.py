"""Monitoring over visits with the locked model: ``python -m serve monitor``.

For each participant, every visit is scored (diagnosis probabilities, conformal
set, out-of-distribution flag) and each key marker is followed: its value at each
visit against the training controls' 2.5-97.5 % band, against the expected course
of ALS from the participant's first visit, and the participant's own rate per year
(least squares over its visits, with a t interval from three visits).

Flags, each with its reason in ``flags``:

- ``fast_progression``: ALSFRS-R falling faster than 1.26 points/month, the mean
  minus one SD of the PRO-ACT-derived slopes (-0.69 +- 0.57; Efron & Hastie 2016,
  refs#long): about the fastest sixth of trial patients.
- ``inconsistent_visit``: a visit whose predicted class differs from the class
  predicted at most of the participant's other visits, or whose marker value lies
  more than 4 robust SDs from the line through the participant's other visits (the
  SD of those leave-one-out residuals pooled over the cohort; from 3 visits).

Visits are ordered by ``months_since_baseline`` (``sessions.tsv``); without it, by
session label, and the output says so. A visit that could not be scored keeps its
row with the reason in ``error``; a missing visit is simply absent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common import html as h
from common.schema import VISIT_TIME
from common.statistics import subject_slopes
from common.table_io import output_path, write_table
from serve.bundle import Bundle, load_source
from serve.config import MonitorConfig
from serve.predict import load_input, prepare_input, score_frame

log = logging.getLogger("serve")

#: marker -> (label, expected ALS change per month, "abs" points or "rel" fraction,
#: source of the expectation).
MARKERS: dict[str, tuple[str, float | None, str, str]] = {
    "alsfrs_r": (
        "ALSFRS-R (points)",
        -0.69,
        "abs",
        "PRO-ACT-derived mean, Efron & Hastie 2016",
    ),
    "fvc_pct": ("FVC (% predicted)", -2.0, "abs", "uncited estimate"),
    "mrc_sum": ("MRC sum", -0.4, "abs", "uncited estimate"),
    "nfl_pg_ml": ("serum NfL (pg/mL)", 0.0, "rel", "stable (Benatar 2020, direction)"),
    "fs_total_gray_mm3": ("total grey matter (mm3)", -0.02 / 12, "rel", "uncited"),
    "fs_m1_precuneus_ratio": ("M1/precuneus GM ratio", None, "rel", ""),
}
FAST_ALSFRS_PER_MONTH = -0.69 - 0.57
OUTLIER_SD = 4.0
TIME = VISIT_TIME


@dataclass
class Monitoring:
    """One row per subject-visit (``visits``) and what could not be done (``notes``)."""

    visits: pd.DataFrame
    rates: pd.DataFrame
    notes: list[str]
    markers: list[str]


def run_monitor(cfg: MonitorConfig) -> tuple[Path, Monitoring]:
    """Load ``cfg``'s model and input; write the table or the HTML to ``cfg.out``."""
    out = output_path(
        cfg.out, overwrite=cfg.overwrite, types=(".html", ".csv", ".parquet", ".tsv")
    )
    bundle = load_source(cfg.source)
    table = load_input(cfg.cohort, cfg.features, bundle.mapping.text_columns())
    result = monitor(bundle, table, str(cfg.cohort or cfg.features))
    if out.suffix.lower() == ".html":
        source = str(cfg.cohort or cfg.features)
        write_html(bundle, result, out, cfg.max_subjects, source, cfg.overwrite)
    else:
        write_table(result.visits, out, overwrite=cfg.overwrite)
    return out, result


def monitor(bundle: Bundle, table: pd.DataFrame, source: str) -> Monitoring:
    """Score every visit of ``table`` and follow its key markers (module docstring)."""
    notes: list[str] = []
    table, problems = bundle.canonical(table.reset_index(drop=True), source)
    if "participant_id" not in table.columns:
        raise ValueError(
            f"{source}: no participant_id column, so visits cannot be grouped by "
            "participant; add one (python -m features extract writes it)."
        )
    frame, errors = prepare_input(bundle, table, source, problems=problems)
    preds = score_frame(bundle, table, frame, errors)
    if "session" not in preds:
        preds["session"] = ""
    if TIME in table.columns:
        preds[TIME] = pd.to_numeric(table[TIME], errors="coerce").to_numpy()
        missing = preds[TIME].isna()
        if missing.any():
            notes.append(
                f"{int(missing.sum())} visit(s) without {TIME}: ordered after the "
                "timed visits by session label and left out of the rates"
            )
    else:
        preds[TIME] = np.nan
        notes.append(
            f"no {TIME} column (sessions.tsv): visits ordered by session label; no "
            "rates per year"
        )
    markers = [m for m in MARKERS if m in table.columns]
    for m in MARKERS:
        if m not in table.columns:
            notes.append(f"marker {m} not in the input: not followed")
    ref = bundle.metadata.get("reference", {})
    for m in markers:
        preds[m] = pd.to_numeric(table[m], errors="coerce").to_numpy()
        lo, hi = (ref.get(m, {}).get(k) for k in ("controls_q025", "controls_q975"))
        if lo is None or hi is None:
            preds[f"{m}_in_control_band"] = pd.NA
            notes.append(f"marker {m}: the model has no control range for it")
        else:
            inside = (preds[m] >= lo) & (preds[m] <= hi)
            preds[f"{m}_in_control_band"] = inside.where(preds[m].notna())
    preds = preds.sort_values(
        ["participant_id", TIME, "session"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    preds.insert(2, "visit", preds.groupby("participant_id").cumcount() + 1)
    rates = _rates(preds, markers)
    preds = preds.merge(rates, on="participant_id", how="left")
    _flag(preds, markers)
    for note in notes:
        log.warning("monitor: %s", note)
    return Monitoring(preds, rates, notes, markers)


def _rates(preds: pd.DataFrame, markers: list[str]) -> pd.DataFrame:
    """Per participant and marker: rate per year with its interval."""
    out = pd.DataFrame({"participant_id": preds["participant_id"].unique()})
    for m in markers:
        d = preds.dropna(subset=[m, TIME])
        cols = [f"{m}_per_year", f"{m}_per_year_ci_low", f"{m}_per_year_ci_high"]
        if d.empty:
            out[cols] = np.nan
            continue
        s = subject_slopes(
            d[m].to_numpy(float),
            d[TIME].to_numpy(float),
            d["participant_id"].to_numpy(),
        ).set_index("subject")
        for c, src in zip(cols, ("slope_per_year", "ci_low", "ci_high"), strict=True):
            out[c] = out["participant_id"].map(s[src]).astype(float)
    return out


def _flag(preds: pd.DataFrame, markers: list[str]) -> None:
    reasons: list[list[str]] = [[] for _ in range(len(preds))]
    fast = np.zeros(len(preds), dtype=bool)
    if "alsfrs_r_per_year" in preds:
        per_month = preds["alsfrs_r_per_year"] / 12
        fast = (per_month < FAST_ALSFRS_PER_MONTH).fillna(False).to_numpy(bool)
        for i in np.flatnonzero(fast):
            reasons[i].append(
                f"fast progression: ALSFRS-R {per_month.iloc[i]:.2f} points/month "
                f"(< {FAST_ALSFRS_PER_MONTH:.2f})"
            )
    odd = np.zeros(len(preds), dtype=bool)
    for rows in preds.groupby("participant_id").groups.values():
        idx = np.asarray(rows)
        cls = preds.loc[idx, "predicted_class"]
        for i in idx:
            others = cls.drop(i).dropna()
            if len(others) >= 2 and pd.notna(cls[i]):
                usual = others.mode()
                if len(usual) == 1 and cls[i] != usual.iloc[0]:
                    odd[i] = True
                    reasons[i].append(
                        f"predicted {cls[i]}, but {usual.iloc[0]} at most other visits"
                    )
    for m in markers:
        relative = MARKERS[m][2] == "rel"  # multiplicative noise: on the log scale
        resid = _loo_residuals(preds, m, log=relative)
        sd = 1.4826 * np.nanmedian(np.abs(resid)) if np.isfinite(resid).any() else 0
        if not sd > 0:
            continue
        for i in np.flatnonzero(np.abs(np.nan_to_num(resid)) > OUTLIER_SD * sd):
            odd[i] = True
            scale = "log " if relative else ""
            reasons[i].append(
                f"{m} = {preds.loc[i, m]:.4g} is {resid[i] / sd:+.1f} robust SDs "
                f"({scale}scale) from the line through the other visits"
            )
    preds["fast_progression"] = fast
    preds["inconsistent_visit"] = odd
    preds["flags"] = ["; ".join(r) for r in reasons]


def _loo_residuals(preds: pd.DataFrame, m: str, log: bool = False) -> np.ndarray:
    """Each visit's value (its log with ``log``) minus the line through the
    participant's other timed visits (NaN with fewer than 2 others)."""
    out = np.full(len(preds), np.nan)
    ok = preds[m].notna() & preds[TIME].notna() & (preds[m] > 0 if log else True)
    for _, rows in preds[ok].groupby("participant_id").groups.items():
        idx = np.asarray(rows)
        if len(idx) < 3:
            continue
        t, y = preds.loc[idx, TIME].to_numpy(float), preds.loc[idx, m].to_numpy(float)
        y = np.log(y) if log else y
        for j, i in enumerate(idx):
            keep = np.arange(len(idx)) != j
            if np.ptp(t[keep]) == 0:
                continue
            b, a = np.polyfit(t[keep], y[keep], 1)
            out[i] = y[j] - (a + b * t[j])
    return out


def write_html(
    bundle: Bundle,
    result: Monitoring,
    out: Path,
    max_subjects: int,
    source: str,
    overwrite: bool = False,
) -> Path:
    """The self-contained monitoring page: a summary, then one section per
    participant (the first ``max_subjects``)."""
    v = result.visits
    ids = list(dict.fromkeys(v["participant_id"]))
    flagged = v.groupby("participant_id")[["fast_progression", "inconsistent_visit"]]
    counts = flagged.any().sum()
    parts = [
        "<h1>ALS and mimics: monitoring over visits</h1>",
        f"<p>Model <b>{h.e(bundle.version)}</b>; input {h.e(source)}: {len(ids)} "
        f"participants, {len(v)} visits, {int((v['error'] == '').sum())} scored. "
        f"Fast progression: {int(counts['fast_progression'])} participant(s); "
        f"a visit inconsistent with the others: {int(counts['inconsistent_visit'])}."
        "</p>",
    ]
    if bundle.metadata.get("trained_on_simulated_data"):
        parts.append(
            '<p class="warn">This model was trained on a SIMULATED cohort (no real '
            "patients). Research use only; not for clinical decisions.</p>"
        )
    parts.append(
        "<p>Grey band: the training controls' 2.5-97.5 % range. Dashed line: the "
        "expected course of ALS from the first visit ("
        + "; ".join(
            f"{h.e(label)} {rate:+g}{'/month' if kind == 'abs' else ' x value/month'}"
            f" ({h.e(src)})"
            for label, rate, kind, src in MARKERS.values()
            if rate is not None
        )
        + ").</p>"
    )
    for note in result.notes:
        parts.append(f'<p class="flag">{h.e(note)}</p>')
    if len(ids) > max_subjects:
        parts.append(
            f"<p>The first {max_subjects} of {len(ids)} participants have a section "
            "(raise --max-subjects); the CSV output has every visit.</p>"
        )
    for pid in ids[:max_subjects]:
        parts += _participant(bundle, v[v["participant_id"] == pid], result.markers)
    return h.write_page(out, "ALS and mimics monitoring", parts, overwrite=overwrite)


def _participant(bundle: Bundle, v: pd.DataFrame, markers: list[str]) -> list[str]:
    pid = v["participant_id"].iloc[0]
    probs = [f"p_{c}" for c in bundle.classes]
    shown = v[["visit", "session", TIME, *probs, "predicted_class", "prediction_set",
               "ood", "flags", "error"]]  # fmt: skip
    parts = [f"<section><h2>{h.e(pid)}</h2>", h.table(shown)]
    rates = []
    for m in markers:
        r = v.iloc[0][
            [f"{m}_per_year", f"{m}_per_year_ci_low", f"{m}_per_year_ci_high"]
        ]
        if pd.notna(r.iloc[0]):
            ci = (
                f" [{r.iloc[1]:.3g}, {r.iloc[2]:.3g}]" if pd.notna(r.iloc[1]) else
                " (two visits: no interval)"
            )  # fmt: skip
            rates.append(f"{MARKERS[m][0]}: {r.iloc[0]:+.3g}/year{ci}")
    if rates:
        parts.append("<p>Rates: " + h.e("; ".join(rates)) + "</p>")
    parts.append(_trajectories(bundle, v, markers))
    parts.append("</section>")
    return parts


def _trajectories(bundle: Bundle, v: pd.DataFrame, markers: list[str]) -> str:
    shown = [m for m in markers if v[m].notna().any()]
    if not shown:
        return "<p>No key marker measured at any visit.</p>"
    fig, axes = h.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.2))
    axes = np.atleast_1d(axes)
    t = v[TIME].to_numpy(float)
    x = t if np.isfinite(t).all() else v["visit"].to_numpy(float)
    ref = bundle.metadata.get("reference", {})
    for ax, m in zip(axes, shown, strict=True):
        label, rate, kind, _ = MARKERS[m]
        lo, hi = (ref.get(m, {}).get(k) for k in ("controls_q025", "controls_q975"))
        if lo is not None and hi is not None:
            ax.axhspan(lo, hi, color="#dddddd", zorder=0)
        y = v[m].to_numpy(float)
        ok = np.isfinite(y)
        ax.plot(x[ok], y[ok], "o-", color="#1f4e79")
        odd = v["inconsistent_visit"].to_numpy(bool) & ok
        ax.plot(x[odd], y[odd], "o", color="#c0392b")
        if rate is not None and ok.any() and np.isfinite(t).all():
            first = np.flatnonzero(ok)[0]
            span = np.array([x[first], x.max()])
            step = rate * (span - x[first])
            course = y[first] + step if kind == "abs" else y[first] * (1 + step)
            ax.plot(span, course, "--", color="#922")
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("months" if np.isfinite(t).all() else "visit", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return h.png(fig)
