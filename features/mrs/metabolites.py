"""Spectroscopy features: CRLB quality control of an LCModel result, the
metabolites and ratios of :data:`MRS_COLUMNS` (Glu, NAA, GABA, Cr+PCr, Glu/NAA,
Glu/GABA, NAA/Cr, FWHM, S/N), from one subject's LCModel file
(:func:`mrs_features`) or the cohort's tidy ``mrs.tsv`` (:func:`read_mrs_table`);
both give the same columns.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.cohort.cells import Rule, drop_duplicate_rows, load_table, numeric_column
from features.cohort.participants import Issue, empty_index
from features.mrs.lcmodel import (
    LCModelResult,
    concentration_frame,
    read_lcmodel_csv,
    read_lcmodel_table,
)

__all__ = [
    "MAX_CRLB_PCT",
    "MRS_COLUMNS",
    "apply_crlb_threshold",
    "mrs_features",
    "read_mrs_table",
]


def _crlb_limit(value: object, name: str) -> float:
    """``value`` as a positive finite float, else a ValueError naming ``name``."""
    try:
        limit = float(value)
    except (TypeError, ValueError):
        limit = math.nan
    if not 0 < limit < math.inf:
        raise ValueError(
            f"{name} = {value!r}; it must be a positive number of percent "
            "(20 is the usual CRLB cut-off)."
        )
    return limit


def apply_crlb_threshold(
    result: LCModelResult, max_sd_pct: float = 20.0
) -> tuple[pd.Series, pd.Series]:
    """Blank out concentrations whose %SD (Cramer-Rao lower bound) is too high.

    Parameters
    ----------
    result : LCModelResult
        Output of :func:`read_lcmodel_table` or :func:`read_lcmodel_csv`.
    max_sd_pct : float, default=20.0
        Largest accepted %SD; estimates with a larger %SD are rejected.

    Returns
    -------
    concentrations : pandas.Series
        ``conc`` per metabolite, NaN where rejected.
    rejected : pandas.Series of bool
        True where ``sd_pct > max_sd_pct``.

    Raises
    ------
    ValueError
        If ``max_sd_pct`` is not a positive finite number.

    Examples
    --------
    >>> res = read_lcmodel_table("tests/data/real/lcmodel/svs_97.TABLE")
    >>> conc, rejected = apply_crlb_threshold(res, max_sd_pct=20)
    >>> bool(rejected["Glu"]), bool(rejected["NAA"])
    (True, False)
    """
    limit = _crlb_limit(max_sd_pct, "max_sd_pct")
    table = result.concentrations
    rejected = (table["sd_pct"] > limit).rename("rejected")
    concentrations = table["conc"].mask(rejected).rename("conc")
    return concentrations, rejected


MRS_METABOLITES = {
    "NAA": "mrs_naa",
    "Glu": "mrs_glu",
    "GABA": "mrs_gaba",
    "Cr+PCr": "mrs_cr",
}
MAX_CRLB_PCT = 20.0  # LCModel %SD above which a fit is rejected (refs#mrs)
#: The columns of :func:`mrs_features` and :func:`read_mrs_table`, in order.
MRS_COLUMNS: tuple[str, ...] = (
    *(f"{name}{x}" for name in MRS_METABOLITES.values() for x in ("", "_rejected")),
    "mrs_glu_naa",
    "mrs_glu_gaba",
    "mrs_naa_cr",
    "mrs_fwhm_ppm",
    "mrs_snr",
)


def _with_total_creatine(result: LCModelResult) -> LCModelResult:
    """Add a ``Cr+PCr`` row (sum of ``Cr`` and ``PCr``) when LCModel wrote none.

    The %SD of the sum propagates the two absolute SDs as if independent; Cr and
    PCr estimates are usually anti-correlated, so this over-estimates it (errs
    towards rejecting). A component estimated at 0 (LCModel's ``999%``) adds none.
    """
    table = result.concentrations
    if "Cr+PCr" in table.index or not {"Cr", "PCr"} <= set(table.index):
        return result
    cr, pcr = table.loc["Cr"], table.loc["PCr"]
    total = cr["conc"] + pcr["conc"]
    sd_abs = math.hypot(cr["conc"] * cr["sd_pct"], pcr["conc"] * pcr["sd_pct"]) / 100
    sd_pct = 100 * sd_abs / total if total > 0 else 999.0
    extra = concentration_frame({"Cr+PCr": (total, sd_pct, cr["ratio"] + pcr["ratio"])})
    return replace(result, concentrations=pd.concat([table, extra]))


def _ratios_and_quality(
    out: dict[str, float] | pd.DataFrame,
    fwhm: float | pd.Series,
    snr: float | pd.Series,
) -> None:
    """Fill the ratio, FWHM and S/N entries of ``out`` in :data:`MRS_COLUMNS` order."""
    out["mrs_glu_naa"] = out["mrs_glu"] / out["mrs_naa"]
    out["mrs_glu_gaba"] = out["mrs_glu"] / out["mrs_gaba"]
    out["mrs_naa_cr"] = out["mrs_naa"] / out["mrs_cr"]
    out["mrs_fwhm_ppm"] = fwhm
    out["mrs_snr"] = snr


def mrs_features(table: Path, max_crlb_pct: float = MAX_CRLB_PCT) -> dict[str, float]:
    """SMA concentrations with CRLB quality control, their ratios, FWHM and S/N.

    Parameters
    ----------
    table : Path
        An LCModel ``.table`` file, or its ``.csv``/``.CSV`` output (chosen by the
        suffix; the ``.CSV`` has no FWHM or S/N, so those are NaN).
    max_crlb_pct : float, default=20.0
        Largest accepted %SD (Cramer-Rao lower bound).

    Returns
    -------
    dict of str to float
        Empty when ``table`` does not exist, else :data:`MRS_COLUMNS`:
        ``mrs_{naa,glu,gaba,cr}`` (``cr`` is Cr+PCr, or Cr + PCr summed when
        LCModel wrote no combination), NaN when the %SD exceeds ``max_crlb_pct``;
        ``mrs_<m>_rejected`` = 1.0 when so (NaN, with a warning, when the
        metabolite has no row: missing is not rejected);
        ``mrs_glu_naa``, ``mrs_glu_gaba``, ``mrs_naa_cr``, ``mrs_fwhm_ppm``,
        ``mrs_snr``.

    Raises
    ------
    ValueError
        If ``max_crlb_pct`` is not a positive number.
    CohortFormatError
        If the LCModel file is malformed.

    Examples
    --------
    >>> feats = mrs_features(Path("tests/data/real/lcmodel/svs_97.TABLE"))
    >>> feats["mrs_naa"], feats["mrs_glu_rejected"], feats["mrs_snr"]
    (0.0797, 1.0, 13.0)
    """
    table = Path(table)
    _crlb_limit(max_crlb_pct, "max_crlb_pct")
    if not table.exists():
        return {}
    reader = read_lcmodel_csv if table.suffix.lower() == ".csv" else read_lcmodel_table
    result = _with_total_creatine(reader(table))
    conc, rejected = apply_crlb_threshold(result, max_sd_pct=max_crlb_pct)
    out: dict[str, float] = {}
    absent = [m for m in MRS_METABOLITES if m not in conc.index]
    for metabolite, name in MRS_METABOLITES.items():
        out[name] = float(conc.get(metabolite, np.nan))
        # not in the basis set: missing, which is not a CRLB rejection
        out[f"{name}_rejected"] = (
            float(rejected[metabolite]) if metabolite in rejected.index else np.nan
        )
    if absent:
        warnings.warn(
            f"{table}: no {', '.join(absent)} row in the concentration table (not in "
            "the basis set?): those values are missing, not rejected. Fit with a basis "
            "set that holds them.",
            UserWarning,
            stacklevel=2,
        )
    _ratios_and_quality(
        out,
        np.nan if result.fwhm_ppm is None else result.fwhm_ppm,
        np.nan if result.snr is None else result.snr,
    )
    return out


MRS_TABLE = "mrs.tsv"
#: ``mrs.tsv`` concentration columns, their LCModel names and their features.
MRS_TABLE_METABOLITES = {"naa": "NAA", "glu": "Glu", "gaba": "GABA", "cr": "Cr+PCr"}
MRS_TABLE_RULES: dict[str, Rule] = {
    **{
        m: Rule(f"the {name} concentration", 0, low_open=True)
        for m, name in MRS_TABLE_METABOLITES.items()
    },
    **{f"{m}_sd_pct": Rule("%SD (CRLB)", 0, 999) for m in MRS_TABLE_METABOLITES},
    "fwhm_ppm": Rule("FWHM (ppm)", 0, 1),
    "snr": Rule("S/N", 0),
}


def read_mrs_table(
    cohort_dir: Path,
    participants: pd.DataFrame,
    strict: bool = False,
    max_crlb_pct: float = MAX_CRLB_PCT,
) -> tuple[pd.DataFrame, list[Issue]]:
    """Read the tidy ``mrs.tsv``, an alternative to per-subject LCModel files.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory; ``mrs.tsv`` is read from its root.
    participants : pandas.DataFrame
        Output of :func:`features.cohort.participants.read_participants`.
    strict : bool
        Raise :class:`CohortFormatError` on the first bad cell or row instead of
        setting it to missing and recording an :class:`Issue`.
    max_crlb_pct : float, default=20.0
        Largest accepted %SD, as in :func:`mrs_features`.

    Returns
    -------
    frame : pandas.DataFrame
        Indexed by (``participant_id``, ``session``), float columns
        :data:`MRS_COLUMNS`, as :func:`mrs_features` computes them: a
        concentration whose ``<m>_sd_pct`` exceeds ``max_crlb_pct`` is NaN with
        ``mrs_<m>_rejected`` = 1.0 (also 1.0 when the concentration is missing);
        a concentration without a %SD is kept. Empty (with these columns) when
        the file is absent.
    issues : list of Issue
        Cells set to missing (concentration <= 0, %SD outside 0-999, FWHM outside
        0-1 ppm, S/N < 0, not a number) and rows dropped.

    Raises
    ------
    ValueError
        If ``max_crlb_pct`` is not a positive number.
    CohortFormatError
        If the file is unreadable or lacks ``participant_id``, or, with
        ``strict``, on the first bad cell or row.
    """
    limit = _crlb_limit(max_crlb_pct, "max_crlb_pct")
    keyed, log = load_table(
        cohort_dir, MRS_TABLE, participants, strict, tuple(MRS_TABLE_RULES)
    )
    if keyed is None:
        empty = pd.DataFrame(index=empty_index(), columns=list(MRS_COLUMNS))
        return empty.astype("float64"), []
    keyed = drop_duplicate_rows(keyed, log)
    values = {c: numeric_column(keyed, c, r, log) for c, r in MRS_TABLE_RULES.items()}
    out = pd.DataFrame(index=keyed.index)
    for column, metabolite in MRS_TABLE_METABOLITES.items():
        name = MRS_METABOLITES[metabolite]
        conc = values[column]
        rejected = values[f"{column}_sd_pct"] > limit
        out[name] = conc.mask(rejected)
        out[f"{name}_rejected"] = (rejected | conc.isna()).astype("float64")
    _ratios_and_quality(out, values["fwhm_ppm"], values["snr"])
    return out[list(MRS_COLUMNS)], log.issues
