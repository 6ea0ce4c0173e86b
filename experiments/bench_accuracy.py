"""Champion's nested-CV AUCs beside the Bayes-optimal ones, for several cohort sizes.

Usage: ``python experiments/bench_accuracy.py [--sizes 400 4000] [--trials 6]``
(n = 4000 takes tens of minutes on 2 cores). Goal (issue 4): champion within 0.03
of the oracle macro AUC at the default size, within 0.01 at n = 4000.
Each size simulates its own cohort (cached under data/simulated) and runs the full
training flow into a throw-away MLflow store under outputs/bench/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training.config import TrainConfig
from training.run import run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[200, 400])
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    root = Path("outputs") / "bench"
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in a.sizes:
        cfg = TrainConfig(
            n_subjects=n,
            seed=a.seed,
            n_trials=a.trials,
            tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
            optuna_storage=f"sqlite:///{root / 'optuna.db'}",
            model_name="bench-accuracy",
        )
        res = run(cfg)
        for fam, r in res.results.items():
            for metric in ("macro_auc", "als_vs_mimics_auc"):
                rows.append((n, fam, metric, r.metrics[metric], res.oracle[metric]))
    print(
        f"{'n':>6} {'model':>14} {'metric':>18} {'nested CV':>9} {'oracle':>7} "
        f"{'gap':>6}"
    )
    for n, fam, metric, auc, oracle in rows:
        print(
            f"{n:>6} {fam:>14} {metric:>18} {auc:>9.4f} {oracle:>7.4f} "
            f"{oracle - auc:>6.4f}"
        )


if __name__ == "__main__":
    main()
