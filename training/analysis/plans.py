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
    n_init = 10                     # visit with BOLD (features.fmri.group_ica)

    [[measure]]
    name = "gm_als_vs_hc"           # one CSV and one report section per measure
    test = "ancova"                 # see TESTS
    variables = ["precentral_gm_mm3", "dti_cst_*_fa"]   # * matches columns
    groups = ["HC", "ALS"]          # first = reference; "MMN+NMO+MS" pools classes
    covariates = ["age", "male"]
    strata = ["all", "early"]       # default ["all"]
    family = "group differences"    # FDR (Benjamini-Hochberg) within a family

Each test's keys, groups and outcome are its entry in
:data:`training.analysis.registry.TESTS`. Keys per test: ``variables`` +
``groups`` (ancova, welch, mann_whitney, kruskal, auc, fisher); ``x`` + ``y``
(+ ``method``: pearson/spearman; partial when ``covariates`` are given) for
correlation; ``outcome`` + ``predictors`` for ols and
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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from common.schema import VISIT_TIME
from training.analysis import expressions
from training.analysis.registry import MEASURE_KEYS, TESTS

_OPERATORS = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq,
    "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}  # fmt: skip
_WHERE = re.compile(r"^\s*(\w+)\s*(<=|>=|==|!=|<|>)\s*(-?[\d.]+(?:e-?\d+)?)\s*$")


class PlanError(ValueError):
    """A plan that cannot run: the message names the file and line."""


@dataclass(frozen=True)
class PlanSettings:
    """The ``[plan]`` table, read once with its types checked (defaults below)."""

    name: str
    title: str = ""
    source: str = ""
    description: str = ""
    label: str = "diagnosis"
    controls: str = "HC"
    harmonize: bool = False
    n_boot: int = 1000
    seed: int = 0
    subject: str = "participant_id"
    time: str = VISIT_TIME
    per_year: float = 12.0
    #: The keys the plan file sets (the others hold their defaults).
    given: frozenset[str] = frozenset()

    @property
    def heading(self) -> str:
        return self.title or self.name


#: [plan] key -> the type its value must have, and how to say it.
_SETTING_TYPES = {
    "name": (str, "text"), "title": (str, "text"), "source": (str, "text"),
    "description": (str, "text"), "label": (str, "a column name"),
    "controls": (str, "a class"), "harmonize": (bool, "true or false"),
    "n_boot": (int, "a whole number >= 0"), "seed": (int, "a whole number >= 0"),
    "subject": (str, "a column name"), "time": (str, "a column name"),
    "per_year": (float, "a number > 0"),
}  # fmt: skip
PLAN_KEYS = frozenset(_SETTING_TYPES)


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


@dataclass(frozen=True)
class Plan:
    """A read plan; :meth:`checked` validates it against a table."""

    path: Path
    text: str
    settings: PlanSettings
    derived: dict[str, expressions.Expression] = field(default_factory=dict)
    strata: dict[str, Stratum] = field(default_factory=dict)
    measures: list[Measure] = field(default_factory=list)
    #: ``[ica]``: group ICA of the cohort's BOLD (features.fmri.group_ica), or None.
    ica: dict | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def label(self) -> str:
        return self.settings.label

    @property
    def subject(self) -> str:
        return self.settings.subject

    @property
    def time(self) -> str:
        return self.settings.time

    def with_label(self, label: str) -> Plan:
        """This plan with another group column (``--label-column``)."""
        settings = replace(self.settings, label=label)
        return replace(self, settings=settings)

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
        longitudinal = [t for t in TESTS.values() if t.longitudinal]
        if any(TESTS[m.test].longitudinal for m in self.measures):
            for key, column in (("subject", self.subject), ("time", self.time)):
                if column not in table.columns:
                    raise self.fail(
                        f"{key} column {column!r} is not in the table"
                        f"{closest(column, table.columns)}; the tests "
                        f"{', '.join(t.name for t in longitudinal)} need repeated "
                        f"visits: set {key} = the column.",
                        key if key in self.settings.given else "plan",
                    )
        for m in self.measures:
            test = TESTS[m.test]
            for key in test.keys:
                if key not in m.spec:
                    raise self.fail(
                        f"test {m.test!r} needs {key!r}.", "test", measure=m
                    )
            for key in ("variables", "x", "y", "predictors", "covariates", "outcome"):
                if key in m.spec:
                    for c in self.columns(table, m, key):
                        self._numeric(table, c, m, key)
            self.classes(table, m, "within")
            groups = self.classes(table, m, "groups")
            self._arity(test, m, len(groups))
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

    def _arity(self, test, m: Measure, n: int) -> None:
        """The number of groups against the test's entry."""
        if test.outcome_or_groups and "outcome" not in m.spec and n != 2:
            raise self.fail(
                f"{test.name} needs an outcome column or two groups.",
                "predictors",
                measure=m,
            )
        if test.groups is None or "groups" not in m.spec:
            return
        fewest, most = test.groups
        if fewest == most and n != fewest:
            raise self.fail(
                f"test {test.name!r} compares exactly {_WORDS[fewest]} groups; "
                f"got {n}.",
                "groups",
                measure=m,
            )
        if n < fewest:
            two = [
                t.name
                for t in TESTS.values()
                if t.groups == (2, 2) and t.outcome == test.outcome
            ]
            hint = f"; for two use {' or '.join(two)}" if n == 2 and two else ""
            raise self.fail(
                f"test {test.name!r} needs {_WORDS[fewest]} or more groups; got "
                f"{n}{hint}.",
                "groups",
                measure=m,
            )

    def _types(self, table: pd.DataFrame, m: Measure) -> None:
        """The outcome columns against what the test's entry says they hold."""
        test = TESTS[m.test]
        if test.outcome is None or test.outcome_key not in m.spec:
            return
        key = test.outcome_key
        for c in self.columns(table, m, key):
            v = table[c].dropna()
            binary = len(v) > 0 and bool(v.isin([0, 1]).all())
            if test.outcome == "binary" and not binary:
                raise self.fail(
                    f"test {m.test!r} needs a 0/1 finding; {c!r} ({key}) holds "
                    f"other values (e.g. {v.iloc[0]!r}). {test.mismatch}".rstrip(),
                    key,
                    c,
                    m,
                )
            if test.outcome == "continuous" and binary:
                raise self.fail(
                    f"{c!r} ({key}) is a 0/1 finding; test {m.test!r} compares "
                    f"measurements. {test.mismatch}",
                    key,
                    c,
                    m,
                )


_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


#: ``[ica]`` keys and their defaults (features.fmri.group_ica.GroupICA).
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
    draft = Plan(path, text, PlanSettings(path.stem))  # for error locations
    settings = _settings(draft, raw.get("plan", {}))
    plan = Plan(path, text, settings)
    for key in raw:
        if key not in ("plan", "derived", "strata", "ica", "measure"):
            raise plan.fail(
                f"unknown table [{key}]; a plan has [plan], [derived], "
                "[strata.NAME], [ica] and [[measure]].",
                key,
            )
    ica = _ica_settings(plan, raw["ica"]) if "ica" in raw else None
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
    return replace(plan, ica=ica)


def _settings(plan: Plan, raw) -> PlanSettings:
    """``[plan]`` as :class:`PlanSettings`, each value of the right type."""
    if not isinstance(raw, dict):
        raise plan.fail("[plan] must be a table of settings.", "plan")
    values = {}
    for key, value in raw.items():
        if key not in PLAN_KEYS:
            raise plan.fail(
                f"unknown [plan] key {key!r}{closest(key, PLAN_KEYS)}.", key
            )
        kind, say = _SETTING_TYPES[key]
        if kind is bool or isinstance(value, bool):
            ok = kind is bool and isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and value > 0
        elif kind is int:
            ok = isinstance(value, int) and value >= 0
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise plan.fail(f"[plan] {key} = {value!r} must be {say}.", key)
        values[key] = float(value) if kind is float else value
    values.setdefault("name", plan.path.stem)
    return PlanSettings(**values, given=frozenset(raw))
