"""Every test an analysis plan can name: one :class:`Test` entry each.

Adding a statistical test is one entry here (its name, the keys a measure must
give, how many groups it compares, what its outcome must hold, its runner in
:mod:`training.analysis.measures` and the kind of figure
:mod:`training.analysis.report` draws for it) and its tests. The plan reader
(:mod:`training.analysis.plans`) checks a measure against its entry; the plan
runner (:mod:`training.analysis.run`) calls the entry's runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from training.analysis import measures as ms

__all__ = ["MEASURE_KEYS", "TESTS", "Test"]


@dataclass(frozen=True)
class Test:
    """One statistical test of the plan format.

    Attributes
    ----------
    name : str
        What ``test =`` says in a plan.
    keys : tuple of str
        Keys a measure of this test must give.
    runner : callable
        :class:`~training.analysis.measures.Context` ->
        :class:`~training.analysis.measures.Computed`.
    figure : str or None
        The kind of figure each result draws (a drawer of the report), if any.
    groups : (int, int or None), optional
        The fewest and most groups compared when ``groups`` is given (None: any).
    outcome : str, optional
        ``"binary"`` (a 0/1 finding) or ``"continuous"`` (a measurement): what the
        columns of ``outcome_key`` must hold; ``mismatch`` is the advice when not.
    outcome_or_groups : bool
        The outcome may be left out when two ``groups`` are given (membership of
        the second is the outcome).
    longitudinal : bool
        Over repeated visits: the plan's ``subject`` and ``time`` columns are read.
    """

    name: str
    keys: tuple[str, ...]
    runner: Callable[[ms.Context], ms.Computed]
    figure: str | None
    groups: tuple[int, int | None] | None = None
    outcome: str | None = None
    outcome_key: str = "variables"
    mismatch: str = ""
    outcome_or_groups: bool = False
    longitudinal: bool = False


_MEASUREMENT = 'Use test = "fisher" (or logit) for a finding.'
_FINDING = "Use ancova, welch or mann_whitney for a measurement."
_LOGIT = 'Use test = "logit" for a finding.'
_VG = ("variables", "groups")

_ENTRIES = (
    Test("ancova", _VG, ms.groups_runner(ms.ancova, "groups"), "groups",
         groups=(2, None), outcome="continuous", mismatch=_MEASUREMENT),
    Test("welch", _VG, ms.groups_runner(ms.welch, "groups"), "groups",
         groups=(2, 2), outcome="continuous", mismatch=_MEASUREMENT),
    Test("mann_whitney", _VG, ms.groups_runner(ms.mann_whitney, "groups"), "groups",
         groups=(2, 2), outcome="continuous", mismatch=_MEASUREMENT),
    Test("kruskal", _VG, ms.groups_runner(ms.kruskal, "groups"), "groups",
         groups=(3, None), outcome="continuous", mismatch=_MEASUREMENT),
    Test("auc", _VG, ms.groups_runner(ms.auc, "roc"), "roc", groups=(2, 2)),
    Test("fisher", _VG, ms.groups_runner(ms.fisher, "bars"), "bars",
         groups=(2, 2), outcome="binary", mismatch=_FINDING),
    Test("correlation", ("x", "y"), ms.correlation, "scatter"),
    Test("ols", ("outcome", "predictors"), ms.regression, "forest",
         outcome="continuous", outcome_key="outcome", mismatch=_LOGIT),
    Test("logit", ("predictors",), ms.regression, "forest", groups=(2, 2),
         outcome="binary", outcome_key="outcome", outcome_or_groups=True),
    Test("efns_pns_2010", (), ms.efns_pns, "table"),
    Test("mixed", ("variables",), ms.mixed, None, outcome="continuous",
         mismatch=_MEASUREMENT, longitudinal=True),
    Test("change", ("variables",), ms.change, "groups", outcome="continuous",
         mismatch=_MEASUREMENT, longitudinal=True),
)  # fmt: skip

#: test name -> its entry, in the order the plan format documents them.
TESTS: dict[str, Test] = {t.name: t for t in _ENTRIES}

#: Every key a ``[[measure]]`` may hold.
MEASURE_KEYS = frozenset(
    {
        "name", "test", "title", "variables", "groups", "covariates", "strata",
        "family", "x", "y", "method", "outcome", "predictors", "within",
        "direction", "cutoffs", "standardize",
    }
)  # fmt: skip
