"""Accuracy benchmark: the default pipeline, its ablations and the plain peers,
cross-validated on the same outer folds, beside the Bayes-optimal oracle.

Usage::

    python experiments/bench_accuracy.py              # the table of docs/performance.md
    python experiments/bench_accuracy.py --scenarios main --sizes 400 --seeds 0
    python experiments/bench_accuracy.py --write-docs # also rewrite that table

Every row of one (scenario, size, seed) is fitted on the same outer folds (5-fold
stratified and grouped by participant; leave one site out in ``unseen_site``), so the
comparison is subject for subject. Metrics are out-of-fold: log loss (the criterion),
Brier, macro AUC, balanced accuracy, top-label and class-wise ECE, and the log loss
above the oracle's ("excess"). Mean and standard deviation over seeds are printed;
every row is also written to ``outputs/bench/accuracy.csv``.

Rows:

- ``default``: what ``make train`` ships: both families (elastic-net logistic
  regression, XGBoost) with ComBat, normative z-scores, age/sex inputs, temperature
  calibration, tuned by the inner Optuna search (``--trials``, 3 inner folds), the
  family with the lower nested-CV log loss taken. Skipped above ``--tuned-max``
  subjects (hours on 2 cores); the ``fixed`` rows stand in there.
- ``<family> fixed``: the default pipeline of one family at fixed, untuned
  hyperparameters (:data:`FIXED`); the ablations switch one step of it off or change
  it: ``-combat``, ``-normative``, ``-indicators`` (logreg: no missing-indicator
  columns), ``-agesex`` (age and sex adjust but are not inputs), ``cal=<method>``.
- ``tuning``: the default pipeline with other search budgets (``--tuning``).
- ``peer xgboost_default`` / ``peer logreg_plain``: training/peers.py.
- ``oracle``: the simulation's exact posterior given the same modalities.

Scenarios: ``main`` (every modality), ``objective`` (imaging, MRS and serum only: no
clinical examination, no nerve conduction), ``early_als`` (ALS in the milder half of
the simulated latent severity against the pooled mimics, controls left out; the
oracle is the whole population's posterior pooled, not re-derived for this
selection), ``unseen_site`` (leave one site out), ``site_shift`` (every scanner and
assay offset of the simulator multiplied by ``--shift``, a cohort simulated for the
purpose under outputs/bench/cohorts) and ``single_centre`` (150 participants of
siteA, the largest site, from a cohort of 600).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut

from features.simulate import spec
from models.estimators import FoldFallbackWarning
from models.pipelines import PipelineSpec
from training.config import TrainConfig
from training.data import load_training_data, prepare
from training.evaluation import score
from training.nested_cv import FoldResult, NestedResult, nested_cv, on_same_folds
from training.peers import PEERS
from training.run import oracle_proba

ROOT = Path("outputs") / "bench"
TABLE_PAGE = Path("docs/performance.md")
START, END = "<!-- bench_accuracy:start -->", "<!-- bench_accuracy:end -->"
METRICS = (
    "log_loss",
    "excess",
    "brier",
    "macro_auc",
    "balanced_accuracy",
    "ece",
    "classwise_ece",
)
#: Untuned hyperparameters of the ``fixed`` rows (mid-range of the search spaces).
FIXED = {
    "logreg": {"C": 0.1, "l1_ratio": 0.5},
    "xgboost": {
        "n_estimators": 200,
        "max_depth": 3,
        "learning_rate": 0.1,
        "subsample": 0.8,
        "colsample_bytree": 0.7,
        "min_child_weight": 1.0,
        "reg_lambda": 1.0,
    },
    "svm": {"C": 1.0, "gamma": 0.01},
    "random_forest": {
        "n_estimators": 300,
        "max_depth": 8,
        "min_samples_leaf": 2,
        "max_features": 0.2,
    },
}
SCENARIOS = (
    "main",
    "objective",
    "early_als",
    "unseen_site",
    "site_shift",
    "single_centre",
)


def _cohort(scenario: str, n: int, seed: int, shift: float):
    """(TrainingData, config, outer splits or None) of one scenario."""
    base = TrainConfig(n_subjects=n, seed=seed)
    if scenario == "objective":
        base = replace(base, feature_set=("objective",))
    if scenario == "site_shift":
        base = replace(base, cohort=_shifted_cohort(n, seed, shift))
    if scenario == "single_centre":
        base = replace(base, n_subjects=600)
    data = load_training_data(base)
    if scenario == "single_centre":
        ids = data.table.loc[data.table["site"] == "siteA", "participant_id"]
        keep = data.table["participant_id"].isin(ids.unique()[:n])
        data = prepare(
            data.table[keep], base, data.source, data.fingerprint, data.cohort_dir
        )
    if scenario == "early_als":
        truth = pd.read_csv(data.cohort_dir / "simulation" / "truth.tsv", sep="\t")
        mild = set(truth.loc[truth["severity"] < 0, "participant_id"])
        pid, dx = data.table["participant_id"], data.table["diagnosis"]
        keep = dx.isin(spec.CLASSES[1:4]) | ((dx == "ALS") & pid.isin(mild))
        base = replace(base, task="als_vs_mimics")
        data = prepare(
            data.table[keep], base, data.source, data.fingerprint, data.cohort_dir
        )
    splits = None
    if scenario == "unseen_site":
        sites = data.table["site"].to_numpy()
        splits = list(LeaveOneGroupOut().split(data.X, data.y, sites))
    return data, base, splits


def _shifted_cohort(n: int, seed: int, shift: float) -> Path:
    """A cohort simulated with every site offset multiplied by ``shift``."""
    from features.simulate.cohort import simulate_cohort

    path = ROOT / "cohorts" / f"shift{shift:g}-n{n}-seed{seed}"
    if not path.exists():
        original = {k: dict(v) for k, v in spec.SITE_OFFSETS.items()}
        try:
            for k, offsets in spec.SITE_OFFSETS.items():
                for site in offsets:
                    offsets[site] = original[k][site] * shift
            simulate_cohort(path, n=n, seed=seed)
        finally:
            for k, offsets in spec.SITE_OFFSETS.items():
                offsets.update(original[k])
    return path


def _folds(data, cfg: TrainConfig, splits) -> NestedResult:
    """The outer folds as a NestedResult skeleton, for :func:`on_same_folds`."""
    from training.nested_cv import outer_splits

    cv = cfg.specs(set(data.y), data.covariates, "bench").cv
    if splits is None:
        triples = outer_splits(data.X, data.y, data.groups, cv)
    else:
        triples = [(k, tr, te) for k, (tr, te) in enumerate(splits)]
    folds = [FoldResult(k, te, {}, np.empty(0), {}, "") for k, _, te in triples]
    return NestedResult("", data.classes, np.empty(0), folds, {})


def _variants(families, ablate: bool) -> dict[str, tuple[str, dict]]:
    """name -> (family, changes to the default pipeline) of the fixed rows."""
    out = {f"{f} fixed": (f, {}) for f in families}
    if not ablate:
        return out
    for f in ("logreg", "xgboost"):
        out[f"{f} -combat"] = (f, {"harmonize": False})
        out[f"{f} -normative"] = (f, {"normative": False})
        out[f"{f} -agesex"] = (f, {"covariates_as_features": False})
        for method in ("none", "sigmoid", "isotonic"):
            out[f"{f} cal={method}"] = (f, {"calibrate": method})
    out["logreg -indicators"] = ("logreg", {"indicators": False})
    return out


def _fixed_pipeline(family: str, changes: dict, columns, seed: int):
    changes = dict(changes)
    indicators = changes.pop("indicators", True)
    pipe = replace(PipelineSpec(seed=seed), **changes).build(
        family, FIXED[family], columns
    )
    if not indicators:
        pipe.set_params(impute__add_indicator=False)
    return pipe


def _tuned(data, cfg: TrainConfig, splits, trials: int, inner: int) -> list:
    """Nested CV of both families as ``make train`` runs it (its champion is the
    one with the lower log loss)."""
    cfg = replace(
        cfg,
        n_trials=trials,
        inner_folds=inner,
        optuna_storage=f"sqlite:///{ROOT / 'optuna.db'}",
    )
    specs = cfg.specs(set(data.y), data.covariates, f"bench-{os.getpid()}")
    return [
        nested_cv(
            f,
            data.X,
            data.y,
            data.groups,
            data.classes,
            specs.cv,
            specs.search,
            specs.pipeline,
            splits=splits,
        )
        for f in ("logreg", "xgboost")
    ]


def _champion(results) -> np.ndarray:
    return min(results, key=lambda r: r.metrics["log_loss"]).oof_proba


def one_cell(scenario, n, seed, args) -> list[dict]:
    """Every row of one (scenario, size, seed)."""
    data, cfg, splits = _cohort(scenario, n, seed, args.shift)
    folds = _folds(data, cfg, splits)
    X, y, classes, mimics = data.X, data.y, data.classes, cfg.mimics
    truth = oracle_proba(data, classes, mimics, cfg.modalities())
    floor = score(y, truth, classes, mimics)["log_loss"]
    rows = []

    def add(name: str, proba: np.ndarray, seconds: float) -> None:
        m = score(y, proba, classes, mimics)
        m["excess"] = m["log_loss"] - floor
        rows.append({"row": name, "seconds": seconds, **m})
        print(
            f"  {scenario} n={len(y)} seed={seed} {name:<26} log loss "
            f"{m['log_loss']:.3f}  AUC {m['macro_auc']:.4f}  ECE {m['ece']:.3f} "
            f"({seconds:.0f} s)",
            flush=True,
        )

    def timed(name: str, fit) -> None:
        t = time.perf_counter()
        add(name, fit(), time.perf_counter() - t)

    add("oracle", truth, 0.0)
    for name, make in PEERS.items():
        timed(
            f"peer {name}",
            lambda make=make: on_same_folds(
                lambda: make(seed), X, y, folds, n_jobs=args.jobs
            ),
        )
    ablate = scenario in args.ablate_in and len(y) <= args.ablate_max
    families = ("logreg", "xgboost", *(("svm", "random_forest") if ablate else ()))
    for name, (family, changes) in _variants(families, ablate).items():
        timed(
            name,
            lambda family=family, changes=changes: on_same_folds(
                lambda: _fixed_pipeline(family, changes, list(X.columns), seed),
                X,
                y,
                folds,
                n_jobs=args.jobs,
            ),
        )
    if scenario in args.tuned_in and len(y) <= args.tuned_max:
        t = time.perf_counter()
        both = _tuned(data, cfg, splits, args.trials, 3)
        add("default", _champion(both), time.perf_counter() - t)
        add("mean of both families", (both[0].oof_proba + both[1].oof_proba) / 2, 0)
        if scenario in args.tuning:
            for trials, inner in ((6, 3), (25, 3), (12, 5)):
                timed(
                    f"tuning {trials} trials x {inner} inner",
                    lambda t=trials, i=inner: _champion(
                        _tuned(data, cfg, splits, t, i)
                    ),
                )
    for r in rows:
        r.update(scenario=scenario, size=n, n=len(y), seed=seed)
    return rows


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over seeds of each row's metrics, per scenario and size, and
    ``delta``: an ablation's log loss minus its family's fixed row on the same
    folds (paired, so its SD is that of the difference, not of the cohorts)."""
    frame = frame.copy()
    # rows of CSVs written before the column existed
    asked = np.where(frame["scenario"] == "early_als", 400, frame["n"])
    frame["size"] = (
        frame.get("size", pd.Series(np.nan, frame.index))
        .fillna(pd.Series(asked, frame.index))
        .astype(int)
    )
    # rows are grouped by the size asked for; early_als keeps a subset of it
    frame["size"] = np.where(
        frame["size"] == frame["n"],
        frame["size"].astype(str),
        frame["size"].astype(str)
        + " ("
        + frame.groupby(["scenario", "size"])["n"]
        .transform("mean")
        .round()
        .astype(int)
        .astype(str)
        + " kept)",
    )
    keys = ["scenario", "size", "row"]
    frame = frame.drop_duplicates([*keys, "seed"], keep="last")
    family = frame["row"].str.split(" ").str[0]
    base = (
        frame.assign(row=family + " fixed")[[*keys, "seed"]]
        .merge(frame[[*keys, "seed", "log_loss"]], how="left", on=[*keys, "seed"])[
            "log_loss"
        ]
        .to_numpy()
    )
    ablation = family.isin(list(FIXED)) & ~frame["row"].str.endswith(" fixed")
    frame["delta"] = np.where(ablation, frame["log_loss"].to_numpy() - base, np.nan)
    g = frame.groupby(keys, sort=False)[[*METRICS, "delta"]]
    mean, sd, k = g.mean(), g.std(ddof=1), g.size().rename("seeds")
    out = mean.join(sd.add_suffix("_sd")).join(k)
    return out.iloc[sorted(range(len(out)), key=lambda i: _order(out.index[i]))]


def _order(key: tuple) -> tuple:
    """Table order: scenario, size, then oracle, peers, default, the rest."""
    scenario, size, row = key
    first = ("oracle", "peer", "default", "mean", "tuning")
    rank = next((i for i, p in enumerate(first) if row.startswith(p)), len(first))
    fixed = row.endswith(" fixed")
    return (SCENARIOS.index(scenario), int(size.split()[0]), rank, not fixed, row)


def goals(summary: pd.DataFrame) -> list[str]:
    """The issue's goals, checked on the summary: one line each."""
    lines = []
    for (scenario, size), block in summary.groupby(level=[0, 1], sort=False):
        n = int(size.split()[0])
        block = block.droplevel([0, 1])
        peers = block[block.index.str.startswith("peer ")]
        if peers.empty:
            continue
        best = peers["log_loss"].idxmin()
        ours = "default" if "default" in block.index else None
        if ours is None:
            fixed = block[block.index.str.endswith(" fixed")]
            ours = fixed["log_loss"].idxmin()
        mine, theirs = block.loc[ours], block.loc[best]
        ratio = mine["excess"] / max(theirs["excess"], 1e-12)
        ece_goal = 0.03 if n >= 4000 else 0.05  # the goals: n = 400, 4000
        lines.append(
            f"{scenario:>13} n={size:<5} {ours:<16} log loss {mine['log_loss']:.3f} "
            f"vs {best} {theirs['log_loss']:.3f}: "
            f"{'BEATS' if mine['log_loss'] <= theirs['log_loss'] else 'LOSES'}; "
            f"excess ratio {ratio:.2f} ({'met' if ratio <= 0.5 else 'not met'}, goal "
            f"<= 0.5); ECE {mine['ece']:.3f}"
            + (
                f" ({'met' if mine['ece'] <= ece_goal else 'not met'}, goal <= "
                f"{ece_goal})"
                if n >= 400
                else ""
            )
            + (
                f"; balanced accuracy {mine['balanced_accuracy']:.3f}, oracle "
                f"{block.loc['oracle', 'balanced_accuracy']:.3f} ("
                + (
                    "met"
                    if block.loc["oracle", "balanced_accuracy"]
                    - mine["balanced_accuracy"]
                    <= 0.03
                    else "not met"
                )
                + ", goal: within 0.03)"
                if n >= 4000
                else ""
            )
        )
    return lines


def markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (mean ± SD over seeds)."""
    head = "| scenario | n | row | log loss | excess over oracle | Brier | macro AUC "
    head += "| bal. acc. | ECE | class-wise ECE | Δ log loss vs family's fixed row |"
    lines = [head, "|" + "---|" * 11]
    for (scenario, n, row), r in summary.iterrows():
        cells = []
        for m in (*METRICS, "delta"):
            if not np.isfinite(r[m]):
                cells.append("")
                continue
            sd = r[f"{m}_sd"]
            digits = 4 if m == "macro_auc" else 3
            cell = f"{r[m]:.{digits}f}"
            cells.append(cell + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else ""))
        label = f"**{row}**" if row == "default" else row
        lines.append(f"| {scenario} | {n} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_docs(text: str) -> None:
    body = TABLE_PAGE.read_text()
    if START not in body or END not in body:
        sys.exit(f"{TABLE_PAGE} lacks the markers {START} ... {END}; add them first.")
    new = re.sub(
        re.escape(START) + ".*?" + re.escape(END),
        lambda _: f"{START}\n{text}\n{END}",
        body,
        flags=re.S,
    )
    tmp = TABLE_PAGE.with_suffix(".md.tmp")
    tmp.write_text(new)
    tmp.replace(TABLE_PAGE)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[150, 400, 4000],
        help="cohort sizes of main (others: 400; single_centre: 150)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=12, help="Optuna trials (default)")
    p.add_argument(
        "--tuned-max",
        type=int,
        default=400,
        help="largest cohort whose default row is tuned",
    )
    p.add_argument(
        "--tuned-in",
        nargs="*",
        default=["main"],
        help="scenarios with the tuned default row (others: the fixed rows)",
    )
    p.add_argument(
        "--ablate-max", type=int, default=400, help="largest cohort with ablations"
    )
    p.add_argument(
        "--ablate-in",
        nargs="*",
        default=["main", "site_shift"],
        help="scenarios with the step ablations",
    )
    p.add_argument(
        "--tuning",
        nargs="*",
        default=[],
        help="scenarios with the search-budget rows (slow)",
    )
    p.add_argument("--shift", type=float, default=4.0)
    p.add_argument("--jobs", type=int, default=-1)
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "accuracy.csv",
        help="CSV of every row, rewritten after each (scenario, size, seed)",
    )
    p.add_argument(
        "--from-csv",
        type=Path,
        nargs="+",
        help="summarise these CSVs of earlier runs instead of running",
    )
    p.add_argument("--write-docs", action="store_true")
    a = p.parse_args()
    warnings.simplefilter("ignore", FoldFallbackWarning)
    warnings.simplefilter("ignore", UserWarning)
    ROOT.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    command = "python experiments/bench_accuracy.py " + " ".join(sys.argv[1:])
    if a.from_csv:
        frame = pd.concat([pd.read_csv(f) for f in a.from_csv], ignore_index=True)
        runs = frame["seconds"].sum()
        stamp = f"`{command.strip()}` (rows of earlier runs, {runs:.0f} s of fitting)"
    else:
        rows = []
        for scenario in a.scenarios:
            sizes = {"main": a.sizes, "single_centre": [150]}.get(scenario, [400])
            for n in sizes:
                for seed in a.seeds:
                    rows += one_cell(scenario, n, seed, a)
                    tmp = a.out.with_suffix(".tmp")
                    pd.DataFrame(rows).to_csv(tmp, index=False)
                    tmp.replace(a.out)
        frame = pd.DataFrame(rows)
        stamp = f"`{command.strip()}`, {time.perf_counter() - start:.0f} s"
    stamp += (
        f", {datetime.date.today()}, {os.cpu_count()} CPUs ({platform.machine()}); "
        f"mean ± SD over seeds {', '.join(map(str, sorted(frame['seed'].unique())))}"
    )
    summary = summarise(frame)
    table = markdown(summary)
    checks = goals(summary)
    print("\n" + stamp + "\n\n" + table + "\n\nGoals:\n" + "\n".join(checks))
    if a.write_docs:
        _write_docs(
            f"Measured with {stamp}:\n\n{table}\n\nGoals (champion log loss <= best "
            "peer's; its excess over the oracle <= half the best peer's):\n\n"
            + "\n".join(f"- {c.strip()}" for c in checks)
        )


if __name__ == "__main__":
    main()
