"""Read ``nerve_conduction.tsv`` and summarise it into one row per subject visit.

The long table (one row per nerve x side x stimulation site, as EMG machines export
it; see ``docs/cohort-format.md``) is validated by :func:`read_nerve_conduction` and
reduced by :func:`summarise_nerve_conduction` to distal CMAP amplitudes, conduction
block (EFNS/PNS 2010), a CMAP Z-sum, the split-hand ratio, demyelinating slowing,
F-waves, sensory SNAPs and side-to-side asymmetry.

Normative values marked UE are uncited estimates; figures with a source are in
refs#ncs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from features.cohort.cells import SIDES as SIDE_NAMES
from features.cohort.cells import (
    Rule,
    category_column,
    drop_duplicate_rows,
    load_table,
    numeric_column,
)
from features.cohort.participants import KEY, Issue, empty_index
from features.errors import CohortFormatError
from features.units import check_for

__all__ = [
    "LONG_COLUMNS",
    "SUMMARY_COLUMNS",
    "grade_conduction_block",
    "read_nerve_conduction",
    "summarise_nerve_conduction",
]

MOTOR_NERVES: tuple[str, ...] = ("median", "ulnar", "peroneal", "tibial")
SENSORY_NERVES: tuple[str, ...] = ("median_sensory", "sural")
UPPER_LIMB_NERVES = frozenset({"median", "ulnar"})
SIDES: tuple[str, ...] = ("left", "right")
#: Accepted stimulation sites (spaces and hyphens read as ``_``) and aliases.
_SITES = """wrist palm forearm below_elbow elbow above_elbow axilla erb ankle
below_fibular_head fibular_head below_knee above_knee knee popliteal_fossa digit_ii
digit_iii digit_v calf mid_calf""".split()
STIMULATION_SITES: dict[str, str] = {
    **{site: site for site in _SITES},
    **dict.fromkeys(("erb_point", "erbs_point", "erb's_point"), "erb"),
    "popliteal": "popliteal_fossa", "digit_2": "digit_ii", "digit_5": "digit_v",
}  # fmt: skip
SITE_HINT = (
    "a known site such as wrist, elbow, below_elbow, above_elbow, axilla, ankle, "
    "below_knee, popliteal_fossa, digit_ii or calf"
)
#: Distal site of each motor nerve; without it, the first site listed is distal.
DISTAL_SITE: dict[str, str] = {
    "median": "wrist", "ulnar": "wrist", "peroneal": "ankle", "tibial": "ankle",
}  # fmt: skip

#: Normative distal CMAP amplitude per motor nerve: (median in mV, SD of ln amplitude)
#: for median/APB, ulnar/ADM, peroneal/EDB, tibial/AH.
#: uncited estimate (UE): textbook-typical; refs#ncs gives median/APB
#: ~8-10 ± 3 mV.
CMAP_NORMS: dict[str, tuple[float, float]] = {
    "median": (9.0, 0.30), "ulnar": (9.0, 0.30),
    "peroneal": (5.0, 0.30), "tibial": (12.0, 0.30),
}  # fmt: skip
#: Lower limit of normal = 2.5th centile of the log-normal norm above (z = -1.96):
#: median 5.0, ulnar 5.0, peroneal 2.8, tibial 6.7 mV.
CMAP_LLN_MV: dict[str, float] = {
    nerve: median * math.exp(-1.96 * sd) for nerve, (median, sd) in CMAP_NORMS.items()
}
#: Amplitudes below this (absent responses) are raised to it before taking logs.
#: UE: a typical noise floor of a motor recording.
CMAP_FLOOR_MV = 0.1
#: Fewest distal CMAPs (of 8 nerve-sides) for a CMAP Z-sum.
ZSUM_MIN_NERVES = 4

# Conduction block, Joint Task Force of the EFNS and the PNS, J Peripher Nerv Syst
# 2010;15:295-301: negative-peak CMAP area and duration; without durations, the
# amplitude/area simplification below (said in ``qc_ncs_no_duration``).
CB_DEFINITE_REDUCTION = 0.50  # area (and, without durations, amplitude) reduction
CB_PROBABLE_REDUCTION = {"upper": 0.30, "lower": 0.50}  # without durations: amplitude
CB_PROBABLE_AREA_UPPER = 0.30  # area reduction over an upper-limb segment
CB_MAX_DURATION_INCREASE = 0.30  # proximal vs distal negative-peak duration
CB_MIN_DISTAL_LLN_FRACTION = 0.20  # distal CMAP must be >= 20 % of the LLN ...
CB_MIN_DISTAL_MV = 1.0  # ... and >= 1 mV
#: The guideline grades definite block in median, ulnar and peroneal nerves only
#: (proximal tibial stimulation normally loses amplitude by phase cancellation).
CB_DEFINITE_NERVES = frozenset({"median", "ulnar", "peroneal"})
#: Proximal sites whose comparison with the distal site crosses a common
#: entrapment site (ulnar groove / cubital tunnel; fibular head): never graded.
ACROSS_ENTRAPMENT: dict[str, frozenset[str]] = {
    "ulnar": frozenset({"elbow", "above_elbow", "axilla", "erb"}),
    "peroneal": frozenset({"fibular_head", "popliteal_fossa", "above_knee", "knee"}),
}
#: Above the elbow, ulnar sites are compared with the most distal of them instead.
ABOVE_ENTRAPMENT: dict[str, tuple[str, ...]] = {
    "ulnar": ("above_elbow", "axilla", "erb")
}
#: Segment velocities measured across an entrapment site: not demyelinating slowing.
CV_ENTRAPMENT_SITES: dict[str, frozenset[str]] = {
    "ulnar": frozenset({"elbow", "above_elbow"}),
    "peroneal": frozenset({"fibular_head", "popliteal_fossa", "above_knee", "knee"}),
}
#: Demyelinating-range motor conduction velocity (m/s).
#: UE threshold approximating 70-80 % of the lower limit of normal.
DEMYELINATING_CV_M_S = {"upper": 38.0, "lower": 30.0}
#: SNAP lower limits of normal (uV). UE.
SNAP_LLN_UV: dict[str, float] = {"median_sensory": 10.0, "sural": 5.0}

#: Plausible ranges; the upper bounds catch unit errors (UE).
MEASURE_RULES: dict[str, Rule] = {
    "cmap_amplitude_mv": Rule(
        "CMAP amplitude (mV)", 0, 100, mixups=check_for("ncs_median_cmap_mv").mixups
    ),
    "cmap_area_mvms": Rule("CMAP area (mV.ms)", 0, 500),
    "cmap_duration_ms": Rule("CMAP negative-peak duration (ms)", 0, 100, low_open=True),
    "distal_latency_ms": Rule("distal latency (ms)", 0, 100, low_open=True),
    "conduction_velocity_m_s": Rule("conduction velocity (m/s)", 0, 150, low_open=True),
    "f_wave_latency_ms": Rule("F-wave latency (ms)", 0, 200, low_open=True),
    "snap_amplitude_uv": Rule("SNAP amplitude (uV)", 0, 500),
}
IDENTITY_COLUMNS: tuple[str, ...] = ("nerve", "side", "stimulation_site")
LONG_COLUMNS: tuple[str, ...] = (*IDENTITY_COLUMNS, *MEASURE_RULES)
_PER_NERVE = ("cmap_mv", "cb_ratio", "cb_area_ratio", "dispersion_pct")
SUMMARY_COLUMNS: tuple[str, ...] = (
    *(f"ncs_{n}_{s}_{x}" for n in MOTOR_NERVES for s in SIDES for x in _PER_NERVE),
    "ncs_n_nerves_cb_definite", "ncs_n_nerves_cb_probable", "ncs_any_cb",
    "ncs_cmap_zsum", "ncs_split_hand_ratio", "ncs_min_cv_m_s",
    "ncs_n_nerves_demyelinating_cv", "ncs_max_f_wave_ms", "ncs_sensory_abnormal",
    "ncs_cmap_asymmetry", "qc_ncs_no_duration",
)  # fmt: skip
_GRADE_RANK = {"not_evaluable": 0, "none": 1, "probable": 2, "definite": 3}


def read_nerve_conduction(
    cohort_dir: Path, participants: pd.DataFrame, strict: bool = False
) -> tuple[pd.DataFrame, list[Issue]]:
    """Read and validate the long ``nerve_conduction.tsv``.

    Parameters
    ----------
    cohort_dir : Path
        The cohort directory.
    participants : pandas.DataFrame
        Output of :func:`features.cohort.participants.read_participants`.
    strict : bool
        Raise :class:`CohortFormatError` on the first bad cell or row instead of
        recording an :class:`Issue`. Leniently, a row with an unknown or empty
        nerve, side or stimulation site (or repeating an earlier one) is dropped;
        a bad measurement (negative, not a number, implausible) becomes NaN.

    Returns
    -------
    long : pandas.DataFrame
        Rows in file order, indexed by (``participant_id``, ``session``), columns
        :data:`LONG_COLUMNS`: ``nerve``, ``side`` and ``stimulation_site`` as
        lower-case strings, measurements as float. Empty when the file is absent.
    issues : list of Issue
        Cells set to missing and rows dropped.
    """
    keyed, log = load_table(
        cohort_dir,
        "nerve_conduction.tsv",
        participants,
        strict,
        tuple(MEASURE_RULES),
        required=IDENTITY_COLUMNS,
    )
    if keyed is None:
        return _empty_long(), []
    nerves = {n: n for n in (*MOTOR_NERVES, *SENSORY_NERVES)}
    allowed = {
        "nerve": (nerves, ", ".join(nerves)),
        "side": (SIDE_NAMES, "left or right"),
        "stimulation_site": (STIMULATION_SITES, SITE_HINT),
    }
    ids = {
        col: category_column(keyed, col, mapping, text, log, "string", required=True)
        for col, (mapping, text) in allowed.items()
    }
    complete = np.logical_and.reduce([s.notna().to_numpy() for s in ids.values()])
    keyed = keyed.assign(**{c: s.to_numpy() for c, s in ids.items()})[complete]
    keyed = drop_duplicate_rows(keyed, log, by=IDENTITY_COLUMNS)
    long = keyed[list(IDENTITY_COLUMNS)].astype("string")
    for column, rule in MEASURE_RULES.items():
        long[column] = numeric_column(keyed, column, rule, log).to_numpy()
    return long, log.issues


def _empty_long() -> pd.DataFrame:
    """An empty long table with :data:`LONG_COLUMNS`."""
    dtypes = {c: "string" if c in IDENTITY_COLUMNS else "float64" for c in LONG_COLUMNS}
    return pd.DataFrame(index=empty_index(), columns=list(LONG_COLUMNS)).astype(dtypes)


def grade_conduction_block(
    nerve: str,
    distal_amplitude_mv: float,
    amplitude_ratio: float,
    area_ratio: float = math.nan,
    duration_increase: float = math.nan,
) -> str:
    """Grade motor conduction block between two stimulation sites of one nerve.

    Follows the EFNS/PNS guideline on multifocal motor neuropathy (Joint Task Force
    of the EFNS and the PNS, J Peripher Nerv Syst 2010;15:295-301). In every case
    the block is *not evaluable* unless the distal CMAP is >= 20 % of the lower
    limit of normal (:data:`CMAP_LLN_MV`) and >= 1 mV. With the negative-peak
    duration increase (proximal / distal - 1) known, as the guideline grades:

    - *definite*: area reduced by >= 50 % proximal vs distal with a duration
      increase <= 30 %, in a median, ulnar or peroneal nerve;
    - *probable*: area reduced by >= 50 % with a duration increase > 30 % (or in
      a tibial nerve), or by >= 30 % in an upper-limb nerve (median, ulnar) with
      a duration increase <= 30 %.

    Without durations, amplitude and area stand in:

    - *definite*: amplitude AND area reduced by >= 50 %, in a median, ulnar or
      peroneal nerve;
    - *probable*: otherwise, amplitude reduced by >= 30 % in an upper-limb nerve
      or >= 50 % in a lower-limb nerve (peroneal, tibial).

    The caller must not pass segments across common entrapment sites (see
    :data:`ACROSS_ENTRAPMENT`); :func:`summarise_nerve_conduction` skips them.

    Parameters
    ----------
    nerve : str
        Motor nerve: ``median``, ``ulnar``, ``peroneal`` or ``tibial``.
    distal_amplitude_mv : float
        CMAP amplitude on distal stimulation (mV).
    amplitude_ratio, area_ratio : float
        Proximal / distal CMAP amplitude and area; NaN when not measured.
    duration_increase : float
        Proximal / distal negative-peak CMAP duration - 1; NaN when not measured.

    Returns
    -------
    str
        ``"definite"``, ``"probable"``, ``"none"`` or ``"not_evaluable"``.

    Examples
    --------
    >>> grade_conduction_block("median", 9.0, 0.4, 0.4)
    'definite'
    >>> grade_conduction_block("ulnar", 9.0, 0.65, 0.7)
    'probable'
    >>> grade_conduction_block("median", 9.0, 0.4, 0.45, duration_increase=0.4)
    'probable'
    """
    if nerve not in CMAP_LLN_MV:
        raise ValueError(
            f"nerve = {nerve!r}; conduction block is graded on the motor nerves "
            f"{', '.join(MOTOR_NERVES)} only. Pass one of those."
        )
    minimum = max(CB_MIN_DISTAL_LLN_FRACTION * CMAP_LLN_MV[nerve], CB_MIN_DISTAL_MV)
    if not (distal_amplitude_mv >= minimum and math.isfinite(amplitude_ratio)):
        return "not_evaluable"
    tol = 1e-9
    amplitude_drop, area_drop = 1.0 - amplitude_ratio, 1.0 - area_ratio
    limb = "upper" if nerve in UPPER_LIMB_NERVES else "lower"
    if math.isfinite(duration_increase) and math.isfinite(area_ratio):
        dispersed = duration_increase > CB_MAX_DURATION_INCREASE + tol
        if area_drop >= CB_DEFINITE_REDUCTION - tol:
            definite = nerve in CB_DEFINITE_NERVES and not dispersed
            return "definite" if definite else "probable"
        upper = limb == "upper" and not dispersed
        return (
            "probable"
            if upper and area_drop >= CB_PROBABLE_AREA_UPPER - tol
            else "none"
        )
    if (
        nerve in CB_DEFINITE_NERVES
        and amplitude_drop >= CB_DEFINITE_REDUCTION - tol
        and area_drop >= CB_DEFINITE_REDUCTION - tol
    ):
        return "definite"
    return "probable" if amplitude_drop >= CB_PROBABLE_REDUCTION[limb] - tol else "none"


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN unless both are finite and denominator > 0."""
    if math.isfinite(numerator) and math.isfinite(denominator) and denominator > 0:
        return numerator / denominator
    return math.nan


def _comparisons(nerve: str, distal: str, sites: list[str]) -> list[tuple[str, str]]:
    """(reference, proximal) site pairs to test for block, skipping entrapment."""
    across = ACROSS_ENTRAPMENT.get(nerve, frozenset())
    pairs = [(distal, site) for site in sites if site != distal and site not in across]
    above = [site for site in ABOVE_ENTRAPMENT.get(nerve, ()) if site in sites]
    return pairs + [(above[0], site) for site in above[1:]]


def _motor_nerve(
    nerve: str, sites: dict[str, dict[str, float]], record: dict[str, float]
) -> tuple[str, bool | None]:
    """Fill one nerve-side's columns; return its block grade and CV slowing."""
    side = next(iter(sites.values()))["side"]
    distal = DISTAL_SITE[nerve] if DISTAL_SITE[nerve] in sites else next(iter(sites))
    amplitude = sites[distal]["cmap_amplitude_mv"]
    prefix = f"ncs_{nerve}_{side}"
    record[f"{prefix}_cmap_mv"] = amplitude
    grade, amp_ratios, area_ratios, spread = "not_evaluable", [], [], []
    for reference, proximal in _comparisons(nerve, distal, list(sites)):
        ref, prox = sites[reference], sites[proximal]
        amp_ratio = _ratio(prox["cmap_amplitude_mv"], ref["cmap_amplitude_mv"])
        area_ratio = _ratio(prox["cmap_area_mvms"], ref["cmap_area_mvms"])
        increase = _ratio(prox["cmap_duration_ms"], ref["cmap_duration_ms"]) - 1.0
        amp_ratios.append(amp_ratio)
        area_ratios.append(area_ratio)
        spread.append(increase)
        pair = grade_conduction_block(nerve, amplitude, amp_ratio, area_ratio, increase)
        if pair != "not_evaluable" and not math.isfinite(increase):
            record["qc_ncs_no_duration"] = 1.0
        elif pair != "not_evaluable" and math.isnan(record["qc_ncs_no_duration"]):
            record["qc_ncs_no_duration"] = 0.0
        grade = max(grade, pair, key=_GRADE_RANK.__getitem__)
    record[f"{prefix}_cb_ratio"] = _nanmin(amp_ratios)
    record[f"{prefix}_cb_area_ratio"] = _nanmin(area_ratios)
    record[f"{prefix}_dispersion_pct"] = -_nanmin([-100.0 * v for v in spread])
    limb = "upper" if nerve in UPPER_LIMB_NERVES else "lower"
    skip = CV_ENTRAPMENT_SITES.get(nerve, frozenset())
    velocities = [
        row["conduction_velocity_m_s"]
        for site, row in sites.items()
        if site not in skip
    ]
    velocities = [v for v in velocities if math.isfinite(v)]
    slow = min(velocities) < DEMYELINATING_CV_M_S[limb] if velocities else None
    return grade, slow


def _nanmin(values: list[float]) -> float:
    """Smallest finite value, NaN when there is none."""
    finite = [v for v in values if math.isfinite(v)]
    return min(finite) if finite else math.nan


def _summarise_subject(rows: list[dict[str, object]]) -> dict[str, float]:
    """All :data:`SUMMARY_COLUMNS` of one subject visit from its long rows."""
    record = dict.fromkeys(SUMMARY_COLUMNS, math.nan)
    by_nerve: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        sites = by_nerve.setdefault((row["nerve"], row["side"]), {})
        sites.setdefault(row["stimulation_site"], row)  # first row of a site wins
    grades, slowing, zs = [], [], []
    for nerve in MOTOR_NERVES:
        for side in SIDES:
            if (nerve, side) not in by_nerve:
                continue
            grade, slow = _motor_nerve(nerve, by_nerve[nerve, side], record)
            grades.append(grade)
            slowing += [] if slow is None else [slow]
            amplitude = record[f"ncs_{nerve}_{side}_cmap_mv"]
            if math.isfinite(amplitude):
                median, sd = CMAP_NORMS[nerve]
                zs.append(math.log(max(amplitude, CMAP_FLOOR_MV) / median) / sd)
    evaluable = [g for g in grades if g != "not_evaluable"]
    if evaluable:
        record["ncs_n_nerves_cb_definite"] = float(evaluable.count("definite"))
        record["ncs_n_nerves_cb_probable"] = float(evaluable.count("probable"))
        record["ncs_any_cb"] = float(any(g != "none" for g in evaluable))
    if len(zs) >= ZSUM_MIN_NERVES:
        record["ncs_cmap_zsum"] = float(sum(zs))
    if slowing:
        record["ncs_n_nerves_demyelinating_cv"] = float(sum(slowing))
    _whole_subject(rows, record)
    return record


def _whole_subject(rows: list[dict[str, object]], record: dict[str, float]) -> None:
    """Fill split-hand, CV, F-wave, sensory and asymmetry columns of one subject."""
    amp = {(n, s): record[f"ncs_{n}_{s}_cmap_mv"] for n in MOTOR_NERVES for s in SIDES}
    split = [_ratio(amp["median", s], amp["ulnar", s]) for s in SIDES]
    record["ncs_split_hand_ratio"] = _nanmean(split)
    asymmetry = [
        abs(
            math.log(
                max(amp[n, "left"], CMAP_FLOOR_MV) / max(amp[n, "right"], CMAP_FLOOR_MV)
            )
        )
        for n in MOTOR_NERVES
        if math.isfinite(amp[n, "left"]) and math.isfinite(amp[n, "right"])
    ]
    record["ncs_cmap_asymmetry"] = _nanmean(asymmetry)
    motor = [row for row in rows if row["nerve"] in CMAP_NORMS]
    record["ncs_min_cv_m_s"] = _nanmin([r["conduction_velocity_m_s"] for r in motor])
    f_waves = [r["f_wave_latency_ms"] for r in motor]
    record["ncs_max_f_wave_ms"] = -_nanmin([-f for f in f_waves])
    snaps = [
        (r["snap_amplitude_uv"], SNAP_LLN_UV[r["nerve"]])
        for r in rows
        if r["nerve"] in SNAP_LLN_UV and math.isfinite(r["snap_amplitude_uv"])
    ]
    if snaps:
        record["ncs_sensory_abnormal"] = float(any(v < lln for v, lln in snaps))


def _nanmean(values: list[float]) -> float:
    """Mean of the finite values, NaN when there is none."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def summarise_nerve_conduction(long: pd.DataFrame) -> pd.DataFrame:
    """Reduce the long nerve-conduction table to one row of features per subject.

    Parameters
    ----------
    long : pandas.DataFrame
        Output of :func:`read_nerve_conduction` (or the same columns, with
        ``participant_id``/``session`` as index levels or columns). Within a nerve
        and side, the distal site is ``wrist``/``ankle`` when present, else the
        first row; a repeated site keeps its first row.

    Returns
    -------
    pandas.DataFrame
        One row per (``participant_id``, ``session``), float columns
        :data:`SUMMARY_COLUMNS`; NaN where the measurements needed are missing:

        - ``ncs_<nerve>_<side>_cmap_mv``: distal CMAP amplitude (mV) of each motor
          nerve (median, ulnar, peroneal, tibial) and side (left, right);
        - ``ncs_<nerve>_<side>_cb_ratio`` / ``_cb_area_ratio``: smallest proximal /
          distal amplitude (area) ratio over the site pairs that do not cross an
          entrapment site (ulnar above-elbow sites are compared with the most
          distal of them);
        - ``ncs_<nerve>_<side>_dispersion_pct``: largest increase of the
          negative-peak CMAP duration, proximal vs distal, in % (temporal
          dispersion) over the same pairs;
        - ``ncs_n_nerves_cb_definite`` / ``_probable``: nerve-sides whose best pair
          is graded so by :func:`grade_conduction_block` (NaN when no nerve-side
          could be graded); ``ncs_any_cb``: 1.0 when either count is > 0;
          ``qc_ncs_no_duration``: 1.0 when a pair was graded without CMAP
          durations (the amplitude/area rule), 0.0 when every graded pair had
          them;
        - ``ncs_cmap_zsum``: sum over nerve-sides of
          ``(ln amplitude - ln normal median) / sd`` (:data:`CMAP_NORMS`; NaN with
          fewer than 4 nerve-sides);
        - ``ncs_split_hand_ratio``: median (APB) / ulnar (ADM) distal amplitude,
          averaged over sides (refs#ncs: 0.44 in ALS vs 0.99 in HC);
        - ``ncs_min_cv_m_s``: slowest motor conduction velocity;
          ``ncs_n_nerves_demyelinating_cv``: nerve-sides with a segment below
          :data:`DEMYELINATING_CV_M_S`, segments across entrapment sites excluded;
        - ``ncs_max_f_wave_ms``: longest minimal F-wave latency;
        - ``ncs_sensory_abnormal``: 1.0 when any SNAP is below :data:`SNAP_LLN_UV`;
        - ``ncs_cmap_asymmetry``: mean over motor nerves of |ln(left / right)|.
    """
    if list(long.index.names) != KEY:
        long = long.assign(session=long.get("session", "")).set_index(KEY)
    missing = [c for c in IDENTITY_COLUMNS if c not in long.columns]
    if missing:
        raise CohortFormatError(
            f"nerve-conduction table: column(s) {', '.join(missing)} missing; "
            "pass the output of read_nerve_conduction."
        )
    frame = long.reindex(columns=list(LONG_COLUMNS))
    numbers = frame[list(MEASURE_RULES)].astype("float64")
    text = frame[list(IDENTITY_COLUMNS)].astype(object)
    text = text.where(text.notna(), None)
    rows = pd.concat([text, numbers], axis=1)
    keys, records = [], []
    for key, group in rows.groupby(level=KEY, sort=False):
        keys.append(key)
        records.append(_summarise_subject(group.to_dict("records")))
    index = pd.MultiIndex.from_tuples(keys, names=KEY) if keys else empty_index()
    if not records:  # from_records drops the index names of an empty frame
        return pd.DataFrame(columns=SUMMARY_COLUMNS, index=index, dtype="float64")
    out = pd.DataFrame.from_records(records, index=index, columns=SUMMARY_COLUMNS)
    return out.astype("float64")
