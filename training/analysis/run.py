"""``python -m training analyze``: run an analysis plan on a cohort.

:func:`run_plan` turns a checked :class:`~training.analysis.plans.Plan` and a features
table into one tidy row per estimate
(:data:`training.analysis.statistics.RESULT_COLUMNS`)
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

from common.files import make_folder, write_atomically
from common.statistics import fdr
from common.table_io import spreadsheet_safe
from models.estimators import FoldFallbackWarning
from training.analysis import expressions
from training.analysis import statistics as st
from training.analysis.measures import MIN_GROUP, Context, Figure
from training.analysis.plans import (
    ALL,
    Measure,
    Plan,
    PlanError,
    closest,
    read_plan,
)
from training.analysis.registry import TESTS

log = logging.getLogger("training.analysis.run")

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
    if plan.settings.harmonize:
        table, note = _harmonize(plan, table)
        notes.append(note)
    return table, notes


def _harmonize(plan: Plan, table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    from models.harmonize import ComBat

    controls = plan.settings.controls
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


def _group_codes(plan: Plan, table: pd.DataFrame, m: Measure) -> np.ndarray:
    """Each row's group name in ``m`` (None outside every group)."""
    labels = table[plan.label].astype(str).to_numpy()
    out = np.full(len(table), None, dtype=object)
    for name, members in reversed(m.groups()):
        out[np.isin(labels, members)] = name
    return out


def _rows_of(
    plan: Plan, table: pd.DataFrame, m: Measure, stratum
) -> tuple[pd.DataFrame, str]:
    """The rows a measure uses in a stratum (the stratum's, of the ``within``
    classes, of the measure's groups), and why the measure cannot be computed
    there (a group or the stratum with fewer than :data:`MIN_GROUP` subjects;
    empty when it can). A small group skips this comparison only: the plan runs
    on, so a small real cohort needs no edited plan."""
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
                key = ("groups", name) if stratum is ALL else (stratum.name, None)
                return sub, (
                    f"not computed: group {name!r} has {n} subject(s) in stratum "
                    f"{stratum.name!r} (fewer than {MIN_GROUP}; "
                    f"{plan.where(key[0], key[1], m if stratum is ALL else None)})"
                )
    elif len(sub) < MIN_GROUP:
        return sub, (
            f"not computed: stratum {stratum.name!r} leaves {len(sub)} subject(s) "
            f"(fewer than {MIN_GROUP})"
        )
    return sub, ""


def _covariates(plan: Plan, table: pd.DataFrame, m: Measure) -> list[str]:
    return plan.columns(table, m, "covariates") if m.get("covariates") else []


def run_plan(plan: Plan, table: pd.DataFrame) -> Analysis:
    """Run every measure of ``plan`` (checked against ``table``) on ``table``."""
    table, notes = prepare(plan, table)
    plan.checked(table)
    settings = plan.settings
    analysis = Analysis(
        plan, pd.DataFrame(columns=list(st.RESULT_COLUMNS)), notes=notes
    )
    rows: list[dict] = []
    for k, m in enumerate(plan.measures):
        rng = np.random.default_rng([settings.seed, k])
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
            "harmonized": settings.harmonize,
        }
        subjects = []
        for stratum in strata:
            rows_of, too_few = _rows_of(plan, table, m, stratum)
            if too_few:
                rows.append({**base, "stratum": stratum.name, "note": too_few})
                continue
            context = Context(
                plan, m, rows_of, covariates, settings.n_boot, rng, stratum.name
            )
            computed = TESTS[m.test].runner(context)
            rows += [{**base, "stratum": stratum.name, **r} for r in computed.rows]
            analysis.figures += computed.figures
            if computed.subjects is not None:
                subjects.append(computed.subjects)
        if subjects:
            analysis.subjects[m.name] = pd.concat(subjects, ignore_index=True)
    results = pd.DataFrame(rows).reindex(columns=list(st.RESULT_COLUMNS))
    for idx in results.groupby("family").groups.values():
        results.loc[idx, "p_adjusted"] = fdr(results.loc[idx, "p"].to_numpy(float))
    analysis.results = results
    for _, r in results[not_computed(results)].iterrows():
        where = [r[c] for c in ("measure", "variable", "stratum") if pd.notna(r[c])]
        analysis.notes.append(f"{' / '.join(map(str, where))}: {r['note']}")
    return analysis


# ---- inputs and outputs --------------------------------------------------------


def load_table(cfg: AnalyzeConfig) -> tuple[pd.DataFrame, str, bool]:
    """(table, its source, whether it is simulated) for ``cfg``."""
    from common.table_io import cache_root
    from training.data import load_input

    loaded = load_input(cfg, cache_dir=cfg.cache_dir or cache_root() / "features")
    for note in loaded.notes:
        log.warning("%s: %s", loaded.source, note)
    return loaded.table, loaded.source, loaded.simulated


#: What a plan with ``[ica]`` writes besides its measures.
ICA_OUTPUTS = ("ica_subjects.csv", "ica_components.nii.gz")


def _group_ica(cfg: AnalyzeConfig, plan: Plan, table: pd.DataFrame, source: str):
    """(loadings, fitted GroupICA, notes) of the plan's ``[ica]`` on the cohort."""
    from features.fmri.group_ica import cohort_loadings

    if cfg.features is not None:
        raise plan.fail(
            "[ica] decomposes the cohort's BOLD images, which a features table does "
            "not hold: pass --cohort DIR instead of --features (or remove [ica]).",
            "ica",
        )
    settings = {**plan.ica, "seed": plan.settings.seed}
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


def run(cfg: AnalyzeConfig) -> Analysis:
    """Read the plan and the table, run the plan, write and log the outputs."""
    from training.analysis.report import write_report

    plan = read_plan(cfg.plan)
    if cfg.label_column:
        plan = plan.with_label(cfg.label_column)
    _outputs(cfg, plan)  # refuse before any work
    from common.executor import executor

    with executor(cfg.dask):
        table, source, simulated = load_table(cfg)
    ica = _group_ica(cfg, plan, table, source) if plan.ica is not None else None
    if ica is not None:
        table = pd.concat([table, ica[0]], axis=1)
    analysis = run_plan(plan, table)
    out = Path(cfg.out)
    make_folder(out, "the output folder", "choose another --out")
    save = partial(write_atomically, overwrite=cfg.overwrite)
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
                "harmonize": analysis.plan.settings.harmonize,
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


def not_computed(results: pd.DataFrame) -> pd.Series:
    """Which result rows hold no estimate because it could not be computed."""
    pattern = "not computed|not estimable|not computable"
    return results["note"].fillna("").str.contains(pattern)


def summary(analysis: Analysis) -> str:
    """A few lines for the terminal."""
    r = analysis.results
    sig = r[(r["p_adjusted"] < 0.05)]
    lines = [
        f"plan {analysis.plan.name}: {len(analysis.plan.measures)} measures, "
        f"{len(r)} estimates, {len(sig)} with FDR-adjusted p < 0.05, "
        f"{int(not_computed(r).sum())} not computed"
    ]
    for m in analysis.plan.measures:
        part = analysis.measure(m.name)
        best = part.dropna(subset=["p"]).sort_values("p").head(1)
        if len(best):
            b = best.iloc[0]
            # an omnibus test (ANCOVA's F over every group) has a statistic only
            name, value = (
                (b["estimate_name"], b["estimate"])
                if pd.notna(b["estimate"])
                else (b["statistic_name"], b["statistic"])
            )
            lines.append(
                f"  {m.name:<28} {m.test:<13} {len(part):>3} rows; smallest p: "
                f"{b['variable']} {b['term']} {name} = {_fmt(value)} "
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
