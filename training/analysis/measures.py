"""What each test of an analysis plan computes on the rows of one stratum.

Every runner takes a :class:`Context` (the plan, the measure, its rows and
settings) and returns a :class:`Computed`: tidy result rows
(:data:`training.analysis.statistics.RESULT_COLUMNS`), the data of its figures and,
for some tests, a per-subject table. Runners change nothing outside what they
return; :mod:`training.analysis.registry` names the runner of each test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from common.statistics import subject_slopes, wilson
from training.analysis import longitudinal as lg
from training.analysis import statistics as st

if TYPE_CHECKING:
    from training.analysis.plans import Measure, Plan

#: Fewest subjects per group (and per stratum) a measure accepts.
MIN_GROUP = 3


@dataclass(frozen=True)
class Figure:
    """The data of one figure; ``kind`` is a drawer of :mod:`training.analysis.report`
    (groups, bars, roc, scatter, forest or table)."""

    measure: str
    title: str
    kind: str
    data: dict


@dataclass(frozen=True)
class Context:
    """One measure in one stratum: what a runner reads."""

    plan: Plan
    measure: Measure
    rows: pd.DataFrame  # the stratum's rows; ``_group`` holds the group names
    covariates: list[str]
    n_boot: int
    rng: np.random.Generator
    stratum: str


@dataclass
class Computed:
    """What a runner returns."""

    rows: list[dict] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    subjects: pd.DataFrame | None = None  # one row per subject, when the test has it


# ---- helpers -----------------------------------------------------------------------


def _numbers(table: pd.DataFrame, columns) -> pd.DataFrame:
    return table[list(columns)].apply(pd.to_numeric, errors="coerce")


def complete(sub: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, str]:
    """The rows of ``sub`` with every one of ``columns`` (as numbers), and a note
    saying how many were left out."""
    values = _numbers(sub, columns)
    ok = values.notna().all(axis=1).to_numpy()
    dropped = int((~ok).sum())
    note = f"{dropped} row(s) without {' / '.join(columns)} left out" if dropped else ""
    return sub[ok].assign(**{c: values.loc[ok, c] for c in columns}), note


def join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _too_few(values: dict[str, np.ndarray]) -> str:
    small = {g: len(v) for g, v in values.items() if len(v) < MIN_GROUP}
    if not small:
        return ""
    return "not computed: " + ", ".join(
        f"{g} has {n} subject(s) with values" for g, n in small.items()
    )


def _cutoffs(m: Measure, reference: np.ndarray) -> list[tuple[str, float]]:
    out = []
    for cut in m.get("cutoffs", []):
        if isinstance(cut, str):
            p = float(cut.split(":")[1])
            out.append(
                (f"reference {p:g}th centile", float(np.percentile(reference, p)))
            )
        else:
            out.append(("fixed cutoff", float(cut)))
    return out


# ---- group comparisons: one statistic per test --------------------------------------

#: A group test's statistic: (context, complete rows, variable, values per group,
#: group names) -> result rows.
Statistic = Callable[
    [Context, pd.DataFrame, str, dict[str, np.ndarray], list[str]], list[dict]
]


def ancova(c: Context, data, v, values, names) -> list[dict]:
    return st.ancova(
        data[v].to_numpy(float),
        data["_group"].to_numpy(),
        names,
        data[c.covariates],
    )


def welch(c: Context, data, v, values, names) -> list[dict]:
    return st.welch(values[names[0]], values[names[1]])


def mann_whitney(c: Context, data, v, values, names) -> list[dict]:
    return st.mann_whitney(values[names[0]], values[names[1]], c.n_boot, c.rng)


def kruskal(c: Context, data, v, values, names) -> list[dict]:
    return st.kruskal(values, c.n_boot, c.rng)


def fisher(c: Context, data, v, values, names) -> list[dict]:
    return st.fisher(values[names[0]], values[names[1]])


def auc(c: Context, data, v, values, names) -> list[dict]:
    return st.roc_auc(
        values[names[0]],
        values[names[1]],
        c.measure.get("direction", "auto"),
        _cutoffs(c.measure, values[names[0]]),
        c.n_boot,
        c.rng,
    )


def groups_runner(statistic: Statistic, figure: str) -> Callable[[Context], Computed]:
    """The runner of a group test: ``statistic`` per variable, one ``figure`` each."""

    def run(c: Context) -> Computed:
        m, out = c.measure, Computed()
        names = [g for g, _ in m.groups()]
        for v in c.plan.columns(c.rows, m, "variables"):
            data, note = complete(c.rows, [v, *c.covariates])
            values = {
                g: data.loc[data["_group"] == g, v].to_numpy(float) for g in names
            }
            head = {
                "variable": v,
                "group_a": names[0],
                "group_b": names[-1] if len(names) == 2 else "",
            }
            problem = _too_few(values)
            if problem:
                out.rows.append({**head, "note": join(problem, note)})
                continue
            new = statistic(c, data, v, values, names)
            out.rows += [
                {**head, **r, "note": join(r.get("note", ""), note)} for r in new
            ]
            out.figures.append(
                Figure(
                    m.name,
                    f"{v} ({c.stratum})",
                    figure,
                    {"values": values, "direction": m.get("direction", "auto")},
                )
            )
        return out

    return run


# ---- association ---------------------------------------------------------------------


def correlation(c: Context) -> Computed:
    m, out = c.measure, Computed()
    method = m.get("method", "pearson")
    for x in c.plan.columns(c.rows, m, "x"):
        for y in c.plan.columns(c.rows, m, "y"):
            if x == y:
                continue
            data, note = complete(c.rows, [x, y, *c.covariates])
            head = {"variable": f"{x} ~ {y}", "term": "correlation"}
            if len(data) < MIN_GROUP + len(c.covariates) + 1:
                text = f"not computed: {len(data)} complete row(s)"
                out.rows.append({**head, "n": len(data), "note": join(text, note)})
                continue
            new = st.correlation(
                data[x].to_numpy(float),
                data[y].to_numpy(float),
                method,
                data[c.covariates] if c.covariates else None,
            )
            out.rows += [
                {**head, **r, "note": join(r.get("note", ""), note)} for r in new
            ]
            out.figures.append(
                Figure(
                    m.name,
                    f"{y} vs {x} ({c.stratum})",
                    "scatter",
                    {
                        "x": data[x].to_numpy(float),
                        "y": data[y].to_numpy(float),
                        "x_name": x,
                        "y_name": y,
                        "label": data[c.plan.label].astype(str).to_numpy(),
                        "estimate": out.rows[-1].get("estimate"),
                    },
                )
            )
    return out


def regression(c: Context) -> Computed:
    """``ols`` or ``logit`` (the measure's test) of the outcome on the predictors
    and covariates; logit's outcome defaults to membership of the second group."""
    m = c.measure
    predictors = c.plan.columns(c.rows, m, "predictors")
    terms = predictors + [x for x in c.covariates if x not in predictors]
    if m.get("outcome"):
        (outcome,) = c.plan.columns(c.rows, m, "outcome")
        data, note = complete(c.rows, [outcome, *terms])
        y = data[outcome].to_numpy(float)
    else:
        names = [g for g, _ in m.groups()]
        outcome = f"{names[1]} (vs {names[0]})"
        data, note = complete(c.rows, terms)
        y = (data["_group"] == names[1]).to_numpy(float)
    X = data[terms].astype(float)
    if m.get("standardize", False):
        X = (X - X.mean()) / X.std(ddof=1)
        if m.test == "ols":
            y = (y - y.mean()) / y.std(ddof=1)
    head = {"variable": outcome}
    if len(data) < len(terms) + MIN_GROUP + 1:
        text = f"not computed: {len(data)} complete row(s) for {len(terms)} term(s)"
        return Computed(
            [{**head, "term": "model", "n": len(data), "note": join(text, note)}]
        )
    new = st.ols(y, X) if m.test == "ols" else st.logit(y, X)
    rows = [{**head, **r, "note": join(r.get("note", ""), note)} for r in new]
    if m.get("standardize", False):
        per_sd = {"coefficient": "standardised coefficient"}
        per_sd["odds ratio per unit"] = "odds ratio per SD"
        for r in rows:
            r["estimate_name"] = per_sd.get(
                r.get("estimate_name"), r.get("estimate_name")
            )
    figure = Figure(
        m.name,
        f"{outcome} ({c.stratum})",
        "forest",
        {
            "rows": [r for r in rows if r.get("term") != "model"],
            "log": m.test == "logit",
        },
    )
    return Computed(rows, [figure])


# ---- criteria ------------------------------------------------------------------------


def efns_pns(c: Context) -> Computed:
    """Each subject's EFNS/PNS 2010 category, and the fraction of each group in
    each electrodiagnostic grade and category (Wilson intervals), every grade and
    category shown even when no subject has it."""
    from training.criteria import CATEGORIES, GRADES, efns_pns_2010

    label = c.plan.label
    subjects = efns_pns_2010(c.rows, label=label)
    if len(c.measure.get("strata", ["all"])) > 1:  # one table over the strata
        subjects.insert(0, "stratum", c.stratum)
    out = Computed(subjects=subjects)
    for column, levels in (("electrodiagnostic", GRADES), ("category", CATEGORIES)):
        # every level is shown, a zero count included (a category no one met
        # is a finding, not a missing row)
        counts = pd.crosstab(subjects[column], subjects[label]).reindex(
            list(levels), fill_value=0
        )
        for dx in counts.columns:
            n = int(counts[dx].sum())
            for cat in counts.index:
                k = int(counts.loc[cat, dx])
                lo, hi = wilson(k, n)
                out.rows.append(
                    {
                        "variable": column,
                        "term": cat,
                        "group_a": dx,
                        "n": n,
                        "estimate": k / n,
                        "estimate_name": "fraction of the group",
                        "ci_low": lo,
                        "ci_high": hi,
                        "note": f"{k} of {n}",
                    }
                )
        out.figures.append(
            Figure(
                c.measure.name,
                f"{column} by {label} ({c.stratum})",
                "table",
                {"table": counts},
            )
        )
    return out


# ---- repeated visits -----------------------------------------------------------------


def _with_groups(c: Context) -> tuple[list[str], pd.DataFrame]:
    names = [g for g, _ in c.measure.groups()] or ["all"]
    rows = c.rows if "_group" in c.rows else c.rows.assign(_group="all")
    return names, rows


def mixed(c: Context) -> Computed:
    """Linear mixed model per variable (random intercept and slope per subject,
    group x time), and each subject's own slope."""
    plan, m, out = c.plan, c.measure, Computed()
    names, rows = _with_groups(c)
    slopes_of = []
    for v in plan.columns(rows, m, "variables"):
        data, note = complete(rows, [v, plan.time, *c.covariates])
        head = {"variable": v}
        visits = data.groupby(plan.subject)[plan.time].transform("size")
        if data[plan.subject].nunique() < MIN_GROUP or visits.max() < 2:
            text = "not computed: fewer than 3 subjects or no repeated visits"
            out.rows.append({**head, "note": join(text, note)})
            continue
        new = lg.mixed_model(
            data[v].to_numpy(float),
            data[plan.time].to_numpy(float),
            data[plan.subject].astype(str).to_numpy(),
            data["_group"].to_numpy(),
            names,
            data[c.covariates],
        )
        out.rows += [{**head, **r, "note": join(r.get("note", ""), note)} for r in new]
        slopes = subject_slopes(
            data[v].to_numpy(float),
            data[plan.time].to_numpy(float),
            data[plan.subject].astype(str).to_numpy(),
            plan.settings.per_year,
        ).rename(columns={"subject": plan.subject})
        groups = data.groupby(plan.subject)["_group"].first()
        slopes.insert(1, "group", slopes[plan.subject].map(groups).to_numpy())
        slopes.insert(0, "stratum", c.stratum)
        slopes.insert(0, "variable", v)
        slopes_of.append(slopes)
    if slopes_of:
        out.subjects = pd.concat(slopes_of, ignore_index=True)
    return out


def change(c: Context) -> Computed:
    """First vs last visit per group: paired tests, annual rate, standardised
    response mean and trial sizes."""
    plan, m, out = c.plan, c.measure, Computed()
    names, rows = _with_groups(c)
    for v in plan.columns(rows, m, "variables"):
        data, note = complete(rows, [v, plan.time, *c.covariates])
        head = {"variable": v}
        for g in names:
            pairs = _first_and_last(data[data["_group"] == g], plan, v)
            if len(pairs) < MIN_GROUP:
                text = f"not computed: {len(pairs)} subject(s) of {g} with two visits"
                out.rows.append({**head, "group_a": g, "note": join(text, note)})
                continue
            years = (pairs["t_last"] - pairs["t_first"]) / plan.settings.per_year
            new = lg.change(pairs["first"], pairs["last"], years.to_numpy())
            out.rows += [{**head, "group_a": g, **r, "note": note} for r in new]
            out.figures.append(
                Figure(
                    m.name,
                    f"{v}, {g}: baseline and last visit ({c.stratum})",
                    "groups",
                    {"values": {"baseline": pairs["first"].to_numpy(),
                                "last visit": pairs["last"].to_numpy()}},
                )
            )  # fmt: skip
    return out


def _first_and_last(data: pd.DataFrame, plan: Plan, v: str) -> pd.DataFrame:
    """Per subject: the value at its first and at its last visit (by time), for
    subjects whose last visit is later than the first."""
    ordered = data.sort_values(plan.time)
    by = ordered.groupby(plan.subject)
    pairs = pd.DataFrame(
        {
            "first": by[v].first(),
            "last": by[v].last(),
            "t_first": by[plan.time].first(),
            "t_last": by[plan.time].last(),
        }
    )
    return pairs[pairs["t_last"] > pairs["t_first"]]
