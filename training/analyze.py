"""``python -m training analyze``: run an analysis plan on a cohort.

:func:`run_plan` turns a checked :class:`~training.plans.Plan` and a features
table into one tidy row per estimate (:data:`training.statistics.RESULT_COLUMNS`)
plus the data each figure of the report needs; :func:`run` reads the inputs,
writes ``results.csv``, one CSV per measure, ``report.html`` and the plan itself
into ``--out`` (each file atomically, nothing existing replaced without
``--overwrite``), and logs them to MLflow when a tracking URI is given.

Missing values are handled per estimate: each uses the rows with every value it
needs (complete cases) and says how many rows that left out in its note.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from features.files import atomic_write
from features.io import spreadsheet_safe
from models.estimators import FoldFallbackWarning
from training import expressions
from training import statistics as st
from training.plans import (
    ALL,
    MIN_GROUP,
    Measure,
    Plan,
    PlanError,
    closest,
    read_plan,
)

log = logging.getLogger("training.analyze")

#: The plan run when ``--plan`` is not given.
DEFAULT_PLAN = (
    Path(__file__).resolve().parent.parent / "experiments" / "analyses" / "default.toml"
)


@dataclass(frozen=True)
class AnalyzeConfig:
    """What ``python -m training analyze`` runs (see ``--help``)."""

    out: Path
    plan: Path = DEFAULT_PLAN
    cohort: Path | None = None
    features: Path | None = None
    label_column: str | None = None
    tracking_uri: str | None = None
    experiment: str = "als-mimics-analyses"
    overwrite: bool = False
    n_subjects: int = 400
    seed: int = 0
    n_jobs: int = -1
    simulated_dir: Path = Path("data") / "simulated"
    cache_dir: Path | None = None
    dask: str | None = None


@dataclass
class Figure:
    """The data of one figure: ``kind`` is groups, scatter, roc, forest or bars."""

    measure: str
    title: str
    kind: str
    data: dict


@dataclass
class Analysis:
    """The results of a plan on a table."""

    plan: Plan
    results: pd.DataFrame
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subjects: dict[str, pd.DataFrame] = field(default_factory=dict)

    def measure(self, name: str) -> pd.DataFrame:
        return self.results[self.results["measure"] == name].reset_index(drop=True)


# ---- preparing the table -----------------------------------------------------------


def prepare(plan: Plan, table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The table with the plan's derived columns and, when asked, ComBat applied."""
    table = table.copy()
    notes = []
    for name, expr in plan.derived.items():
        try:
            value = expressions.evaluate(expr, table)
        except expressions.ExpressionError as exc:
            unknown = [c for c in expr.columns if c not in table.columns]
            hint = (
                f"column {unknown[0]!r} is not in the table"
                f"{closest(unknown[0], table.columns)}"
                if unknown
                else str(exc)
            )
            raise plan.fail(
                f"[derived] {name} = {expr.text!r} cannot be computed: {hint}. Use "
                "column names, numbers and + - * / ( ) > < ==.",
                name,
            ) from None
        used = list(expr.columns)
        missing = table[used].isna().any(axis=1) if used else False
        table[name] = value.mask(missing)  # missing in, missing out
    if plan.settings.get("harmonize", False):
        table, note = _harmonize(plan, table)
        notes.append(note)
    return table, notes


def _harmonize(plan: Plan, table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    from models.harmonize import ComBat

    controls = plan.settings.get("controls", "HC")
    for column in ("site", "age", "male"):
        if column not in table.columns:
            raise plan.fail(
                f"harmonize = true needs column {column!r}, which the table lacks; "
                "add it or set harmonize = false.",
                "harmonize",
            )
    y = table[plan.label].astype(object).where(table[plan.label].notna(), None)
    combat = ComBat(reference=controls)
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    frame = table[[*numeric, "site"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FoldFallbackWarning)
        harmonised = combat.fit(frame, y.to_numpy()).transform(frame)
    out = table.copy()
    for c in combat.features_:
        out[c] = harmonised[c].to_numpy()
    fallbacks = [
        str(w.message) for w in caught if issubclass(w.category, FoldFallbackWarning)
    ]
    return out, (
        f"ComBat (fitted on the {int((y == controls).sum())} {controls} rows, "
        f"covariates {', '.join(combat.covariates_)}) harmonised "
        f"{len(combat.features_)} imaging columns across {len(combat.sites_)} sites"
        + "".join(f"; {text}" for text in dict.fromkeys(fallbacks))
    )


# ---- running measures --------------------------------------------------------------


def _numbers(table: pd.DataFrame, columns) -> pd.DataFrame:
    return table[list(columns)].apply(pd.to_numeric, errors="coerce")


def _group_codes(plan: Plan, table: pd.DataFrame, m: Measure) -> np.ndarray:
    """Each row's group name in ``m`` (None outside every group)."""
    labels = table[plan.label].astype(str).to_numpy()
    out = np.full(len(table), None, dtype=object)
    for name, members in reversed(m.groups()):
        out[np.isin(labels, members)] = name
    return out


def _rows_of(plan: Plan, table: pd.DataFrame, m: Measure, stratum) -> pd.DataFrame:
    """The rows a measure uses in a stratum: the stratum's, of the ``within``
    classes, of the measure's groups; checked for size."""
    keep = stratum.mask(table, plan.label)
    if m.get("within"):
        keep &= table[plan.label].astype(str).isin(m.get("within")).to_numpy()
    sub = table[keep]
    if m.get("groups"):
        codes = _group_codes(plan, sub, m)
        sub = sub.assign(_group=codes)[codes != None]  # noqa: E711
        for name, _ in m.groups():
            n = int((sub["_group"] == name).sum())
            if n < MIN_GROUP:
                text = (
                    f"group {name!r} has {n} subject(s) in stratum {stratum.name!r} "
                    f"of measure {m.name!r} (fewer than {MIN_GROUP}); widen the "
                    "stratum or the group, or drop the measure."
                )
                if stratum is ALL:
                    raise plan.fail(text, "groups", name, m)
                raise plan.fail(text, stratum.name)
    elif len(sub) < MIN_GROUP:
        raise plan.fail(
            f"stratum {stratum.name!r} leaves {len(sub)} subject(s) for measure "
            f"{m.name!r} (fewer than {MIN_GROUP}).",
            stratum.name if stratum is not ALL else "within",
        )
    return sub


def _covariates(plan: Plan, table: pd.DataFrame, m: Measure) -> list[str]:
    return plan.columns(table, m, "covariates") if m.get("covariates") else []


def _complete(sub: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, str]:
    values = _numbers(sub, columns)
    ok = values.notna().all(axis=1).to_numpy()
    dropped = int((~ok).sum())
    note = f"{dropped} row(s) without {' / '.join(columns)} left out" if dropped else ""
    return sub[ok].assign(**{c: values.loc[ok, c] for c in columns}), note


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def run_plan(plan: Plan, table: pd.DataFrame) -> Analysis:
    """Run every measure of ``plan`` (checked against ``table``) on ``table``."""
    table, notes = prepare(plan, table)
    plan.checked(table)
    seed = int(plan.settings.get("seed", 0))
    n_boot = int(plan.settings.get("n_boot", 1000))
    analysis = Analysis(
        plan, pd.DataFrame(columns=list(st.RESULT_COLUMNS)), notes=notes
    )
    rows: list[dict] = []
    for k, m in enumerate(plan.measures):
        rng = np.random.default_rng([seed, k])
        strata = [
            ALL if s == "all" else plan.strata[s] for s in m.get("strata", ["all"])
        ]
        covariates = _covariates(plan, table, m)
        base = {
            "plan": plan.name,
            "measure": m.name,
            "test": m.test,
            "family": m.get("family", m.name),
            "covariates": " + ".join(covariates),
            "harmonized": bool(plan.settings.get("harmonize", False)),
        }
        for stratum in strata:
            sub = _rows_of(plan, table, m, stratum)
            new = _MEASURES[m.test](
                plan, m, sub, covariates, n_boot, rng, analysis, stratum.name
            )
            rows += [{**base, "stratum": stratum.name, **r} for r in new]
    results = pd.DataFrame(rows).reindex(columns=list(st.RESULT_COLUMNS))
    for idx in results.groupby("family").groups.values():
        results.loc[idx, "p_adjusted"] = st.fdr(results.loc[idx, "p"].to_numpy(float))
    analysis.results = results
    not_computed = results[
        results["note"]
        .fillna("")
        .str.contains("not computed|not estimable|not computable")
    ]
    for _, r in not_computed.iterrows():
        analysis.notes.append(
            f"{r['measure']} / {r['variable']} / {r['stratum']}: {r['note']}"
        )
    return analysis


def _too_few(values: dict[str, np.ndarray]) -> str:
    small = {g: len(v) for g, v in values.items() if len(v) < MIN_GROUP}
    if not small:
        return ""
    return "not computed: " + ", ".join(
        f"{g} has {n} subject(s) with values" for g, n in small.items()
    )


def _groups_measure(
    plan, m, sub, covariates, n_boot, rng, analysis, stratum
) -> list[dict]:
    names = [g for g, _ in m.groups()]
    rows = []
    for v in plan.columns(sub, m, "variables"):
        data, note = _complete(sub, [v, *covariates])
        values = {g: data.loc[data["_group"] == g, v].to_numpy(float) for g in names}
        head = {
            "variable": v,
            "group_a": names[0],
            "group_b": names[-1] if len(names) == 2 else "",
        }
        problem = _too_few(values)
        if problem:
            rows.append({**head, "note": _join(problem, note)})
            continue
        if m.test == "ancova":
            new = st.ancova(
                data[v].to_numpy(float),
                data["_group"].to_numpy(),
                names,
                data[covariates],
            )
        elif m.test == "welch":
            new = st.welch(values[names[0]], values[names[1]])
        elif m.test == "mann_whitney":
            new = st.mann_whitney(values[names[0]], values[names[1]], n_boot, rng)
        elif m.test == "kruskal":
            new = st.kruskal(values, n_boot, rng)
        elif m.test == "fisher":
            new = st.fisher(values[names[0]], values[names[1]])
        else:  # auc
            new = st.roc_auc(
                values[names[0]],
                values[names[1]],
                m.get("direction", "auto"),
                _cutoffs(m, values[names[0]]),
                n_boot,
                rng,
            )
        rows += [{**head, **r, "note": _join(r.get("note", ""), note)} for r in new]
        analysis.figures.append(
            Figure(
                m.name,
                f"{v} ({stratum})",
                {"auc": "roc", "fisher": "bars"}.get(m.test, "groups"),
                {"values": values, "direction": m.get("direction", "auto")},
            )
        )
    return rows


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


def _correlation_measure(
    plan, m, sub, covariates, n_boot, rng, analysis, stratum
) -> list[dict]:
    rows = []
    method = m.get("method", "pearson")
    for x in plan.columns(sub, m, "x"):
        for y in plan.columns(sub, m, "y"):
            if x == y:
                continue
            data, note = _complete(sub, [x, y, *covariates])
            head = {"variable": f"{x} ~ {y}", "term": "correlation"}
            if len(data) < MIN_GROUP + len(covariates) + 1:
                rows.append(
                    {
                        **head,
                        "n": len(data),
                        "note": _join(
                            f"not computed: {len(data)} complete row(s)", note
                        ),
                    }
                )
                continue
            new = st.correlation(
                data[x].to_numpy(float),
                data[y].to_numpy(float),
                method,
                data[covariates] if covariates else None,
            )
            rows += [{**head, **r, "note": _join(r.get("note", ""), note)} for r in new]
            analysis.figures.append(
                Figure(
                    m.name,
                    f"{y} vs {x} ({stratum})",
                    "scatter",
                    {
                        "x": data[x].to_numpy(float),
                        "y": data[y].to_numpy(float),
                        "x_name": x,
                        "y_name": y,
                        "label": data[plan.label].astype(str).to_numpy(),
                        "estimate": rows[-1].get("estimate"),
                    },
                )
            )
    return rows


def _regression_measure(
    plan, m, sub, covariates, n_boot, rng, analysis, stratum
) -> list[dict]:
    predictors = plan.columns(sub, m, "predictors")
    terms = predictors + [c for c in covariates if c not in predictors]
    if m.get("outcome"):
        (outcome,) = plan.columns(sub, m, "outcome")
        data, note = _complete(sub, [outcome, *terms])
        y = data[outcome].to_numpy(float)
    else:
        names = [g for g, _ in m.groups()]
        outcome = f"{names[1]} (vs {names[0]})"
        data, note = _complete(sub, terms)
        y = (data["_group"] == names[1]).to_numpy(float)
    X = data[terms].astype(float)
    if m.get("standardize", False):
        X = (X - X.mean()) / X.std(ddof=1)
        if m.test == "ols":
            y = (y - y.mean()) / y.std(ddof=1)
    head = {"variable": outcome}
    if len(data) < len(terms) + MIN_GROUP + 1:
        return [
            {
                **head,
                "term": "model",
                "n": len(data),
                "note": _join(
                    f"not computed: {len(data)} complete row(s) for "
                    f"{len(terms)} term(s)",
                    note,
                ),
            }
        ]
    new = st.ols(y, X) if m.test == "ols" else st.logit(y, X)
    rows = [{**head, **r, "note": _join(r.get("note", ""), note)} for r in new]
    if m.get("standardize", False):
        per_sd = {"coefficient": "standardised coefficient"}
        per_sd["odds ratio per unit"] = "odds ratio per SD"
        for r in rows:
            r["estimate_name"] = per_sd.get(
                r.get("estimate_name"), r.get("estimate_name")
            )
    analysis.figures.append(
        Figure(
            m.name,
            f"{outcome} ({stratum})",
            "forest",
            {
                "rows": [r for r in rows if r.get("term") != "model"],
                "log": m.test == "logit",
            },
        )
    )
    return rows


def _criteria_measure(
    plan, m, sub, covariates, n_boot, rng, analysis, stratum
) -> list[dict]:
    from training.criteria import efns_pns_2010

    subjects = efns_pns_2010(sub, label=plan.label)
    analysis.subjects[m.name] = subjects
    rows = []
    for column in ("electrodiagnostic", "category"):
        counts = pd.crosstab(subjects[column], subjects[plan.label])
        for dx in counts.columns:
            n = int(counts[dx].sum())
            for cat in counts.index:
                k = int(counts.loc[cat, dx])
                lo, hi = st.wilson(k, n)
                rows.append(
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
        analysis.figures.append(
            Figure(
                m.name,
                f"{column} by {plan.label} ({stratum})",
                "table",
                {"table": counts},
            )
        )
    return rows


def _longitudinal_measure(
    plan, m, sub, covariates, n_boot, rng, analysis, stratum
) -> list[dict]:
    names = [g for g, _ in m.groups()] or ["all"]
    sub = sub if "_group" in sub else sub.assign(_group="all")
    rows = []
    for v in plan.columns(sub, m, "variables"):
        data, note = _complete(sub, [v, plan.time, *covariates])
        head = {"variable": v}
        if m.test == "mixed":
            visits = data.groupby(plan.subject)[plan.time].transform("size")
            if data[plan.subject].nunique() < MIN_GROUP or visits.max() < 2:
                text = "not computed: fewer than 3 subjects or no repeated visits"
                rows.append({**head, "note": _join(text, note)})
                continue
            new = st.mixed_model(
                data[v].to_numpy(float),
                data[plan.time].to_numpy(float),
                data[plan.subject].astype(str).to_numpy(),
                data["_group"].to_numpy(),
                names,
                data[covariates],
            )
            rows += [{**head, **r, "note": _join(r.get("note", ""), note)} for r in new]
            slopes = st.subject_slopes(
                data[v].to_numpy(float),
                data[plan.time].to_numpy(float),
                data[plan.subject].astype(str).to_numpy(),
                float(plan.settings.get("per_year", 12)),
            ).rename(columns={"subject": plan.subject})
            groups = data.groupby(plan.subject)["_group"].first()
            slopes.insert(1, "group", slopes[plan.subject].map(groups).to_numpy())
            slopes.insert(0, "stratum", stratum)
            slopes.insert(0, "variable", v)
            analysis.subjects[m.name] = pd.concat(
                [analysis.subjects.get(m.name), slopes], ignore_index=True
            )
            continue
        per_year = float(plan.settings.get("per_year", 12))
        for g in names:
            pairs = _first_and_last(data[data["_group"] == g], plan, v)
            if len(pairs) < MIN_GROUP:
                text = f"not computed: {len(pairs)} subject(s) of {g} with two visits"
                rows.append({**head, "group_a": g, "note": _join(text, note)})
                continue
            years = (pairs["t_last"] - pairs["t_first"]) / per_year
            new = st.change(pairs["first"], pairs["last"], years.to_numpy())
            rows += [{**head, "group_a": g, **r, "note": note} for r in new]
            analysis.figures.append(
                Figure(
                    m.name,
                    f"{v}, {g}: baseline and last visit ({stratum})",
                    "groups",
                    {"values": {"baseline": pairs["first"].to_numpy(),
                                "last visit": pairs["last"].to_numpy()}},
                )
            )  # fmt: skip
    return rows


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


_MEASURES = {
    "ancova": _groups_measure,
    "welch": _groups_measure,
    "mann_whitney": _groups_measure,
    "kruskal": _groups_measure,
    "auc": _groups_measure,
    "fisher": _groups_measure,
    "correlation": _correlation_measure,
    "ols": _regression_measure,
    "logit": _regression_measure,
    "efns_pns_2010": _criteria_measure,
    "mixed": _longitudinal_measure,
    "change": _longitudinal_measure,
}


# ---- inputs and outputs --------------------------------------------------------


def load_table(cfg: AnalyzeConfig) -> tuple[pd.DataFrame, str, bool]:
    """(table, its source, whether it is simulated) for ``cfg``."""
    from features.io import cache_root, read_table
    from training.data import _extracted, default_cohort

    if cfg.features is not None:
        return read_table(Path(cfg.features)), str(cfg.features), False
    cohort = cfg.cohort or default_cohort(cfg.simulated_dir, cfg.n_subjects, cfg.seed)
    if not Path(cohort).is_dir():
        raise FileNotFoundError(
            f"cohort directory not found: {cohort}; pass --cohort DIR "
            "(docs/cohort-format.md)."
        )
    table, _ = _extracted(
        Path(cohort), cfg.n_jobs, cfg.cache_dir or cache_root() / "features"
    )
    simulated = (Path(cohort) / "simulation").is_dir()
    return table, str(cohort), simulated


#: What a plan with ``[ica]`` writes besides its measures.
ICA_OUTPUTS = ("ica_subjects.csv", "ica_components.nii.gz")


def _group_ica(cfg: AnalyzeConfig, plan: Plan, table: pd.DataFrame, source: str):
    """(loadings, fitted GroupICA, notes) of the plan's ``[ica]`` on the cohort."""
    from features.group_ica import cohort_loadings

    if cfg.features is not None:
        raise plan.fail(
            "[ica] decomposes the cohort's BOLD images, which a features table does "
            "not hold: pass --cohort DIR instead of --features (or remove [ica]).",
            "ica",
        )
    settings = {**plan.ica, "seed": int(plan.settings.get("seed", 0))}
    return cohort_loadings(Path(source), table, settings, plan.subject)


def _outputs(cfg: AnalyzeConfig, plan: Plan) -> list[Path]:
    out = Path(cfg.out)
    names = ["results.csv", "report.html", "plan.toml"] + [
        f"{m.name}.csv" for m in plan.measures
    ]
    if plan.ica is not None:
        names += list(ICA_OUTPUTS)
    targets = [out / n for n in names]
    existing = [t for t in targets if t.exists()]
    if existing and not cfg.overwrite:
        raise FileExistsError(
            f"{existing[0]} exists; pass --overwrite to replace the outputs in "
            f"{out}, or choose another --out."
        )
    return targets


def _write(path: Path, write, overwrite: bool) -> None:
    with atomic_write(path, overwrite=overwrite) as tmp:
        write(tmp)


def run(cfg: AnalyzeConfig) -> Analysis:
    """Read the plan and the table, run the plan, write and log the outputs."""
    from training.analysis_report import write_report

    plan = read_plan(cfg.plan)
    if cfg.label_column:
        plan.settings["label"] = cfg.label_column
    _outputs(cfg, plan)  # refuse before any work
    from features.executor import executor

    with executor(cfg.dask):
        table, source, simulated = load_table(cfg)
    ica = _group_ica(cfg, plan, table, source) if plan.ica is not None else None
    if ica is not None:
        table = pd.concat([table, ica[0]], axis=1)
    analysis = run_plan(plan, table)
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot create the output folder {out}: {exc.strerror or exc}; "
            "choose another --out."
        ) from None
    save = partial(_write, overwrite=cfg.overwrite)
    save(out / "results.csv", lambda p: analysis.results.to_csv(p, index=False))
    for m in plan.measures:
        frame = analysis.measure(m.name).dropna(axis=1, how="all")
        save(out / f"{m.name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        if m.name in analysis.subjects:
            save(
                out / f"{m.name}_subjects.csv",
                lambda p, m=m: spreadsheet_safe(analysis.subjects[m.name]).to_csv(
                    p, index=False
                ),
            )
    if ica is not None:
        loadings, fitted, notes = ica
        keys = [c for c in (plan.subject, "session") if c in table.columns]
        decomposed = table.loc[loadings.notna().any(axis=1), keys + list(loadings)]
        save(
            out / "ica_subjects.csv",
            lambda p: spreadsheet_safe(decomposed).to_csv(p, index=False),
        )
        save(
            out / "ica_components.nii.gz",
            lambda p: fitted.canica_.components_img_.to_filename(p),
        )
        analysis.notes[:0] = notes
        log.info("%s; wrote ica_subjects.csv, ica_components.nii.gz", fitted.describe())
    save(out / "plan.toml", lambda p: shutil.copyfile(plan.path, p))
    save(
        out / "report.html",
        lambda p: write_report(
            analysis, p, source=source, simulated=simulated, rows=len(table)
        ),
    )
    for note in analysis.notes:
        log.warning("note: %s", note)
    if cfg.tracking_uri:
        _log_mlflow(cfg, analysis, out, source, simulated)
    return analysis


def _log_mlflow(
    cfg: AnalyzeConfig, analysis: Analysis, out: Path, source: str, simulated: bool
) -> None:
    import mlflow

    from training import tracking

    for note in tracking.start(cfg.tracking_uri, cfg.experiment):
        log.warning("note: %s", note)
    with tracking.run(f"analyze-{analysis.plan.name}"):
        tracking.log_params(
            {
                "plan": analysis.plan.name,
                "plan_file": analysis.plan.path,
                "source": source,
                "harmonize": analysis.plan.settings.get("harmonize", False),
            }
        )
        tracking.set_tags({"kind": "analysis", "simulated_data": simulated})
        r = analysis.results
        tracking.log_metrics(
            {
                "n_estimates": len(r),
                "n_significant_fdr_0.05": int((r["p_adjusted"] < 0.05).sum()),
                "n_not_computed": len(analysis.notes),
            }
        )
        tracking.log_json(analysis.notes, "notes.json")
        for path in sorted(out.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                mlflow.log_artifact(str(path))


def summary(analysis: Analysis) -> str:
    """A few lines for the terminal."""
    r = analysis.results
    sig = r[(r["p_adjusted"] < 0.05)]
    lines = [
        f"plan {analysis.plan.name}: {len(analysis.plan.measures)} measures, "
        f"{len(r)} estimates, "
        f"{len(sig)} with FDR-adjusted p < 0.05, {len(analysis.notes)} not computed"
    ]
    for m in analysis.plan.measures:
        part = analysis.measure(m.name)
        best = part.dropna(subset=["p"]).sort_values("p").head(1)
        if len(best):
            b = best.iloc[0]
            lines.append(
                f"  {m.name:<28} {m.test:<13} {len(part):>3} rows; smallest p: "
                f"{b['variable']} "
                f"{b['term']} {b['estimate_name']} = {_fmt(b['estimate'])} "
                f"(p = {_fmt(b['p'])})"
            )
        else:
            lines.append(f"  {m.name:<28} {m.test:<13} {len(part):>3} rows")
    return "\n".join(lines)


def _fmt(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{v:.3g}"


__all__ = [
    "AnalyzeConfig",
    "Analysis",
    "PlanError",
    "prepare",
    "run",
    "run_plan",
    "summary",
]
