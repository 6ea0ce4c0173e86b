"""Nested-CV macro AUC beside the Bayes-optimal macro AUC, for several cohort sizes.

Usage: ``python experiments/bench_oracle.py [--sizes 200 400] [--trials 6]``.
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
            model_name="bench-oracle",
        )
        res = run(cfg)
        for fam, r in res.results.items():
            rows.append((n, fam, r.metrics["macro_auc"], res.oracle["macro_auc"]))
    print(f"{'n':>6} {'model':>10} {'nested macro AUC':>17} {'oracle':>8} {'gap':>7}")
    for n, fam, auc, oracle in rows:
        print(f"{n:>6} {fam:>10} {auc:>17.3f} {oracle:>8.3f} {oracle - auc:>7.3f}")


if __name__ == "__main__":
    main()
