"""``python -m training analyze``: the source studies' analyses on any cohort.

A plan (:mod:`~training.analysis.plans`, TOML, ``[derived]`` columns parsed by
:mod:`~training.analysis.expressions`) names measures. Each measure's test is one
entry of :mod:`~training.analysis.registry`; its runner
(:mod:`~training.analysis.measures`) computes it with
:mod:`~training.analysis.statistics` or, over repeated visits,
:mod:`~training.analysis.longitudinal`. :mod:`~training.analysis.run` runs a plan
and :mod:`~training.analysis.report` writes its HTML report.
"""

from training.analysis.plans import Plan, PlanError, read_plan
from training.analysis.run import Analysis, AnalyzeConfig, run, run_plan

__all__ = [
    "AnalyzeConfig",
    "Analysis",
    "Plan",
    "PlanError",
    "read_plan",
    "run",
    "run_plan",
]
