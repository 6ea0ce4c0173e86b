"""Analysis plans: TOML files that declare which statistics to compute on a cohort.

A plan is read once (:func:`read_plan`) and checked against the table it runs on
(:meth:`Plan.checked`); every error names the plan file and the line of the key
or value at fault, and says how to fix it (an unknown column comes with the
closest names in the table). The format, with every key::

    [plan]
    name = "taiwan_2023"            # the results' "plan" column
    title = "..."                   # the report's heading
    source = "Ann Clin Transl Neurol 2023;10:1456"
    label = "diagnosis"             # the group column
    controls = "HC"                 # the reference class of ComBat
    harmonize = false               # true: ComBat fitted on the controls first
    n_boot = 1000                   # bootstrap resamples of AUC / shift intervals
    seed = 0
    subject = "participant_id"      # repeated visits (mixed, change): the subject
    time = "months_since_baseline"  # and the visit time column, with
    per_year = 12                   # its units per year

    [derived]                       # new columns: arithmetic on columns (expressions)
    precentral_gm_mm3 = "fs_precentral_l_mm3 + fs_precentral_r_mm3"

    [strata.early]                  # a subset: rows of `classes` must meet `where`
    classes = ["ALS"]               # (other classes are kept); omit = every row
    where = "months_since_onset <= 12"

    [ica]                           # group ICA of the cohort's fMRIPrep BOLD
    n_components = 20               # (needs --cohort): adds ica_smn_sma, _m1,
    smoothing_fwhm = 6.0            # _s1, _precuneus at each participant's first
    n_init = 10                     # visit with BOLD (features.group_ica)

    [[measure]]
    name = "gm_als_vs_hc"           # one CSV and one report section per measure
    test = "ancova"                 # see TESTS
    variables = ["precentral_gm_mm3", "dti_cst_*_fa"]   # * matches columns
    groups = ["HC", "ALS"]          # first = reference; "MMN+NMO+MS" pools classes
    covariates = ["age", "male"]
    strata = ["all", "early"]       # default ["all"]
    family = "group differences"    # FDR (Benjamini-Hochberg) within a family

Keys per test: ``variables`` + ``groups`` (ancova, welch, mann_whitney, kruskal,
auc, fisher); ``x`` + ``y`` (+ ``method``: pearson/spearman; partial when
``covariates`` are given) for correlation; ``outcome`` + ``predictors`` for ols and
logit (logit's outcome may be omitted with two ``groups``: membership of the
second); ``within`` restricts any measure to classes; ``direction``
(higher/lower/auto) and ``cutoffs`` (numbers or "reference_centile:P") for auc;
``standardize = true`` z-scores ols/logit variables (coefficients per SD).
Over repeated visits, ``variables`` (+ optional ``groups``) for ``mixed`` (linear
mixed model, random intercept and slope per subject, group x time) and ``change``
(first vs last visit: paired t and Wilcoxon, annual rate, standardised response
mean, participants per arm to detect a 25 % and 50 % slowing).
"""

from __future__ import annotations

import difflib
import fnmatch
import operator
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training import expressions

#: test -> the keys it needs.
TESTS: dict[str, tuple[str, ...]] = {
    "ancova": ("variables", "groups"),
    "welch": ("variables", "groups"),
    "mann_whitney": ("variables", "groups"),
    "kruskal": ("variables", "groups"),
    "auc": ("variables", "groups"),
    "fisher": ("variables", "groups"),
    "correlation": ("x", "y"),
    "ols": ("outcome", "predictors"),
    "logit": ("predictors",),
    "efns_pns_2010": (),
    "mixed": ("variables",),
    "change": ("variables",),
}
#: Tests over repeated visits: they read the plan's ``subject`` and ``time``.
LONGITUDINAL = ("mixed", "change")
TWO_GROUPS = ("welch", "mann_whitney", "auc", "fisher", "logit")
BINARY_OUTCOME = ("fisher",)
CONTINUOUS_OUTCOME = ("ancova", "welch", "mann_whitney", "kruskal", *LONGITUDINAL)
MEASURE_KEYS = {
    "name", "test", "title", "variables", "groups", "covariates", "strata", "family",
    "x", "y", "method", "outcome", "predictors", "within", "direction", "cutoffs",
    "standardize",
}  # fmt: skip
PLAN_KEYS = {"name", "title", "source", "label", "controls", "harmonize", "n_boot"}
PLAN_KEYS |= {"seed", "description", "subject", "time", "per_year"}
#: Fewest subjects per group (and per stratum) a measure accepts.
MIN_GROUP = 3
_OPERATORS = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq,
    "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}  # fmt: skip
_WHERE = re.compile(r"^\s*(\w+)\s*(<=|>=|==|!=|<|>)\s*(-?[\d.]+(?:e-?\d+)?)\s*$")


class PlanError(ValueError):
    """A plan that cannot run: the message names the file and line."""


def closest(name: str, options, n: int = 3) -> str:
    """' (closest: a, b)' naming the options nearest to ``name``, or ''."""
    near = difflib.get_close_matches(str(name), [str(o) for o in options], n, 0.5)
    return f" (closest: {', '.join(near)})" if near else ""


@dataclass(frozen=True)
class Stratum:
    name: str
    where: str = ""
    classes: tuple[str, ...] = ()

    def mask(self, table: pd.DataFrame, label: str) -> np.ndarray:
        """Rows kept: every row of another class, and rows of ``classes`` (all
        classes when empty) that meet ``where``; a missing value does not."""
        if not self.where:
            return np.ones(len(table), bool)
        column, op, number = _WHERE.match(self.where).groups()
        v = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
        with np.errstate(invalid="ignore"):
            ok = _OPERATORS[op](v, float(number)) & ~np.isnan(v)
        if not self.classes:
            return ok
        return ok | ~table[label].astype(str).isin(self.classes).to_numpy()


ALL = Stratum("all")


@dataclass(frozen=True)
class Measure:
    """One ``[[measure]]`` of a plan, with its keys as read."""

    name: str
    test: str
    spec: dict
    line: int

    def get(self, key: str, default=None):
        return self.spec.get(key, default)

    def groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """(group name, its classes) in plan order; the first is the reference."""
        return [(g, tuple(g.split("+"))) for g in self.get("groups", [])]


@dataclass
class Plan:
    """A read plan; :meth:`checked` validates it against a table."""

    path: Path
    text: str
    name: str
    settings: dict
    derived: dict[str, expressions.Expression]
    strata: dict[str, Stratum]
    measures: list[Measure] = field(default_factory=list)
    #: ``[ica]``: group ICA of the cohort's BOLD (features.group_ica), or None.
    ica: dict | None = None

    @property
    def label(self) -> str:
        return self.settings.get("label", "diagnosis")

    @property
    def subject(self) -> str:
        return self.settings.get("subject", "participant_id")

    @property
    def time(self) -> str:
        return self.settings.get("time", "months_since_baseline")

    def where(self, key: str, value=None, measure: Measure | None = None) -> str:
        """``file:line`` of ``key`` (holding ``value`` when given) in the plan,
        within ``measure``'s block when given."""
        lines = self.text.splitlines()
        start, stop = 0, len(lines)
        if measure is not None:
            start = measure.line - 1
            later = [m.line - 1 for m in self.measures if m.line > measure.line]
            stop = min(later, default=len(lines))
        line = start + 1
        for i in range(start, stop):
            if re.match(rf"\s*\[?\s*(strata\.)?{re.escape(key)}\b", lines[i]):
                line = i + 1
                break
        if value is not None:
            for i in range(line - 1, stop):
                if f'"{value}"' in lines[i] or f"'{value}'" in lines[i]:
                    return f"{self.path}:{i + 1}"
        return f"{self.path}:{line}"

    def fail(self, text: str, key: str, value=None, measure=None) -> PlanError:
        what = f"measure {measure.name!r}: " if measure is not None else ""
        return PlanError(f"{self.where(key, value, measure)}: {what}{text}")

    # ---- checks against a table ---------------------------------------------------

    def columns(self, table: pd.DataFrame, m: Measure, key: str) -> list[str]:
        """The columns ``m[key]`` names (``*`` patterns expanded), all checked."""
        names = m.get(key, [])
        names = [names] if isinstance(names, str) else list(names)
        out = []
        for name in names:
            if not isinstance(name, str):
                raise self.fail(
                    f"{key} holds {name!r}; give column names as text.", key, measure=m
                )
            found = fnmatch.filter(table.columns, name) if "*" in name else [name]
            if not found or found[0] not in table.columns:
                raise self.fail(
                    f"column {name!r} ({key}) is not in the table"
                    f"{closest(name.replace('*', ''), table.columns)}. Fix the name, "
                    "add it under [derived], or extract the modality.",
                    key,
                    name,
                    m,
                )
            out += [c for c in found if c not in out]
        return out

    def classes(
        self, table: pd.DataFrame, m: Measure, key: str
    ) -> list[tuple[str, tuple[str, ...]]]:
        known = set(table[self.label].dropna().astype(str))
        groups = m.groups() if key == "groups" else [(c, (c,)) for c in m.get(key, [])]
        for name, members in groups:
            for c in members:
                if c not in known:
                    raise self.fail(
                        f"class {c!r} ({key}) does not occur in column "
                        f"{self.label!r}{closest(c, known)}; classes are "
                        f"{sorted(known)}.",
                        key,
                        name,
                        m,
                    )
        return groups

    def checked(self, table: pd.DataFrame) -> Plan:
        """Check every measure against ``table``; raises :class:`PlanError`."""
        if self.label not in table.columns:
            raise self.fail(
                f"label column {self.label!r} is not in the table"
                f"{closest(self.label, table.columns)}; set label = the diagnosis "
                "column.",
                "label",
            )
        known = set(table[self.label].dropna().astype(str))
        for name, st in self.strata.items():
            for c in st.classes:
                if c not in known:
                    raise self.fail(
                        f"stratum {name!r}: class {c!r} does not occur in column "
                        f"{self.label!r}{closest(c, known)}.",
                        name,
                    )
            if st.where:
                column = _WHERE.match(st.where).group(1)
                if column not in table.columns:
                    raise self.fail(
                        f"stratum {name!r}: column {column!r} is not in the table"
                        f"{closest(column, table.columns)}.",
                        name,
                    )
        if any(m.test in LONGITUDINAL for m in self.measures):
            for key, column in (("subject", self.subject), ("time", self.time)):
                if column not in table.columns:
                    raise self.fail(
                        f"{key} column {column!r} is not in the table"
                        f"{closest(column, table.columns)}; the tests "
                        f"{', '.join(LONGITUDINAL)} need repeated visits: set "
                        f"{key} = the column.",
                        key if key in self.settings else "plan",
                    )
        for m in self.measures:
            need = TESTS[m.test]
            for key in need:
                if key not in m.spec and not (m.test == "logit" and key == "outcome"):
                    raise self.fail(
                        f"test {m.test!r} needs {key!r}.", "test", measure=m
                    )
            for key in ("variables", "x", "y", "predictors", "covariates", "outcome"):
                if key in m.spec:
                    for c in self.columns(table, m, key):
                        self._numeric(table, c, m, key)
            self.classes(table, m, "within")
            groups = self.classes(table, m, "groups")
            if m.test in TWO_GROUPS and "groups" in m.spec and len(groups) != 2:
                raise self.fail(
                    f"test {m.test!r} compares exactly two groups; got {len(groups)}.",
                    "groups",
                    measure=m,
                )
            if m.test in ("ancova", "kruskal") and len(groups) < 2:
                raise self.fail(
                    f"test {m.test!r} needs two or more groups.", "groups", measure=m
                )
            if m.test == "kruskal" and len(groups) < 3:
                raise self.fail(
                    "kruskal compares three or more groups; use mann_whitney for two.",
                    "groups",
                    measure=m,
                )
            if m.test == "logit" and "outcome" not in m.spec and len(groups) != 2:
                raise self.fail(
                    "logit needs an outcome column or two groups.",
                    "predictors",
                    measure=m,
                )
            for s in m.get("strata", ["all"]):
                if s != "all" and s not in self.strata:
                    raise self.fail(
                        f"stratum {s!r} is not defined{closest(s, self.strata)}; add "
                        f"[strata.{s}] with classes and where.",
                        "strata",
                        s,
                        m,
                    )
            self._types(table, m)
        return self

    def _numeric(self, table, column, m, key) -> None:
        col = table[column]
        if not pd.api.types.is_numeric_dtype(col) and col.notna().any():
            raise self.fail(
                f"column {column!r} ({key}) is not numeric: it holds "
                f"{col.dropna().iloc[0]!r}. Code it as numbers (e.g. 0/1).",
                key,
                column,
                m,
            )

    def _types(self, table: pd.DataFrame, m: Measure) -> None:
        def binary(c: str) -> bool:
            v = table[c].dropna()
            return len(v) > 0 and bool(v.isin([0, 1]).all())

        for c in self.columns(table, m, "variables") if "variables" in m.spec else []:
            if m.test in BINARY_OUTCOME and not binary(c):
                raise self.fail(
                    f"test {m.test!r} needs a 0/1 finding; {c!r} holds other values "
                    f"(e.g. {table[c].dropna().iloc[0]!r}). Use ancova, welch or "
                    "mann_whitney for a measurement.",
                    "variables",
                    c,
                    m,
                )
            if m.test in CONTINUOUS_OUTCOME and binary(c):
                raise self.fail(
                    f"{c!r} is a 0/1 finding; test {m.test!r} compares measurements. "
                    'Use test = "fisher" (or logit) for a finding.',
                    "variables",
                    c,
                    m,
                )
        for c in self.columns(table, m, "outcome") if "outcome" in m.spec else []:
            if m.test == "ols" and binary(c):
                raise self.fail(
                    f'outcome {c!r} is 0/1; use test = "logit".', "outcome", c, m
                )
            if m.test == "logit" and not binary(c):
                raise self.fail(
                    f"logit needs a 0/1 outcome; {c!r} holds other values.",
                    "outcome",
                    c,
                    m,
                )


#: ``[ica]`` keys and their defaults (features.group_ica.GroupICA).
ICA_KEYS = {"n_components": 20, "smoothing_fwhm": 6.0, "n_init": 10}


def _ica_settings(plan: Plan, raw) -> dict:
    if not isinstance(raw, dict):
        raise plan.fail("[ica] must be a table of settings.", "ica")
    for key, value in raw.items():
        if key not in ICA_KEYS:
            raise plan.fail(
                f"unknown [ica] key {key!r}{closest(key, ICA_KEYS)}; [ica] has "
                f"{', '.join(ICA_KEYS)}.",
                key,
            )
        integer = key != "smoothing_fwhm"
        if (
            isinstance(value, bool)
            or not isinstance(value, int if integer else int | float)
            or value < (1 if integer else 0)
        ):
            want = "a whole number >= 1" if integer else "a number of mm >= 0"
            raise plan.fail(f"[ica] {key} = {value!r} must be {want}.", key)
    return {**ICA_KEYS, **raw}


def read_plan(path: str | Path) -> Plan:
    """Read and check the structure of a plan file (no table needed)."""
    path = Path(path)
    if not path.is_file():
        raise PlanError(
            f"plan file not found: {path}. Pass --plan with a .toml file (see "
            "experiments/analyses/)."
        )
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(
            f"{path}: not valid TOML ({exc}); fix the syntax there."
        ) from None
    headers = [
        i + 1
        for i, ln in enumerate(text.splitlines())
        if re.match(r"\s*\[\[\s*measure\s*\]\]", ln)
    ]
    settings = raw.get("plan", {})
    plan = Plan(path, text, settings.get("name", path.stem), settings, {}, {})
    for key in settings:
        if key not in PLAN_KEYS:
            raise plan.fail(
                f"unknown [plan] key {key!r}{closest(key, PLAN_KEYS)}.", key
            )
    for key in raw:
        if key not in ("plan", "derived", "strata", "ica", "measure"):
            raise plan.fail(
                f"unknown table [{key}]; a plan has [plan], [derived], "
                "[strata.NAME], [ica] and [[measure]].",
                key,
            )
    if "ica" in raw:
        plan.ica = _ica_settings(plan, raw["ica"])
    for name, text in raw.get("derived", {}).items():
        if not isinstance(text, str):
            raise plan.fail(
                f"[derived] {name} = {text!r} is not text; write the expression in "
                'quotes, e.g. "a + b".',
                name,
            )
        try:
            plan.derived[str(name)] = expressions.parse(text)
        except expressions.ExpressionError as exc:
            raise plan.fail(f"[derived] {name} = {text!r}: {exc}.", name) from None
    for name, st in raw.get("strata", {}).items():
        unknown = set(st) - {"classes", "where"}
        if unknown:
            raise plan.fail(
                f"stratum {name!r}: unknown key {sorted(unknown)[0]!r}; a stratum "
                "has classes and where.",
                name,
            )
        where = st.get("where", "")
        if where and not _WHERE.match(where):
            raise plan.fail(
                f"stratum {name!r}: where = {where!r} is not 'column OP number' "
                "(OP one of <= >= == != < >).",
                name,
            )
        plan.strata[name] = Stratum(name, where, tuple(st.get("classes", ())))
    measures = raw.get("measure", [])
    if not measures:
        raise plan.fail("the plan declares no [[measure]].", "plan")
    seen = set()
    for i, spec in enumerate(measures):
        line = headers[i] if i < len(headers) else 1
        m = Measure(
            str(spec.get("name", f"measure_{i + 1}")),
            str(spec.get("test", "")),
            spec,
            line,
        )
        plan.measures.append(m)
    for m in plan.measures:
        if m.test not in TESTS:
            raise plan.fail(
                f"unknown test {m.test!r}{closest(m.test, TESTS)}; tests are "
                f"{', '.join(TESTS)}.",
                "test",
                measure=m,
            )
        unknown = set(m.spec) - MEASURE_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise plan.fail(
                f"unknown key {key!r}{closest(key, MEASURE_KEYS)}.", key, measure=m
            )
        if not re.fullmatch(r"[\w.-]+", m.name) or m.name in seen:
            raise plan.fail(
                f"name {m.name!r} must be unique and use letters, digits, _ . - "
                "only (it names a CSV).",
                "name",
                measure=m,
            )
        seen.add(m.name)
        if m.get("method", "pearson") not in ("pearson", "spearman"):
            raise plan.fail(
                "method must be 'pearson' or 'spearman'.", "method", measure=m
            )
        if m.get("direction", "auto") not in ("higher", "lower", "auto"):
            raise plan.fail(
                "direction must be 'higher', 'lower' or 'auto'.", "direction", measure=m
            )
        for cut in m.get("cutoffs", []):
            if not isinstance(cut, int | float) and not re.fullmatch(
                r"reference_centile:\d+(\.\d+)?", str(cut)
            ):
                raise plan.fail(
                    f"cutoff {cut!r} must be a number or 'reference_centile:P'.",
                    "cutoffs",
                    measure=m,
                )
    return plan
