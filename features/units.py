"""Unit mix-ups: values that are possible numbers but impossible in the column's
unit (serum NfL in ng/mL where pg/mL is meant, FA in percent, MD in mm^2/s, QSM in
ppm, age in months, CMAP in uV...).

Two checks, both naming the likely unit and the conversion:

- **per value** (:func:`implausible`): a value outside the column's plausible
  range; when the value converted back from a known wrong unit lands inside it, the
  message says which unit it looks like. Such values are left missing at
  extraction and make their row unscorable at scoring.
- **per cohort** (:func:`cohort_mixups`): the column group's typical size (the
  largest absolute median over its columns) about a known factor away from the
  training cohort's (at scoring) or outside the range real cohorts have (at
  extraction). This catches what no single value shows (QSM in ppm: 0.15 is a
  possible susceptibility in ppb, but not as the pallidum's median).

The bounds are generous physiological ranges in the data dictionary's units: an
uncited estimate each (set wide, from typical published adult values), meant to
catch factors of 12, 100 and 1000, not to judge a value's biology.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class UnitCheck:
    """Plausible values of the columns matching ``pattern`` (in ``unit``).

    ``values``: where any single value lies; ``typical``: where the group's
    largest absolute median lies in a real cohort (None: not checked);
    ``mixups``: (wrong unit, factor) with value in the wrong unit = factor x value
    in ``unit``; ``hint``: what a value outside the range most likely means when
    no single factor explains it.
    """

    pattern: str
    unit: str
    values: tuple[float, float]
    typical: tuple[float, float] | None
    mixups: tuple[tuple[str, float], ...]
    hint: str = "check its unit and value"

    def matches(self, column: str) -> bool:
        return re.fullmatch(self.pattern, column) is not None


_DTI = r"dti_(cst_l|cst_r|optic_radiation_l|optic_radiation_r|callosal_body)"
# Uncited estimates, set wide (see the module docstring).
CHECKS: tuple[UnitCheck, ...] = (
    UnitCheck("age", "years", (1, 110), (15, 95), (("months", 12.0),)),
    UnitCheck("nfl_pg_ml", "pg/mL", (0.5, 5000), (3, 1000), (("ng/mL", 1e-3),)),
    UnitCheck(
        "chi3l1_ng_ml",
        "ng/mL",
        (1, 5000),
        (10, 2000),
        (("pg/mL", 1e3), ("ug/mL", 1e-3)),
    ),
    UnitCheck(_DTI + "_fa", "unitless", (0.02, 1.0), (0.2, 0.95), (("percent", 100),)),
    UnitCheck(
        _DTI + "_(md|ad|rd)",
        "10^-3 mm^2/s (= um^2/ms)",
        (0.05, 4.0),
        (0.3, 3.0),
        (("mm^2/s", 1e-3), ("m^2/s", 1e-9), ("um^2/s", 1e3)),
    ),
    UnitCheck(r"qsm_\w+_(l|r)", "ppb", (-500, 1000), (10, 500), (("ppm", 1e-3),)),
    UnitCheck(
        r"fs_(thalamus|caudate|putamen|pallidum|precentral|precuneus|pulvinar)"
        r"_(l|r)_mm3",
        "mm^3",
        (100, 100_000),
        (500, 40_000),
        (("cm^3 (mL)", 1e-3),),
    ),
    UnitCheck(
        "fs_total_gray_mm3",
        "mm^3",
        (100_000, 2_000_000),
        (300_000, 1_000_000),
        (("cm^3 (mL)", 1e-3),),
    ),
    UnitCheck(
        "fs_etiv_mm3",
        "mm^3",
        (500_000, 3_000_000),
        (900_000, 2_200_000),
        (("cm^3 (mL)", 1e-3),),
    ),
    UnitCheck(r"vbm_\w+_(l|r)_ml", "mL", (0.01, 100), (0.5, 60), (("mm^3", 1e3),)),
    UnitCheck(r"ncs_\w+_cmap_mv", "mV", (0, 100), (0.5, 25), (("uV", 1e3),)),
    UnitCheck("fvc_pct", "% predicted", (5, 170), (20, 140), (("a fraction", 1e-2),)),
    # LCModel without water scaling (no DOWS / water reference) writes values on
    # the spectrum's arbitrary scale (e.g. NAA 0.08 or 1e-6): no fixed factor.
    UnitCheck(
        r"mrs_(naa|glu|gaba|cr)",
        "institutional units (~mM)",
        (0.2, 60),
        (3, 40),
        (),
        "it looks like LCModel output not scaled to water (no water reference, "
        "DOWS): re-run LCModel with the unsuppressed water scan, or use the ratios",
    ),
)


@functools.lru_cache(maxsize=4096)
def check_for(column: str) -> UnitCheck | None:
    """The unit check of ``column``, None when it has none.

    Examples
    --------
    >>> check_for("nfl_pg_ml").unit, check_for("qsm_pallidum_l").unit
    ('pg/mL', 'ppb')
    >>> check_for("alsfrs_r") is None
    True
    """
    return next((c for c in CHECKS if c.matches(column)), None)


def implausible(column: str, value: float) -> str | None:
    """Why ``value`` cannot be ``column``'s, in its unit; None when plausible.

    Examples
    --------
    >>> print(implausible("nfl_pg_ml", 0.012))  # doctest: +NORMALIZE_WHITESPACE
    nfl_pg_ml = 0.012 is outside the plausible 0.5-5000 pg/mL: it looks like ng/mL;
    multiply by 1000
    >>> implausible("age", 744)
    'age = 744 is outside the plausible 1-110 years: it looks like months; divide by 12'
    >>> implausible("nfl_pg_ml", 12.0) is None
    True
    """
    check = check_for(column)
    if check is None or not math.isfinite(value):
        return None
    lo, hi = check.values
    if lo <= value <= hi:
        return None
    message = (
        f"{column} = {value:g} is outside the plausible {lo:g}-{hi:g} {check.unit}"
    )
    # a unit is named only for a value far outside (x3), not a tail value
    if value > hi:
        far = value > 3 * hi
    else:
        far = value < (lo / 3 if lo > 0 else 3 * lo)
    for unit, factor in check.mixups:
        if far and lo <= value / factor <= hi:
            return f"{message}: it looks like {unit}; {_conversion(factor)}"
    return f"{message}; {check.hint}"


def _conversion(factor: float) -> str:
    """How to convert a value ``factor`` times too large back.

    >>> _conversion(1e-3), _conversion(12.0), _conversion(100)
    ('multiply by 1000', 'divide by 12', 'divide by 100')
    """
    if factor < 1:
        return f"multiply by {1 / factor:g}"
    return f"divide by {factor:g}"


def group_size(table: pd.DataFrame, check: UnitCheck) -> float | None:
    """The largest absolute column median of ``check``'s columns in ``table``
    (None with fewer than 5 values in every column)."""
    sizes = []
    for c in table.columns:
        if check.matches(c):
            v = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if v.size >= 5:
                sizes.append(abs(float(np.median(v))))
    return max(sizes) if sizes else None


def reference_sizes(reference: dict[str, dict]) -> dict[str, float]:
    """``group_size`` of each check from a model card's reference statistics
    (the training rows' medians, ``q50``), keyed by the check's pattern."""
    out = {}
    for check in CHECKS:
        medians = [
            abs(float(stats["q50"]))
            for c, stats in reference.items()
            if check.matches(c) and stats.get("q50") is not None
        ]
        if medians:
            out[check.pattern] = max(medians)
    return out


def cohort_mixups(
    table: pd.DataFrame, reference: dict[str, float] | None = None
) -> list[tuple[list[str], str]]:
    """The columns and a message for each column group whose values as a whole
    look like another unit.

    ``reference``: :func:`reference_sizes` of the training cohort; without it the
    group's size is compared with the range real cohorts have.

    Examples
    --------
    >>> t = pd.DataFrame({"nfl_pg_ml": [0.01, 0.012, 0.02, 0.015, 0.03, 0.011]})
    >>> cohort_mixups(t)[0][0]
    ['nfl_pg_ml']
    >>> cohort_mixups(t, {"nfl_pg_ml": 14.0})[0][1].endswith("multiply by 1000.")
    True
    """
    found = []
    for check in CHECKS:
        size = group_size(table, check)
        if size is None or size == 0:
            continue
        ref = (reference or {}).get(check.pattern)
        columns = [c for c in table.columns if check.matches(c)]
        named = columns[0] if len(columns) == 1 else f"{columns[0]} and the other "
        if len(columns) > 1:
            named += f"{len(columns) - 1} column(s) like it"
        for unit, factor in check.mixups:
            if ref:
                ratio = size / ref
                hit = abs(math.log10(ratio / factor)) < math.log10(3)
                where = f"{ratio:.3g} times the training cohort's ({ref:.3g})"
            else:
                lo, hi = check.typical or (0, math.inf)
                hit = not lo <= size <= hi and lo <= size / factor <= hi
                where = f"outside the {lo:g}-{hi:g} {check.unit} real cohorts have"
            if hit:
                found.append(
                    (
                        columns,
                        f"{named}: typical value {size:.3g} is {where}; the "
                        f"values look like {unit}, not {check.unit}: "
                        f"{_conversion(factor)}.",
                    )
                )
                break
    return found


__all__ = [
    "CHECKS",
    "UnitCheck",
    "check_for",
    "cohort_mixups",
    "group_size",
    "implausible",
    "reference_sizes",
]
