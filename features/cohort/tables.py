"""Read the per-subject tables ``clinical.tsv``, ``serum.tsv``, ``peripheral_mri.tsv``.

Columns, units and ranges are those of ``docs/cohort-format.md``. Every reader takes
the output of :func:`features.cohort.participants.read_participants` and returns
``(frame, issues)``: one row per subject visit found in the file, indexed by
(``participant_id``, ``session``), and the list of
:class:`features.cohort.participants.Issue`
records of the cells that were set to missing and the rows that were dropped. With
``strict=True`` the first such problem raises :class:`CohortFormatError` instead. A
missing file means the modality is absent: an empty frame with the right columns.
Columns outside the format are reported as issues (never raised) and ignored.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.cohort.cells import (
    PRESENT_ABSENT,
    SIDES,
    YES_NO,
    Rule,
    category_column,
    drop_duplicate_rows,
    empty_frame,
    load_table,
    numeric_column,
)
from features.cohort.participants import KEY, Issue
from features.cohort.serology import (
    SEROLOGY_COLUMNS,
    TITRE_COLUMNS,
    serology_columns,
)

__all__ = [
    "CLINICAL_COLUMNS",
    "PERIPHERAL_MRI_COLUMNS",
    "SERUM_COLUMNS",
    "read_clinical",
    "read_peripheral_mri",
    "read_serum",
    "read_sessions",
]


ONSET_REGIONS: dict[str, str] = {r: r for r in ("bulbar", "upper_limb", "lower_limb")}
# Bounds and unit mix-ups come from the data dictionary and features.units
# (Rule.of); only what a unit cannot say is given here.
CLINICAL_RULES: dict[str, Rule] = {
    "alsfrs_r": Rule.of("alsfrs_r", "ALSFRS-R", integer=True),
    "months_since_onset": Rule.of("months_since_onset", "months since onset"),
    "mrc_sum": Rule.of("mrc_sum", "the MRC sum score", integer=True),
    # % predicted has no upper bound in its unit; above 200 % is a typing error
    "fvc_pct": replace(Rule.of("fvc_pct", "FVC (% predicted)"), high=200.0),
    "penn_umn": Rule.of("penn_umn", "the Penn UMN score", integer=True),
    "edss": Rule.of("edss", "EDSS", step=0.5),
    "t2_lesion_volume_ml": Rule.of("t2_lesion_volume_ml", "T2 lesion volume (mL)"),
}
SERUM_RULES: dict[str, Rule] = {
    "nfl_pg_ml": Rule.of("nfl_pg_ml", "NfL concentration (pg/mL)", low_open=True),
    "chi3l1_ng_ml": Rule.of(
        "chi3l1_ng_ml", "CHI3L1 concentration (ng/mL)", low_open=True
    ),
}
YES_NO_COLUMNS = ("umn_signs", "lmn_signs")
PERIPHERAL_MRI_RATINGS = ("plexus_t2_hyperintensity", "nerve_thickening",
                          "muscle_oedema", "muscle_atrophy")  # fmt: skip
CLINICAL_COLUMNS: tuple[str, ...] = (
    *CLINICAL_RULES, "onset_region", *YES_NO_COLUMNS, "alsfrs_r_progression_rate"
)  # fmt: skip
SERUM_COLUMNS: tuple[str, ...] = (*SERUM_RULES, *SEROLOGY_COLUMNS, *TITRE_COLUMNS)
_PER_RATING = ("n_sides", "asymmetric")
PERIPHERAL_MRI_COLUMNS: tuple[str, ...] = (
    *(f"{r}_{x}" for r in PERIPHERAL_MRI_RATINGS for x in _PER_RATING),
    "peripheral_mri_any",
)


def read_clinical(
    cohort_dir: Path, participants: pd.DataFrame, strict: bool = False
) -> tuple[pd.DataFrame, list[Issue]]:
    """Read ``clinical.tsv``: scales, onset, signs and lesion volume.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    participants : pandas.DataFrame
        Output of :func:`features.cohort.participants.read_participants`.
    strict : bool
        Raise :class:`CohortFormatError` on the first bad cell or row instead of
        setting it to missing and recording an :class:`Issue`.

    Returns
    -------
    frame : pandas.DataFrame
        Indexed by (``participant_id``, ``session``), columns
        :data:`CLINICAL_COLUMNS`: float scores, ``umn_signs``/``lmn_signs`` as
        1.0/0.0, ``onset_region`` as a string, and the derived
        ``alsfrs_r_progression_rate = (48 - alsfrs_r) / months_since_onset``
        (points per month; NaN when months is 0 or missing).
    issues : list of Issue
        Cells set to missing and rows dropped.
    """
    keyed, log = load_table(
        cohort_dir, "clinical.tsv", participants, strict, CLINICAL_COLUMNS
    )
    if keyed is None:
        return empty_frame(CLINICAL_COLUMNS, ("onset_region",)), []
    keyed = drop_duplicate_rows(keyed, log)
    out = pd.DataFrame(index=keyed.index)
    for column, rule in CLINICAL_RULES.items():
        out[column] = numeric_column(keyed, column, rule, log)
    out["onset_region"] = category_column(
        keyed,
        "onset_region",
        ONSET_REGIONS,
        "bulbar, upper_limb or lower_limb",
        log,
        dtype="string",
    )
    for column in YES_NO_COLUMNS:
        out[column] = category_column(keyed, column, YES_NO, "yes or no", log)
    months = out["months_since_onset"].where(out["months_since_onset"] > 0)
    out["alsfrs_r_progression_rate"] = (48.0 - out["alsfrs_r"]) / months
    return out[list(CLINICAL_COLUMNS)], log.issues


def read_serum(
    cohort_dir: Path, participants: pd.DataFrame, strict: bool = False
) -> tuple[pd.DataFrame, list[Issue]]:
    """Read ``serum.tsv``: NfL, CHI3L1 and antibodies with their titres.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    participants : pandas.DataFrame
        Output of :func:`features.cohort.participants.read_participants`.
    strict : bool
        Raise on the first bad cell or row instead of recording an :class:`Issue`.

    Returns
    -------
    frame : pandas.DataFrame
        Indexed by (``participant_id``, ``session``), float columns
        :data:`SERUM_COLUMNS`; the serologies are 1.0 (positive) / 0.0 (negative),
        accepting ``positive``/``pos``/``+`` and ``negative``/``neg``/``-``. The
        anti-GM1 and AQP4 cells may also hold a titre (``1:800``, ``800``,
        ``positive (1:3200)``, ``negative (<1:10)``), as may the optional
        ``anti_gm1_igm_titre`` / ``aqp4_igg_titre`` columns; a titre without a
        positive/negative word is called against :data:`TITRE_CUTOFFS`.
        ``anti_gm1_igm_titre`` and ``aqp4_igg_titre`` hold the reciprocal titre
        (800.0 for 1:800), NaN when none was given. ``borderline`` and
        ``equivocal`` results become missing, with an issue.
    issues : list of Issue
        Cells set to missing and rows dropped.
    """
    keyed, log = load_table(
        cohort_dir, "serum.tsv", participants, strict, SERUM_COLUMNS
    )
    if keyed is None:
        return empty_frame(SERUM_COLUMNS), []
    keyed = drop_duplicate_rows(keyed, log)
    out = pd.DataFrame(index=keyed.index)
    for column, rule in SERUM_RULES.items():
        out[column] = numeric_column(keyed, column, rule, log)
    for column in SEROLOGY_COLUMNS:
        out[column], titre = serology_columns(keyed, column, log)
        if titre is not None:
            out[titre.name] = titre
    return out[list(SERUM_COLUMNS)], log.issues


def read_peripheral_mri(
    cohort_dir: Path, participants: pd.DataFrame, strict: bool = False
) -> tuple[pd.DataFrame, list[Issue]]:
    """Read ``peripheral_mri.tsv`` (one row per side) and summarise each subject.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    participants : pandas.DataFrame
        Output of :func:`features.cohort.participants.read_participants`.
    strict : bool
        Raise on the first bad cell or row instead of recording an :class:`Issue`.

    Returns
    -------
    frame : pandas.DataFrame
        One row per subject visit, float columns :data:`PERIPHERAL_MRI_COLUMNS`.
        For each rating ``<r>``: ``<r>_n_sides`` is the number of sides rated 1
        (0, 1 or 2; NaN when no side was rated) and ``<r>_asymmetric`` is 1.0 when
        exactly one side is rated 1 (NaN unless both sides were rated).
        ``peripheral_mri_any`` is 1.0 when any rating on any side is 1, 0.0 when
        every recorded rating is 0 and NaN when none was recorded.
    issues : list of Issue
        Cells set to missing and rows dropped (bad or repeated ``side``).
    """
    keyed, log = load_table(
        cohort_dir,
        "peripheral_mri.tsv",
        participants,
        strict,
        PERIPHERAL_MRI_RATINGS,
        required=("side",),
    )
    if keyed is None:
        return empty_frame(PERIPHERAL_MRI_COLUMNS), []
    sides = category_column(
        keyed, "side", SIDES, "left or right", log, "string", required=True
    )
    keyed = keyed.assign(side=sides.to_numpy())[sides.notna().to_numpy()]
    keyed = drop_duplicate_rows(keyed, log, by=("side",))
    ratings = pd.DataFrame(
        {
            r: category_column(keyed, r, PRESENT_ABSENT, "0 or 1", log).to_numpy()
            for r in PERIPHERAL_MRI_RATINGS
        },
        index=keyed.index,
    )
    records, keys = [], []
    for key, group in ratings.groupby(level=KEY, sort=False):
        record: dict[str, float] = {}
        for rating in PERIPHERAL_MRI_RATINGS:
            rated = group[rating].dropna()
            record[f"{rating}_n_sides"] = rated.sum() if len(rated) else math.nan
            record[f"{rating}_asymmetric"] = (
                float(rated.sum() == 1) if len(rated) == 2 else math.nan
            )
        values = group.to_numpy(dtype="float64")
        record["peripheral_mri_any"] = (
            float(np.nanmax(values)) if np.isfinite(values).any() else math.nan
        )
        records.append(record)
        keys.append(key)
    if not records:
        return empty_frame(PERIPHERAL_MRI_COLUMNS), log.issues
    index = pd.MultiIndex.from_tuples(keys, names=KEY)
    out = pd.DataFrame.from_records(
        records, index=index, columns=PERIPHERAL_MRI_COLUMNS
    )
    return out.astype("float64"), log.issues


#: Days in an average month, for visit dates turned into months.
DAYS_PER_MONTH = 365.25 / 12
SESSION_RULES: dict[str, Rule] = {
    "months_since_baseline": Rule("months since the baseline visit", 0, 600),
}


def read_sessions(
    cohort_dir: Path, participants: pd.DataFrame, strict: bool = False
) -> tuple[pd.Series, list[Issue]]:
    """Read ``sessions.tsv``: when each visit took place.

    Each row names a visit of ``participants.tsv`` (``participant_id``,
    ``session``) and gives ``months_since_baseline``, or a ``visit_date``
    (ISO ``YYYY-MM-DD``) from which the months since that participant's earliest
    dated visit are computed (``DAYS_PER_MONTH`` days a month). A given
    ``months_since_baseline`` wins over a date.

    Returns
    -------
    months : pandas.Series
        ``months_since_baseline`` indexed by (``participant_id``, ``session``);
        empty without the file.
    issues : list of Issue
        Bad cells (a date that is not a date, months out of range) set to missing.
    """
    keyed, log = load_table(
        cohort_dir,
        "sessions.tsv",
        participants,
        strict,
        ("months_since_baseline", "visit_date"),
        required=("session",),
    )
    if keyed is None:
        return pd.Series(index=participants.index[:0], dtype="float64"), []
    keyed = drop_duplicate_rows(keyed, log)
    months = numeric_column(
        keyed, "months_since_baseline", SESSION_RULES["months_since_baseline"], log
    )
    if "visit_date" in keyed.columns:
        raw = keyed["visit_date"]
        dates = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
        bad = dates.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        for (pid, session), row, value in zip(
            keyed.index[bad], keyed["row"][bad], raw[bad], strict=True
        ):
            log.flag(
                row,
                pid,
                "visit_date",
                value,
                "not a date in the form YYYY-MM-DD",
                session=session,
            )
        first = dates.groupby(level="participant_id").transform("min")
        from_dates = (dates - first).dt.days / DAYS_PER_MONTH
        months = months.fillna(from_dates.round(2))
    return months.rename("months_since_baseline"), log.issues
