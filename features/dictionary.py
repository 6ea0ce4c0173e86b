"""The data dictionary of the features table: unit and meaning of every column.

`ENTRIES` is the single source; ``docs/features.md`` is generated from it with
``python -m features dictionary --out docs/features.md`` and a test keeps the two
equal and checks that every column the extractor writes has an entry.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import pandas as pd

_SIDE = r"(l|r)"
_LR = "left/right"
_DTI_REGION = r"(cst_l|cst_r|optic_radiation_l|optic_radiation_r|callosal_body)"
_QSM_REGION = (
    r"(substantia_nigra|thalamus|putamen|pallidum|caudate|precentral)_" + _SIDE
)
_GM_REGION = r"(precentral|thalamus|caudate|putamen|pallidum)_" + _SIDE
_NERVE = r"(median|ulnar|peroneal|tibial)_(left|right)"
_RATING = r"(plexus_t2_hyperintensity|nerve_thickening|muscle_oedema|muscle_atrophy)"
_FS_VOLUME = (
    r"(thalamus|caudate|putamen|pallidum|precentral|precuneus|pulvinar)_" + _SIDE
)


@dataclass(frozen=True)
class Entry:
    """One dictionary row: a column-name pattern, its modality, unit and meaning."""

    pattern: str
    modality: str
    unit: str
    description: str
    template: str  # human-readable name with placeholders, for the docs

    def matches(self, column: str) -> bool:
        return re.fullmatch(self.pattern, column) is not None


def _e(pattern: str, modality: str, unit: str, description: str, template: str = ""):
    return Entry(pattern, modality, unit, description, template or pattern)


ENTRIES: tuple[Entry, ...] = (
    # identifiers and covariates
    _e("participant_id", "metadata", "", "subject identifier, `sub-<label>`"),
    _e("session", "metadata", "", "visit, `ses-<label>`; empty without sessions"),
    _e("diagnosis", "metadata", "", "reference diagnosis ALS/MMN/NMO/MS/HC or empty"),
    _e("age", "demographics", "years", "age at the visit"),
    _e("sex", "metadata", "", "M or F"),
    _e("male", "demographics", "0/1", "1 for male, 0 for female"),
    _e("site", "metadata", "", "acquisition site or scanner"),
    _e(
        "months_since_baseline",
        "metadata",
        "months",
        "time of the visit since the participant's first (sessions.tsv); not a "
        "model input",
    ),
    _e(
        r"has_(\w+)",
        "availability",
        "0/1",
        "1 when the modality was acquired and read",
        "has_<modality>",
    ),
    _e(
        r"source_(\w+)",
        "provenance",
        "path",
        "file the modality's values came from, relative to the cohort directory",
        "source_<modality>",
    ),
    # clinical
    _e("alsfrs_r", "clinical", "points (0-48)", "ALS Functional Rating Scale, revised"),
    _e(
        "alsfrs_r_progression_rate",
        "clinical",
        "points/month",
        "(48 - ALSFRS-R) / months since onset; patient-only, not a model input",
    ),
    _e(
        "months_since_onset",
        "clinical",
        "months",
        "symptom onset to visit; patient-only, not a model input",
    ),
    _e(
        r"onset_(bulbar|upper_limb|lower_limb)",
        "clinical",
        "0/1",
        "region of first motor symptoms (one-hot); patient-only, not a model input",
        "onset_<region>",
    ),
    _e("mrc_sum", "clinical", "points (0-60)", "MRC sum score"),
    _e("fvc_pct", "clinical", "% predicted", "forced vital capacity"),
    _e("penn_umn", "clinical", "points (0-32)", "Penn upper motor neuron score"),
    _e("edss", "clinical", "points (0-10)", "Expanded Disability Status Scale"),
    _e("umn_signs", "clinical", "0/1", "upper motor neuron signs on examination"),
    _e("lmn_signs", "clinical", "0/1", "lower motor neuron signs on examination"),
    _e("t2_lesion_volume_ml", "clinical", "mL", "brain T2/FLAIR lesion volume"),
    # serum
    _e("nfl_pg_ml", "serum", "pg/mL", "serum neurofilament light chain"),
    _e("chi3l1_ng_ml", "serum", "ng/mL", "serum chitinase-3-like protein 1 (YKL-40)"),
    _e(
        r"(anti_gm1_igm|aqp4_igg|oligoclonal_bands)",
        "serum",
        "0/1",
        "antibody / oligoclonal band result, 1 = positive",
        "<antibody>",
    ),
    _e(
        r"(anti_gm1_igm|aqp4_igg)_titre",
        "serum",
        "reciprocal titre",
        "antibody titre (e.g. 800 for 1:800)",
        "<antibody>_titre",
    ),
    # FreeSurfer
    _e("fs_etiv_mm3", "freesurfer", "mm^3", "estimated total intracranial volume"),
    _e("fs_total_gray_mm3", "freesurfer", "mm^3", "total grey-matter volume"),
    _e(
        f"fs_{_FS_VOLUME}_mm3",
        "freesurfer",
        "mm^3",
        f"structure volume ({_LR}); cortical regions are aparc GrayVol",
        "fs_<structure>_<l|r>_mm3",
    ),
    _e(
        r"fs_\w+_etiv_pct",
        "freesurfer",
        "% of eTIV",
        "volume / eTIV x 100",
        "fs_<structure>_etiv_pct",
    ),
    _e(
        f"fs_mean_thickness_{_SIDE}_mm",
        "freesurfer",
        "mm",
        f"mean cortical thickness ({_LR} hemisphere)",
        "fs_mean_thickness_<l|r>_mm",
    ),
    _e(
        "fs_m1_precuneus_ratio",
        "freesurfer",
        "ratio",
        "precentral / precuneus grey-matter volume, both hemispheres (Sako 2023)",
    ),
    _e(
        "qc_fs_parcellation_dkt",
        "quality control",
        "0/1",
        "1 when the DKT parcellation replaced a missing Desikan-Killiany aparc",
    ),
    # maps
    _e(
        f"dti_{_DTI_REGION}_fa",
        "dti",
        "unitless",
        "mean fractional anisotropy of tract",
        "dti_<tract>_fa",
    ),
    _e(
        f"dti_{_DTI_REGION}_(md|ad|rd)",
        "dti",
        "10^-3 mm^2/s",
        "mean mean/axial/radial diffusivity of tract",
        "dti_<tract>_<md|ad|rd>",
    ),
    _e(
        f"qsm_{_QSM_REGION}",
        "qsm",
        "ppb",
        "mean magnetic susceptibility of region",
        "qsm_<region>_<l|r>",
    ),
    _e(
        f"vbm_{_GM_REGION}_ml",
        "vbm",
        "mL",
        "grey-matter volume from a modulated GM map",
        "vbm_<region>_<l|r>_ml",
    ),
    _e(
        r"qc_\w+_missing",
        "quality control",
        "fraction",
        "fraction of the region's voxels that are NaN or zero in the map",
        "qc_<map>_<region>_missing",
    ),
    # spectroscopy
    _e(
        r"mrs_(naa|glu|gaba|cr)",
        "mrs",
        "institutional units (~mM)",
        "SMA LCModel concentration (cr = Cr + PCr); NaN when %SD > threshold",
        "mrs_<naa|glu|gaba|cr>",
    ),
    _e(
        r"mrs_(naa|glu|gaba|cr)_rejected",
        "quality control",
        "0/1",
        "1 when LCModel %SD (CRLB) exceeded the threshold (default 20 %)",
        "mrs_<metabolite>_rejected",
    ),
    _e(
        r"mrs_(glu_naa|glu_gaba|naa_cr)",
        "mrs",
        "ratio",
        "metabolite ratio",
        "mrs_<glu_naa|glu_gaba|naa_cr>",
    ),
    _e("mrs_fwhm_ppm", "mrs", "ppm", "spectral line width (LCModel FWHM)"),
    _e("mrs_snr", "mrs", "ratio", "LCModel signal-to-noise ratio"),
    # resting-state fMRI (features/fmri/smn.py)
    _e(
        r"fmri_(smn_within|sma_m1|m1_interhemispheric)_z",
        "fmri",
        "Fisher z",
        "mean Fisher z of resting-state correlations: within the sensorimotor "
        "network (M1, SMA, S1 both sides), SMA-M1, or left-right M1",
        "fmri_<smn_within|sma_m1|m1_interhemispheric>_z",
    ),
    _e(
        r"fmri_falff_(sma|m1)",
        "fmri",
        "fraction",
        "fractional ALFF (0.01-0.08 Hz amplitude over 0-Nyquist), both sides' mean",
        "fmri_falff_<sma|m1>",
    ),
    _e("qc_fmri_volumes", "quality control", "count", "rs-fMRI volumes kept"),
    _e("qc_fmri_mean_fd", "quality control", "mm", "mean framewise displacement"),
    _e(
        "qc_fmri_censored_fraction",
        "quality control",
        "fraction",
        "fraction of rs-fMRI volumes censored for motion",
    ),
    # nerve conduction
    _e(
        f"ncs_{_NERVE}_cmap_mv",
        "ncs",
        "mV",
        "distal CMAP amplitude",
        "ncs_<nerve>_<side>_cmap_mv",
    ),
    _e(
        f"ncs_{_NERVE}_cb_ratio",
        "ncs",
        "ratio",
        "smallest proximal/distal CMAP amplitude ratio",
        "ncs_<nerve>_<side>_cb_ratio",
    ),
    _e(
        f"ncs_{_NERVE}_cb_area_ratio",
        "ncs",
        "ratio",
        "smallest proximal/distal CMAP area ratio",
        "ncs_<nerve>_<side>_cb_area_ratio",
    ),
    _e(
        f"ncs_{_NERVE}_dispersion_pct",
        "ncs",
        "%",
        "largest proximal vs distal increase of negative-peak CMAP duration",
        "ncs_<nerve>_<side>_dispersion_pct",
    ),
    _e(
        "qc_ncs_no_duration",
        "quality control",
        "0/1",
        "1 when conduction block was graded without CMAP durations (amplitude/area)",
    ),
    _e(
        r"ncs_n_nerves_cb_(definite|probable)",
        "ncs",
        "count",
        "motor nerves with definite / probable conduction block (EFNS/PNS 2010)",
        "ncs_n_nerves_cb_<grade>",
    ),
    _e("ncs_any_cb", "ncs", "0/1", "any definite or probable conduction block"),
    _e("ncs_cmap_zsum", "ncs", "z", "sum of distal CMAP z-scores over 8 motor nerves"),
    _e("ncs_split_hand_ratio", "ncs", "ratio", "APB (median) / ADM (ulnar) CMAP"),
    _e("ncs_min_cv_m_s", "ncs", "m/s", "slowest motor conduction velocity"),
    _e(
        "ncs_n_nerves_demyelinating_cv",
        "ncs",
        "count",
        "motor nerves with demyelinating-range slowing",
    ),
    _e("ncs_max_f_wave_ms", "ncs", "ms", "longest minimal F-wave latency"),
    _e("ncs_sensory_abnormal", "ncs", "0/1", "any SNAP below its lower limit"),
    _e("ncs_cmap_asymmetry", "ncs", "log ratio", "mean |log(left/right)| distal CMAP"),
    # peripheral MRI
    _e(
        f"{_RATING}_n_sides",
        "peripheral_mri",
        "count (0-2)",
        "sides rated abnormal",
        "<rating>_n_sides",
    ),
    _e(
        f"{_RATING}_asymmetric",
        "peripheral_mri",
        "0/1",
        "abnormal on exactly one side (both sides rated)",
        "<rating>_asymmetric",
    ),
    _e("peripheral_mri_any", "peripheral_mri", "0/1", "any side rated abnormal"),
)


#: The modalities a feature column can belong to (``has_<modality>`` names them).
MODALITIES = (
    "clinical",
    "serum",
    "ncs",
    "peripheral_mri",
    "freesurfer",
    "dti",
    "qsm",
    "vbm",
    "mrs",
    "fmri",
)
PLACEHOLDERS = {
    "<modality>": ", ".join(MODALITIES),
    "<antibody>": "anti_gm1_igm, aqp4_igg, oligoclonal_bands (titres: the first two)",
    "<structure>": "thalamus, caudate, putamen, pallidum, precentral, precuneus, "
    "pulvinar (with _l / _r), total_gray",
    "<tract>": "cst_l, cst_r (corticospinal), optic_radiation_l, optic_radiation_r "
    "(control tracts), callosal_body",
    "<region>": "substantia_nigra, thalamus, putamen, pallidum, caudate, precentral "
    "(vbm: all but substantia_nigra)",
    "<map>": "dti_fa, dti_md, dti_ad, dti_rd, qsm, vbm",
    "<metabolite>": "naa, glu, gaba, cr",
    "<nerve>": "median, ulnar, peroneal, tibial (motor)",
    "<side>": "left, right",
    "<grade>": "definite, probable",
    "<rating>": "plexus_t2_hyperintensity, nerve_thickening, muscle_oedema, "
    "muscle_atrophy",
}


#: Column prefixes of the imaging modalities (FreeSurfer, diffusion, QSM,
#: spectroscopy, atlas grey-matter volumes, rs-fMRI): what ComBat harmonises by
#: default (functional connectivity too: Yu et al., Hum Brain Mapp 2018;39:4213,
#: refs#fmri). The fMRI QC columns (qc_fmri_) are not harmonised.
IMAGING_PREFIXES = ("fs_", "dti_", "qsm_", "mrs_", "vbm_", "fmri_")
#: The modality of a column the dictionary lacks (a lab's own names).
UNDOCUMENTED = "undocumented"


#: Named feature sets (``--feature-set``): the modalities each keeps. "objective":
#: the biomarkers a machine measures (imaging, spectroscopy, serum), without the
#: clinical examination and nerve conduction, which carry the diagnosis's own
#: criteria.
FEATURE_SETS = {
    "all": MODALITIES,
    "objective": (
        "serum",
        "peripheral_mri",
        "freesurfer",
        "dti",
        "qsm",
        "vbm",
        "mrs",
        "fmri",
    ),
    "imaging": ("peripheral_mri", "freesurfer", "dti", "qsm", "vbm", "mrs", "fmri"),
}


def feature_set(names) -> tuple[str, ...]:
    """The modalities of a feature set: named sets (:data:`FEATURE_SETS`) and
    modalities (:data:`MODALITIES`) combined, in :data:`MODALITIES` order.

    Examples
    --------
    >>> feature_set(["objective"]) == feature_set(["imaging", "serum"])
    True
    >>> feature_set(["mrs", "serum"])
    ('serum', 'mrs')
    """
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in FEATURE_SETS and n not in MODALITIES]
    if unknown or not names:
        raise ValueError(
            f"feature set {names}: unknown {unknown or 'empty'}; name sets "
            f"({', '.join(FEATURE_SETS)}) or modalities ({', '.join(MODALITIES)}), "
            'e.g. feature_set = ["objective"] or --feature-set serum mrs.'
        )
    chosen = {m for n in names for m in FEATURE_SETS.get(n, (n,))}
    return tuple(m for m in MODALITIES if m in chosen)


def in_feature_set(column: str, modalities) -> bool:
    """Whether ``column`` is a model input under a feature set of ``modalities``:
    demographics and the site always; ``has_<M>`` with M; a column the dictionary
    lacks never (a lab's own names have no modality to select them by).

    Examples
    --------
    >>> [in_feature_set(c, ("serum",)) for c in ("age", "nfl_pg_ml", "has_serum",
    ...                                           "has_ncs", "alsfrs_r", "my_score")]
    [True, True, True, False, False, False]
    """
    modality = modality_of(column)
    if modality in ("demographics", "metadata"):
        return True
    if modality == "availability":
        modality = column.removeprefix("has_")
    return modality in modalities


@functools.cache
def describe(column: str) -> Entry | None:
    """The dictionary entry of ``column``, or None when it has none (memoised:
    scoring asks once per column and chunk)."""
    return next((e for e in ENTRIES if e.matches(column)), None)


def modality_of(column: str) -> str:
    """The modality a feature column belongs to; :data:`UNDOCUMENTED` for a column
    the dictionary lacks.

    Examples
    --------
    >>> [modality_of(c) for c in ("fs_m1_precuneus_ratio", "nfl_pg_ml", "has_dti")]
    ['freesurfer', 'serum', 'availability']
    >>> [modality_of(c) for c in ("muscle_atrophy_n_sides", "age", "CST_FA (7T)")]
    ['peripheral_mri', 'demographics', 'undocumented']
    """
    entry = describe(column)
    return entry.modality if entry is not None else UNDOCUMENTED


#: Units whose values can be negative; every other unit is a non-negative quantity.
SIGNED_UNITS = ("ppb", "log ratio", "z", "")


def value_range(column: str) -> tuple[float, float]:
    """The physically possible range of ``column``'s values, from its unit.

    ``0/1`` flags lie in [0, 1]; ``points (a-b)`` scores and ``count (a-b)`` in
    [a, b]; fractions in [0, 1]; susceptibilities (ppb), log ratios, z-scores and
    undocumented columns are unbounded; every other unit is non-negative.

    Examples
    --------
    >>> value_range("alsfrs_r"), value_range("nfl_pg_ml"), value_range("qsm_putamen_l")
    ((0.0, 48.0), (0.0, inf), (-inf, inf))
    """
    entry = describe(column)
    unit = entry.unit if entry is not None else ""
    bounded = re.search(r"\((\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\)", unit)
    if bounded:
        return float(bounded.group(1)), float(bounded.group(2))
    if unit in ("0/1", "fraction"):
        return 0.0, 1.0
    if unit in SIGNED_UNITS:
        return -float("inf"), float("inf")
    return 0.0, float("inf")


def undocumented(columns) -> list[str]:
    """Columns without a dictionary entry."""
    return [c for c in columns if describe(c) is None]


def to_markdown() -> str:
    """``docs/features.md``: the dictionary as a Markdown table, grouped by modality."""
    rows = pd.DataFrame(
        [(e.modality, e.template, e.unit, e.description) for e in ENTRIES],
        columns=["modality", "column", "unit", "meaning"],
    )
    lines = [
        "# Features table: data dictionary",
        "",
        "Generated from `features/dictionary.py` by "
        "`python -m features dictionary --out docs/features.md`; do not edit by hand.",
        "One row per subject-visit; empty cells are missing values. Placeholders:",
        "",
    ]
    lines += [f"- `{k}`: {v}" for k, v in PLACEHOLDERS.items()]
    lines.append("")
    for modality, group in rows.groupby("modality", sort=False):
        lines += [f"## {modality}", "", "| column | unit | meaning |", "|---|---|---|"]
        lines += [
            f"| `{r.column}` | {r.unit} | {r.meaning} |" for r in group.itertuples()
        ]
        lines.append("")
    return "\n".join(lines)
