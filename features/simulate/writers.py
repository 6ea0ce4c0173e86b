"""Write FreeSurfer 7 ``aseg.stats`` / ``?h.aparc.stats`` and LCModel 6.3 ``.table``.

The simulator writes its cohort in the formats the real pipelines produce, laid out
as FreeSurfer 7.2 (subject ``bert``) and LCModel 6.3-1B write them, so the readers in
:mod:`features.imaging.freesurfer` and :mod:`features.mrs` are exercised on realistic
text. Output is deterministic: machine-specific provenance (host, user, timestamps)
that real files carry is left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from features.imaging.freesurfer import APARC_COLUMNS, STRUCTURE_RENAMES

__all__ = [
    "ASEG_SEGMENT_IDS",
    "DK_REGIONS",
    "write_aparc_stats",
    "write_aseg_stats",
    "write_lcmodel_table",
]

#: The 34 Desikan-Killiany ``aparc`` parcels in the order FreeSurfer writes them.
DK_REGIONS: tuple[str, ...] = (
    "bankssts", "caudalanteriorcingulate", "caudalmiddlefrontal", "cuneus",
    "entorhinal", "fusiform", "inferiorparietal", "inferiortemporal",
    "isthmuscingulate", "lateraloccipital", "lateralorbitofrontal", "lingual",
    "medialorbitofrontal", "middletemporal", "parahippocampal", "paracentral",
    "parsopercularis", "parsorbitalis", "parstriangularis", "pericalcarine",
    "postcentral", "posteriorcingulate", "precentral", "precuneus",
    "rostralanteriorcingulate", "rostralmiddlefrontal", "superiorfrontal",
    "superiorparietal", "superiortemporal", "supramarginal", "frontalpole",
    "temporalpole", "transversetemporal", "insula",
)  # fmt: skip

# FreeSurfer ASegStatsLUT ids of the 45 structures in a FreeSurfer 7 aseg.stats, with
# a tissue class that sets the simulated norm.mgz intensity (mean, sd) of the row.
_ASEG_LUT = """
4 Left-Lateral-Ventricle csf      5 Left-Inf-Lat-Vent csf
7 Left-Cerebellum-White-Matter wm 8 Left-Cerebellum-Cortex ctx
10 Left-Thalamus deep             11 Left-Caudate gm
12 Left-Putamen gm                13 Left-Pallidum deep
14 3rd-Ventricle csf              15 4th-Ventricle csf
16 Brain-Stem deep                17 Left-Hippocampus gm
18 Left-Amygdala gm               24 CSF csf
26 Left-Accumbens-area gm         28 Left-VentralDC deep
30 Left-vessel vessel             31 Left-choroid-plexus csf
43 Right-Lateral-Ventricle csf    44 Right-Inf-Lat-Vent csf
46 Right-Cerebellum-White-Matter wm 47 Right-Cerebellum-Cortex ctx
49 Right-Thalamus deep            50 Right-Caudate gm
51 Right-Putamen gm               52 Right-Pallidum deep
53 Right-Hippocampus gm           54 Right-Amygdala gm
58 Right-Accumbens-area gm        60 Right-VentralDC deep
62 Right-vessel vessel            63 Right-choroid-plexus csf
72 5th-Ventricle csf              77 WM-hypointensities hypo
78 Left-WM-hypointensities hypo   79 Right-WM-hypointensities hypo
80 non-WM-hypointensities hypo    81 Left-non-WM-hypointensities hypo
82 Right-non-WM-hypointensities hypo 85 Optic-Chiasm gm
251 CC_Posterior cc 252 CC_Mid_Posterior cc 253 CC_Central cc
254 CC_Mid_Anterior cc 255 CC_Anterior cc
""".split()
#: Structure name -> FreeSurfer segmentation id (ASegStatsLUT.txt).
ASEG_SEGMENT_IDS: dict[str, int] = {
    _ASEG_LUT[i + 1]: int(_ASEG_LUT[i]) for i in range(0, len(_ASEG_LUT), 3)
}
_TISSUE = {_ASEG_LUT[i + 1]: _ASEG_LUT[i + 2] for i in range(0, len(_ASEG_LUT), 3)}
_INTENSITY = {  # tissue -> (mean, sd) of norm.mgz, as in bert
    "csf": (40.0, 12.0), "wm": (86.4, 5.0), "ctx": (70.3, 10.7), "deep": (89.0, 8.5),
    "gm": (76.5, 7.0), "vessel": (60.0, 7.0), "hypo": (72.4, 11.8), "cc": (95.0, 14.8),
}  # fmt: skip
_NVOXEL_FACTOR = 1.04  # NVoxels / Volume_mm3: Volume_mm3 is partial-volume corrected

# "first field, key, description, units" of the aseg.stats measures, in file order.
_ASEG_MEASURES = [
    tuple(field.strip() for field in line.split(","))
    for line in """\
BrainSeg, BrainSegVol, Brain Segmentation Volume, mm^3
BrainSegNotVent, BrainSegVolNotVent, Brain Segmentation Volume Without Ventricles, mm^3
VentricleChoroidVol, VentricleChoroidVol, Volume of ventricles and choroid plexus, mm^3
lhCortex, lhCortexVol, Left hemisphere cortical gray matter volume, mm^3
rhCortex, rhCortexVol, Right hemisphere cortical gray matter volume, mm^3
Cortex, CortexVol, Total cortical gray matter volume, mm^3
lhCerebralWhiteMatter, lhCerebralWhiteMatterVol, Left hemisphere cerebral white \
matter volume, mm^3
rhCerebralWhiteMatter, rhCerebralWhiteMatterVol, Right hemisphere cerebral white \
matter volume, mm^3
CerebralWhiteMatter, CerebralWhiteMatterVol, Total cerebral white matter volume, mm^3
SubCortGray, SubCortGrayVol, Subcortical gray matter volume, mm^3
TotalGray, TotalGrayVol, Total gray matter volume, mm^3
SupraTentorial, SupraTentorialVol, Supratentorial volume, mm^3
SupraTentorialNotVent, SupraTentorialVolNotVent, Supratentorial volume, mm^3
Mask, MaskVol, Mask Volume, mm^3
BrainSegVol-to-eTIV, BrainSegVol-to-eTIV, Ratio of BrainSegVol to eTIV, unitless
MaskVol-to-eTIV, MaskVol-to-eTIV, Ratio of MaskVol to eTIV, unitless
lhSurfaceHoles, lhSurfaceHoles, Number of defect holes in lh surfaces prior to \
fixing, unitless
rhSurfaceHoles, rhSurfaceHoles, Number of defect holes in rh surfaces prior to \
fixing, unitless
SurfaceHoles, SurfaceHoles, Total number of defect holes in surfaces prior to \
fixing, unitless
EstimatedTotalIntraCranialVol, eTIV, Estimated Total Intracranial Volume, mm^3\
""".splitlines()
]
# bert's measures (and cerebellar cortex voxels) as fractions of its eTIV.
_BERT_FRACTION = {
    key: value / 1520021.264474
    for key, value in {
        "CerebellumCortex": 127635.0,
        "BrainSegVol": 1218061.0, "VentricleChoroidVol": 15041.0,
        "lhCortexVol": 244352.047461, "rhCortexVol": 242689.917301,
        "lhCerebralWhiteMatterVol": 248495.5, "rhCerebralWhiteMatterVol": 247170.5,
        "SubCortGrayVol": 61020.0, "SupraTentorialVol": 1061234.0,
        "MaskVol": 1780580.0,
    }.items()
}  # fmt: skip
_SIDES = ("Left-", "Right-")
_SUBCORT_GRAY = [
    s + n
    for s in _SIDES
    for n in ("Thalamus", "Caudate", "Putamen", "Pallidum", "Hippocampus",
              "Amygdala", "Accumbens-area", "VentralDC")
]  # fmt: skip
_VENT_CHOROID = [
    s + n
    for s in _SIDES
    for n in ("Lateral-Ventricle", "Inf-Lat-Vent", "choroid-plexus")
]
_OTHER_CSF = ["3rd-Ventricle", "4th-Ventricle", "5th-Ventricle", "CSF"]
_ASEG_COLUMNS = [
    ("Index", "Index", "NA"), ("SegId", "Segmentation Id", "NA"),
    ("NVoxels", "Number of Voxels", "unitless"), ("Volume_mm3", "Volume", "mm^3"),
    ("StructName", "Structure Name", "NA"),
    ("normMean", "Intensity normMean", "MR"),
    ("normStdDev", "Itensity normStdDev", "MR"),
    ("normMin", "Intensity normMin", "MR"), ("normMax", "Intensity normMax", "MR"),
    ("normRange", "Intensity normRange", "MR"),
]  # fmt: skip


def _table_col_lines(columns: list[tuple[str, str, str]]) -> list[str]:
    """The ``# TableCol`` block that FreeSurfer writes above ``# ColHeaders``."""
    lines = []
    for i, (header, field, units) in enumerate(columns, start=1):
        lines += [
            f"# TableCol {i:2d} ColHeader {header}",
            f"# TableCol {i:2d} FieldName {field}",
            f"# TableCol {i:2d} Units     {units}",
        ]
    return lines


def _complete_aseg_measures(
    measures: Mapping[str, float], nvox: Mapping[str, int]
) -> dict[str, float]:
    """Fill in the aseg measures missing from ``measures`` (rules: write_aseg_stats)."""
    known = {key for _, key, _, _ in _ASEG_MEASURES}
    unknown = sorted(set(measures) - known)
    if unknown:
        raise ValueError(
            f"write_aseg_stats: unknown measures {unknown}; use the aseg.stats keys "
            f"(second '# Measure' field): {sorted(known)}."
        )
    if "eTIV" not in measures:
        raise ValueError(
            "write_aseg_stats: measures has no 'eTIV'; pass the estimated total "
            "intracranial volume in mm^3, e.g. measures={'eTIV': 1.52e6}."
        )
    m = {key: float(value) for key, value in measures.items()}
    etiv = m["eTIV"]

    def voxels(names: list[str], key: str) -> float:
        if all(n in nvox for n in names):
            return float(sum(nvox[n] for n in names))
        return _BERT_FRACTION[key] * etiv

    m.setdefault("SubCortGrayVol", voxels(_SUBCORT_GRAY, "SubCortGrayVol"))
    m.setdefault("VentricleChoroidVol", voxels(_VENT_CHOROID, "VentricleChoroidVol"))
    cerebellum = voxels([s + "Cerebellum-Cortex" for s in _SIDES], "CerebellumCortex")
    for key in (
        "BrainSegVol",
        "SupraTentorialVol",
        "MaskVol",
        "lhCortexVol",
        "rhCortexVol",
        "lhCerebralWhiteMatterVol",
        "rhCerebralWhiteMatterVol",
    ):
        m.setdefault(key, _BERT_FRACTION[key] * etiv)  # fmt: skip
    m.setdefault("CortexVol", m["lhCortexVol"] + m["rhCortexVol"])
    m.setdefault(
        "CerebralWhiteMatterVol",
        m["lhCerebralWhiteMatterVol"] + m["rhCerebralWhiteMatterVol"],
    )
    m.setdefault("TotalGrayVol", m["CortexVol"] + m["SubCortGrayVol"] + cerebellum)
    ventricular = m["VentricleChoroidVol"] + sum(nvox.get(n, 0) for n in _OTHER_CSF)
    m.setdefault("BrainSegVolNotVent", m["BrainSegVol"] - ventricular)
    m.setdefault("SupraTentorialVolNotVent", m["SupraTentorialVol"] - ventricular)
    m.setdefault("BrainSegVol-to-eTIV", m["BrainSegVol"] / etiv)
    m.setdefault("MaskVol-to-eTIV", m["MaskVol"] / etiv)
    if "lhSurfaceHoles" in m and "rhSurfaceHoles" in m:
        m.setdefault("SurfaceHoles", m["lhSurfaceHoles"] + m["rhSurfaceHoles"])
    return m


def write_aseg_stats(
    path: str | Path,
    volumes: Mapping[str, float],
    measures: Mapping[str, float],
    subject: str,
) -> None:
    """Write an ``aseg.stats`` file laid out as FreeSurfer 7 ``mri_segstats`` does.

    Parameters
    ----------
    path : str or Path
        Output file; parent folders are created.
    volumes : mapping of str to float
        Structure name -> volume in mm^3 (``Volume_mm3``). Names are FreeSurfer 7
        ASegStatsLUT names (see ``ASEG_SEGMENT_IDS``; ``Left-Thalamus-Proper`` is
        accepted as ``Left-Thalamus``). Rows are written in segment-id order with
        ``NVoxels = round(1.04 * volume)`` (a voxel count that, as in real files,
        differs from the partial-volume corrected volume) and tissue-typical
        intensity columns; empty structures get zeros as FreeSurfer writes them.
    measures : mapping of str to float
        ``# Measure`` values keyed by their second field. ``eTIV`` is required.
        Missing measures are derived: ``SubCortGrayVol`` and ``VentricleChoroidVol``
        as FreeSurfer's voxel sums when all their structures are in ``volumes``;
        ``BrainSegVol``, ``lh/rhCortexVol``, ``lh/rhCerebralWhiteMatterVol``,
        ``SupraTentorialVol``, ``MaskVol`` (and the two voxel sums otherwise) as
        bert's fraction of eTIV; ``CortexVol``, ``CerebralWhiteMatterVol`` and
        ``TotalGrayVol`` (cortex + subcortical + cerebellar cortex) as sums;
        ``*NotVent`` by subtracting ventricles, choroid plexus and CSF; the two
        ``-to-eTIV`` ratios. ``lh/rhSurfaceHoles`` are written only when given
        (``SurfaceHoles`` is then their sum).
    subject : str
        Subject label for the ``# subjectname`` and ``# cmdline`` lines.

    Raises
    ------
    ValueError
        If ``measures`` lacks ``eTIV`` or holds an unknown key, or a structure name
        is unknown or its volume is negative or not finite.

    Examples
    --------
    >>> import tempfile
    >>> from features.imaging.freesurfer import read_aseg_stats
    >>> out = Path(tempfile.mkdtemp()) / "aseg.stats"
    >>> write_aseg_stats(out, {"Left-Thalamus": 8066.3}, {"eTIV": 1.52e6}, "sub-01")
    >>> read_aseg_stats(out).volumes
    {'Left-Thalamus': 8066.3}
    """
    rows = []
    for raw_name, volume in volumes.items():
        name = STRUCTURE_RENAMES.get(raw_name, raw_name)
        if name not in ASEG_SEGMENT_IDS:
            raise ValueError(
                f"write_aseg_stats: unknown structure {raw_name!r}; use a FreeSurfer "
                f"ASegStatsLUT name: {sorted(ASEG_SEGMENT_IDS)}."
            )
        if not (math.isfinite(volume) and volume >= 0):
            raise ValueError(
                f"write_aseg_stats: volume of {raw_name} = {volume!r}; volumes must be "
                "finite and >= 0 mm^3."
            )
        rows.append((ASEG_SEGMENT_IDS[name], name, float(volume)))
    rows.sort()
    nvox = {name: round(volume * _NVOXEL_FACTOR) for _, name, volume in rows}
    m = _complete_aseg_measures(measures, nvox)
    lines = [
        "# Title Segmentation Statistics ", "# ",
        "# generating_program mri_segstats", "# cvs_version 7.2.0",
        "# cmdline mri_segstats --seed 1234 --seg mri/aseg.mgz --sum stats/aseg.stats"
        " --pv mri/norm.mgz --empty --brainmask mri/brainmask.mgz --brain-vol-from-seg"
        " --excludeid 0 --excl-ctxgmwm --supratent --subcortgray --in mri/norm.mgz"
        " --in-intensity-name norm --in-intensity-units MR --etiv --surf-wm-vol"
        " --surf-ctx-vol --totalgray --euler --ctab"
        f" $FREESURFER_HOME/ASegStatsLUT.txt --subject {subject} ",
        "# anatomy_type volume", "# ", f"# subjectname {subject}",
        "# BrainVolStatsFixed-NotNeeded because voxelvolume=1mm3",
    ]  # fmt: skip
    for first, key, description, units in _ASEG_MEASURES:
        if key in m:
            value = f"{m[key]:.0f}" if "Holes" in key else f"{m[key]:f}"
            lines.append(f"# Measure {first}, {key}, {description}, {value}, {units}")
    lines += [
        "# SegVolFile mri/aseg.mgz ",
        "# ColorTable $FREESURFER_HOME/ASegStatsLUT.txt ",
        "# InVolFile  mri/norm.mgz ", "# InVolFrame 0 ", "# PVVolFile  mri/norm.mgz ",
        "# Excluding Cortical Gray and White Matter", "# ExcludeSegId 0 2 3 41 42 ",
        "# VoxelVolume_mm3 1 ", *_table_col_lines(_ASEG_COLUMNS),
        f"# NRows {len(rows)} ", "# NTableCols 10 ",
        "# ColHeaders  " + " ".join(c for c, _, _ in _ASEG_COLUMNS) + "  ",
    ]  # fmt: skip
    for index, (seg_id, name, volume) in enumerate(rows, start=1):
        mean, sd = _INTENSITY[_TISSUE[name]] if nvox[name] else (0.0, 0.0)
        low, high = max(mean - 3.5 * sd, 0.0), mean + 3.0 * sd
        lines.append(
            f"{index:3d} {seg_id:3d} {nvox[name]:9d} {volume:10.1f}  {name:<30s} "
            f"{mean:10.4f} {sd:10.4f} {low:10.4f} {high:10.4f} {high - low:10.4f} "
        )
    _write_lines(path, lines)


_APARC_TABLE = [
    ("StructName", "Structure Name", "NA"),
    ("NumVert", "Number of Vertices", "unitless"),
    ("SurfArea", "Surface Area", "mm^2"), ("GrayVol", "Gray Matter Volume", "mm^3"),
    ("ThickAvg", "Average Thickness", "mm"), ("ThickStd", "Thickness StdDev", "mm"),
    ("MeanCurv", "Integrated Rectified Mean Curvature", "mm^-1"),
    ("GausCurv", "Integrated Rectified Gaussian Curvature", "mm^-2"),
    ("FoldInd", "Folding Index", "unitless"),
    ("CurvInd", "Intrinsic Curvature Index", "unitless"),
]  # fmt: skip
_APARC_VOLUME_MEASURES = [
    ("BrainSeg", "BrainSegVol", "Brain Segmentation Volume"),
    ("BrainSegNotVent", "BrainSegVolNotVent",
     "Brain Segmentation Volume Without Ventricles"),
    ("BrainSegNotVentSurf", "BrainSegVolNotVentSurf",
     "Brain Segmentation Volume Without Ventricles from Surf"),
    ("Cortex", "CortexVol", "Total cortical gray matter volume"),
    ("SupraTentorial", "SupraTentorialVol", "Supratentorial volume"),
    ("SupraTentorialNotVent", "SupraTentorialVolNotVent", "Supratentorial volume"),
    ("EstimatedTotalIntraCranialVol", "eTIV", "Estimated Total Intracranial Volume"),
]  # fmt: skip


def _fill_aparc_columns(regions: pd.DataFrame) -> pd.DataFrame:
    """Add plausible values (bert's typical ratios) for absent aparc columns."""
    r = regions.astype("float64")
    if "SurfArea" not in r:
        r["SurfArea"] = r["GrayVol"] / r["ThickAvg"]
    defaults = {
        "NumVert": r["SurfArea"] * 1.55, "ThickStd": r["ThickAvg"] * 0.2,
        "MeanCurv": 0.115, "GausCurv": 0.024,
    }  # fmt: skip
    for column, value in defaults.items():
        if column not in r:
            r[column] = value
    r["FoldInd"] = r["FoldInd"] if "FoldInd" in r else r["NumVert"] * 0.0075
    r["CurvInd"] = r["CurvInd"] if "CurvInd" in r else r["NumVert"] * 0.001
    return r[list(APARC_COLUMNS)]


def write_aparc_stats(
    path: str | Path,
    hemi: str,
    regions: pd.DataFrame,
    measures: Mapping[str, float],
    subject: str,
    atlas: str = "aparc",
) -> None:
    """Write a ``?h.aparc.stats`` file laid out as FreeSurfer 7 does.

    Parameters
    ----------
    path : str or Path
        Output file; parent folders are created.
    hemi : {"lh", "rh"}
        Hemisphere.
    regions : pandas.DataFrame
        Indexed by parcel name (for ``atlas="aparc"``, names from ``DK_REGIONS``;
        rows are written in that order), with at least ``GrayVol`` (mm^3) and
        ``ThickAvg`` (mm). Absent columns are filled with bert's typical ratios:
        ``SurfArea = GrayVol / ThickAvg``, ``NumVert = 1.55 * SurfArea``,
        ``ThickStd = 0.2 * ThickAvg``, ``MeanCurv = 0.115``, ``GausCurv = 0.024``,
        ``FoldInd = 0.0075 * NumVert``, ``CurvInd = 0.001 * NumVert``.
    measures : mapping of str to float
        ``# Measure`` values keyed by their second field. ``NumVert``,
        ``WhiteSurfArea`` and ``MeanThickness`` default to the table's vertex sum,
        area sum and vertex-weighted thickness; the whole-brain volumes
        (``BrainSegVol``, ``BrainSegVolNotVent``, ``BrainSegVolNotVentSurf``,
        ``CortexVol``, ``SupraTentorialVol``, ``SupraTentorialVolNotVent``,
        ``eTIV``) are written only when given.
    subject : str
        Subject label for the ``# subjectname`` and ``# cmdline`` lines.
    atlas : str, default="aparc"
        Parcellation name, e.g. ``"aparc"`` or ``"aparc.DKTatlas"``.

    Raises
    ------
    ValueError
        If ``hemi`` is not lh/rh, ``regions`` lacks ``GrayVol`` or ``ThickAvg`` or
        holds a missing value, an ``aparc`` parcel is not a Desikan-Killiany name,
        or ``measures`` holds an unknown key.

    Examples
    --------
    >>> regions = pd.DataFrame({"GrayVol": [14392.0], "ThickAvg": [2.939]},
    ...                        index=["precentral"])
    >>> import tempfile
    >>> from features.imaging.freesurfer import read_aparc_stats
    >>> out = Path(tempfile.mkdtemp()) / "lh.aparc.stats"
    >>> write_aparc_stats(out, "lh", regions, {"eTIV": 1.52e6}, "sub-01")
    >>> read_aparc_stats(out).regions.loc["precentral", ["GrayVol", "ThickAvg"]]
    GrayVol     14392.000
    ThickAvg        2.939
    Name: precentral, dtype: float64
    """
    if hemi not in ("lh", "rh"):
        raise ValueError(f"write_aparc_stats: hemi = {hemi!r}; use 'lh' or 'rh'.")
    missing = [c for c in ("GrayVol", "ThickAvg") if c not in regions.columns]
    if missing:
        raise ValueError(
            f"write_aparc_stats: regions lacks column(s) {missing}; pass at least "
            "GrayVol (mm^3) and ThickAvg (mm) per parcel."
        )
    extra = sorted(set(regions.index) - set(DK_REGIONS))
    if atlas == "aparc" and extra:
        raise ValueError(
            f"write_aparc_stats: {extra} are not Desikan-Killiany parcels; for "
            "atlas='aparc' index regions by names in DK_REGIONS (e.g. 'precentral')."
        )
    known = {"NumVert", "WhiteSurfArea", "MeanThickness"}
    known |= {key for _, key, _ in _APARC_VOLUME_MEASURES}
    if unknown := sorted(set(measures) - known):
        raise ValueError(
            f"write_aparc_stats: unknown measures {unknown}; use {sorted(known)}."
        )
    table = _fill_aparc_columns(regions)
    if table.isna().any().any():
        bad = table.index[table.isna().any(axis=1)].tolist()
        raise ValueError(
            f"write_aparc_stats: missing values for parcels {bad}; fill them or drop "
            "the parcels (a parcel absent from the file reads back as NaN)."
        )
    order = [r for r in DK_REGIONS if r in table.index]
    table = table.loc[order + [r for r in table.index if r not in DK_REGIONS]]
    m = dict(measures)
    m.setdefault("NumVert", table["NumVert"].round().sum())
    m.setdefault("WhiteSurfArea", table["SurfArea"].sum())
    weights = table["NumVert"].round()
    thickness = (table["ThickAvg"] * weights).sum() / max(weights.sum(), 1.0)
    m.setdefault("MeanThickness", thickness)
    ctab = "aparc.annot.ctab" if atlas == "aparc" else f"{atlas}.annot.ctab"
    lines = [
        "# Table of FreeSurfer cortical parcellation anatomical statistics ", "# ",
        "# generating_program mris_anatomical_stats", "# cvs_version 7.2.0",
        "# mrisurf.c-cvs_version 7.2.0",
        "# cmdline mris_anatomical_stats -th3 -mgz"
        f" -cortex ../label/{hemi}.cortex.label -f ../stats/{hemi}.{atlas}.stats"
        f" -b -a ../label/{hemi}.{atlas}.annot"
        f" -c ../label/{ctab} {subject} {hemi} white ",
        "# ", "# anatomy_type surface", f"# subjectname {subject}", f"# hemi {hemi}",
        f"# AnnotationFile ../label/{hemi}.{atlas}.annot",
        f"# Measure Cortex, NumVert, Number of Vertices, {m['NumVert']:.0f}, unitless",
        "# Measure Cortex, WhiteSurfArea, White Surface Total Area, "
        f"{m['WhiteSurfArea']:g}, mm^2",
        f"# Measure Cortex, MeanThickness, Mean Thickness, {m['MeanThickness']:g}, mm",
        "# BrainVolStatsFixed-NotNeeded because voxelvolume=1mm3",
    ]  # fmt: skip
    for first, key, description in _APARC_VOLUME_MEASURES:
        if key in m:
            lines.append(f"# Measure {first}, {key}, {description}, {m[key]:f}, mm^3")
    lines += ["# NTableCols 10", *_table_col_lines(_APARC_TABLE)]
    lines.append("# ColHeaders " + " ".join(c for c, _, _ in _APARC_TABLE))
    for name, r in table.iterrows():
        lines.append(
            f"{name:<40s}{round(r.NumVert):5d}  {round(r.SurfArea):5d}  "
            f"{round(r.GrayVol):5d}  {r.ThickAvg:5.3f} {r.ThickStd:5.3f}  "
            f"{r.MeanCurv:8.3f}  {r.GausCurv:8.3f}  {round(r.FoldInd):7d}  "
            f"{r.CurvInd:6.1f}"
        )
    _write_lines(path, lines)


def _lcmodel_number(value: float, width: int, digits: int) -> str:
    """Format as LCModel does: fixed 3 decimals, E notation below 0.1 or above 1e4."""
    if value == 0 or 0.1 <= abs(value) < 1e4:
        return f"{value:{width}.3f}"
    return f"{value:{width}.{digits}E}"


def write_lcmodel_table(
    path: str | Path,
    concentrations: pd.DataFrame,
    fwhm_ppm: float,
    snr: float,
    title: str,
) -> None:
    """Write an LCModel 6.3 ``.table`` file (``$$CONC``, ``$$MISC``, ...).

    Parameters
    ----------
    path : str or Path
        Output file; parent folders are created.
    concentrations : pandas.DataFrame
        Indexed by metabolite name with columns ``conc`` (>= 0) and ``sd_pct``
        (%SD, printed as an integer and capped at 999 as LCModel does). Must hold
        ``Cr`` and ``PCr``; a ``Cr+PCr`` row is appended when absent, with
        ``sd_pct`` propagated assuming independent errors. The ``/Cr+PCr`` ratio
        column is computed here.
    fwhm_ppm : float
        Linewidth in ppm, written as ``FWHM = 0.043 ppm``.
    snr : float
        Signal-to-noise ratio, written rounded to an integer (``S/N =  13``).
    title : str
        Free text written below the version line (one line per ``\\n``).

    Raises
    ------
    ValueError
        If columns ``conc``/``sd_pct`` or rows ``Cr``/``PCr`` are missing, a value
        is negative or missing, or Cr+PCr is 0 (ratios undefined).

    Examples
    --------
    >>> conc = pd.DataFrame({"conc": [0.0797, 0.1, 0.151], "sd_pct": [11, 5, 4]},
    ...                     index=["NAA", "Cr", "PCr"])
    >>> import tempfile
    >>> from features.mrs import read_lcmodel_table
    >>> out = Path(tempfile.mkdtemp()) / "sub-01.table"
    >>> write_lcmodel_table(out, conc, fwhm_ppm=0.043, snr=13, title="sub-01")
    >>> read_lcmodel_table(out).concentrations.loc["NAA"].tolist()
    [0.0797, 11.0, 0.318]
    """
    missing = [c for c in ("conc", "sd_pct") if c not in concentrations.columns]
    missing += [r for r in ("Cr", "PCr") if r not in concentrations.index]
    if missing:
        raise ValueError(
            f"write_lcmodel_table: concentrations lacks {missing}; pass columns "
            "'conc' and 'sd_pct' indexed by metabolite, including 'Cr' and 'PCr'."
        )
    table = concentrations[["conc", "sd_pct"]].astype("float64")
    if table.isna().any().any() or (table < 0).any().any():
        bad = table.index[(table.isna() | (table < 0)).any(axis=1)].tolist()
        raise ValueError(
            f"write_lcmodel_table: rows {bad} have a missing or negative conc or "
            "sd_pct; LCModel concentrations and %SD are >= 0 (sd_pct=999 marks a "
            "failed fit)."
        )
    if not (math.isfinite(fwhm_ppm) and math.isfinite(snr) and min(fwhm_ppm, snr) >= 0):
        raise ValueError(
            f"write_lcmodel_table: fwhm_ppm = {fwhm_ppm!r}, snr = {snr!r}; both must "
            "be finite and >= 0 (e.g. fwhm_ppm=0.043, snr=13)."
        )
    if "Cr+PCr" not in table.index:
        cr, pcr = table.loc["Cr"], table.loc["PCr"]
        total = cr.conc + pcr.conc
        sd = (
            math.hypot(cr.conc * cr.sd_pct, pcr.conc * pcr.sd_pct) / total
            if total
            else 999.0
        )
        table.loc["Cr+PCr"] = [total, sd]
    reference = table.loc["Cr+PCr", "conc"]
    if reference <= 0:
        raise ValueError(
            "write_lcmodel_table: Cr+PCr concentration is 0, so the /Cr+PCr ratios "
            "are undefined; give Cr or PCr a positive concentration."
        )
    lines = [" LCModel (Version 6.3-1B)", *(f" {t}" for t in title.splitlines()), ""]
    lines.append(
        f"$$CONC {len(table) + 1} lines in following concentration table = NCONC+1"
    )
    lines.append("    Conc.  %SD /Cr+PCr  Metabolite")
    for name, row in table.iterrows():
        sd = min(int(row.sd_pct + 0.5), 999)  # Fortran NINT, capped as LCModel
        lines.append(
            f"{_lcmodel_number(row.conc, 9, 2)}{sd:4d}%"
            f"{_lcmodel_number(row.conc / reference, 8, 1)} {name}"
        )
    misc = [
        f"  FWHM = {fwhm_ppm:5.3f} ppm    S/N = {int(snr + 0.5):3d}",
        "  Data shift = 0.000 ppm", "  Ph:   0 deg       0.0 deg/ppm",
        "  alphaB,S = 4.8E-02,   3.7E+01", "   28 spline knots.   Ns = 7(1)",
        "  (11) 1 infls.   (12) 2 extrs.",
    ]  # fmt: skip
    lines += ["", f"$$MISC {len(misc):2d} lines in following misc. output table", *misc]
    lines += ["", "$$DIAG  1 lines in following diagnostic table:"]
    lines += ["   1 info      FINOUT  9", ""]
    lines += ["$$INPU  2 lines in following table of input changes:"]
    lines += [f" FILTAB = '{Path(path).name}'", " LTABLE = 7"]
    _write_lines(path, lines)


def _write_lines(path: str | Path, lines: list[str]) -> None:
    """Write ``lines`` with a final newline, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
