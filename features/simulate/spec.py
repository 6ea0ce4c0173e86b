"""The generative model's parameters, each next to its source.

Every number cites its entry in ``docs/references.md`` (``refs#<anchor>``) or is
marked ``UE`` (uncited estimate: textbook-typical, no source found yet).
Continuous markers are Gaussian on the modelled scale (log for concentrations and
volumes) given the class, age, sex, site and a latent disease severity ``s ~ N(0, 1)``;
``sd`` is the total within-class SD on that scale and ``loading`` the part carried by
``s`` (the correlations of refs#corr come from shared loadings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from common.schema import DIAGNOSES

CLASSES: tuple[str, ...] = DIAGNOSES
SITES: tuple[str, ...] = ("siteA", "siteB", "siteC", "siteD")
MODALITIES: tuple[str, ...] = (
    "clinical",
    "serum",
    "freesurfer",
    "dti",
    "qsm",
    "mrs",
    "ncs",
    "peripheral_mri",
)
REF_ETIV = 1520021.264474  # FreeSurfer sample subject "bert" (shared fixtures)


# Phenotypes within a class (shares UE). ALS_LMN: lower-motor-neuron predominant,
# no or few UMN signs (refs#src: "some patients never show UMN signs"; NfL mean
# 59.4 in LMN-dominant ALS, Kleinveld 2024, refs#nfl): the hard ALS-vs-MMN
# differential. ALS_EARLY: seen before El Escorial "definite" (refs#src; the seed
# M1/precuneus ratio "flags ALS cases that do not yet meet criteria", refs#gm):
# milder exam and imaging, NfL already raised. Marker values of a phenotype not
# given explicitly are its class's.
PHENOTYPES: dict[str, dict[str, float]] = {
    "ALS": {"ALS": 0.70, "ALS_LMN": 0.15, "ALS_EARLY": 0.15}
}
PARENT: dict[str, str] = {c: c for c in CLASSES} | {
    "ALS_LMN": "ALS",
    "ALS_EARLY": "ALS",
}
UNITS: tuple[str, ...] = tuple(PARENT)  # classes and phenotypes


def per_class(default: float, **overrides: float) -> dict[str, float]:
    """Return ``{class or phenotype: value}``; ``default`` where not overridden.

    A phenotype not overridden takes its class's value.
    """
    unknown = set(overrides) - set(UNITS)
    if unknown:
        raise ValueError(f"unknown classes {sorted(unknown)}; use {UNITS}")
    return {u: overrides.get(u, overrides.get(PARENT[u], default)) for u in UNITS}


# --- cohort make-up --------------------------------------------------------------
# Site sizes and per-site class mix: UE (a neuromuscular centre, a neuroimmunology
# centre, two general centres). MMN is rare (< 1/100,000; refs#src).
SITE_WEIGHTS = {"siteA": 0.30, "siteB": 0.25, "siteC": 0.25, "siteD": 0.20}
SITE_CLASS_MIX = {
    "siteA": per_class(0.05, ALS=0.50, MMN=0.10, HC=0.30),
    "siteB": per_class(0.10, MMN=0.02, NMO=0.30, MS=0.38, HC=0.20),
    "siteC": per_class(0.10, ALS=0.35, MMN=0.05, MS=0.25, HC=0.25),
    "siteD": per_class(0.10, ALS=0.40, MMN=0.06, MS=0.14, HC=0.30),
}
# Age at visit, years (truncated to 18-90): refs#clin ages at onset (ALS ~60-65,
# MMN ~40, NMOSD ~43 +- 16, RRMS ~24-32) plus disease duration; HC recruited
# across the studies (UE).
AGE = {
    "ALS": (62.0, 10.0),
    "MMN": (46.0, 12.0),
    "NMO": (45.0, 14.0),
    "MS": (35.0, 9.0),
    "HC": (55.0, 14.0),
}
AGE_RANGE = (18.0, 90.0)
# P(male): refs#clin (ALS ~58 %; MMN M:F 2.7; NMOSD ~90 % women; RRMS ~2:1
# women); HC UE.
P_MALE = {"ALS": 0.58, "MMN": 2.7 / 3.7, "NMO": 0.10, "MS": 1 / 3, "HC": 0.45}
# log eTIV by sex: UE (bert's 1.52 L is a typical male head).
LOG_ETIV = {"M": (math.log(1.58e6), 0.08), "F": (math.log(1.42e6), 0.08)}

# --- modality availability ---------------------------------------------------------
# P(modality acquired | class) x per-site multiplier, clipped to 1. UE, shaped by
# refs#src: nerve conduction and peripheral MRI mostly in neuromuscular work-ups;
# MRS and QSM only at some sites (refs#mrs and §6 studies were single-site).
AVAILABILITY = {
    "clinical": per_class(0.97),
    "serum": per_class(0.92),
    "freesurfer": per_class(0.90),
    "dti": per_class(0.85),
    "qsm": per_class(1.0),
    "mrs": per_class(1.0),
    "ncs": per_class(0.35, ALS=0.85, MMN=0.95, NMO=0.10, MS=0.08),
    "peripheral_mri": per_class(0.10, ALS=0.35, MMN=0.60, NMO=0.03, MS=0.03),
}
SITE_AVAILABILITY = {
    "dti": {"siteA": 1.0, "siteB": 1.0, "siteC": 1.0, "siteD": 0.0},
    "qsm": {"siteA": 0.0, "siteB": 0.70, "siteC": 0.40, "siteD": 0.0},
    "mrs": {"siteA": 0.60, "siteB": 0.0, "siteC": 0.50, "siteD": 0.0},
}
# Columns of clinical.tsv measured only in some work-ups (UE).
COLUMN_AVAILABILITY = {
    "fvc_pct": per_class(0.35, ALS=0.90, MMN=0.60, HC=0.40),
    "edss": per_class(0.20, NMO=0.95, MS=0.95, ALS=0.15, HC=0.30),
    "t2_lesion_volume_ml": per_class(0.85),
}

# --- scanner / assay offsets per site, added on the modelled scale (UE) ---------------
SITE_OFFSETS = {
    "fa": {"siteA": 0.0, "siteB": 0.012, "siteC": -0.008, "siteD": 0.005},
    "md": {"siteA": 0.0, "siteB": -0.015, "siteC": 0.020, "siteD": 0.0},  # 1e-3 mm2/s
    "logvol": {"siteA": 0.0, "siteB": 0.020, "siteC": -0.015, "siteD": 0.010},
    "thickness": {"siteA": 0.0, "siteB": 0.04, "siteC": -0.03, "siteD": 0.02},
    "qsm": {"siteA": 0.0, "siteB": 4.0, "siteC": -3.0, "siteD": 2.0},
    "mrs": {"siteA": 0.0, "siteB": 0.03, "siteC": -0.04, "siteD": 0.02},
    # NfL is platform-dependent (refs#nfl): sites use different assays.
    "nfl": {"siteA": 0.0, "siteB": 0.10, "siteC": -0.10, "siteD": 0.0},
}


@dataclass(frozen=True)
class Continuous:
    """A Gaussian marker on the modelled scale (see module docstring)."""

    name: str
    modality: str
    log: bool
    mean: dict[str, float]  # natural units at ref_age (the median when log)
    sd: dict[str, float]  # total within-class SD, modelled scale
    loading: dict[str, float] = field(default_factory=lambda: per_class(0.0))
    age_slope: float = 0.0  # per year, modelled scale
    ref_age: dict[str, float] = field(default_factory=lambda: per_class(55.0))
    male: float = 0.0
    site: str | None = None  # key of SITE_OFFSETS
    etiv: float = 0.0  # coefficient on log(eTIV / REF_ETIV)
    group: str | None = None  # residual correlation group (left/right pairs)
    rho: float = 0.0
    source: str = ""

    def mu(self, cls: str) -> float:
        """Class mean on the modelled scale at the reference age."""
        return math.log(self.mean[cls]) if self.log else self.mean[cls]

    def residual_sd(self, cls: str) -> float:
        """Within-class SD not explained by severity."""
        sd, lam = self.sd[cls], self.loading[cls]
        if abs(lam) >= sd:
            raise ValueError(f"{self.name}/{cls}: |loading| {lam} must be < sd {sd}")
        return math.sqrt(sd**2 - lam**2)


NFL_AGE = math.log(1.03)  # NfL rises ~3 %/year of age (refs#nfl heading)
CONTINUOUS: tuple[Continuous, ...] = (
    # Serum (refs#nfl, §2). Classic ALS median 75 at 62 y sits between the Simoa
    # figures (59.7-84, Front Neurol 2020) and the Oxford 218; LMN-dominant ALS 59
    # (Kleinveld 2024, mean 59.4); early ALS 50 (UE); HC 10.1 (Liu 2021); MMN median
    # 16 (mean 20.7 of a right-skewed distribution, Kleinveld 2024; 1/16 above 44,
    # Wohnrade 2024); RRMS 22 (Kuhle 2019 24-31 / Liu 15.8); NMOSD remission 18.0
    # (Liu 2021), attacks (81.7) through the severity loading. SDs from the IQRs.
    Continuous(
        "nfl_pg_ml",
        "serum",
        True,
        mean=per_class(
            10.0, ALS=75.0, ALS_LMN=59.0, ALS_EARLY=50.0, MMN=16.0, NMO=18.0, MS=22.0
        ),
        sd=per_class(0.45, ALS=0.75, MMN=0.50, NMO=0.75, MS=0.60),
        loading=per_class(0.0, ALS=0.55, NMO=0.45, MS=0.35),
        age_slope=NFL_AGE,
        ref_age=per_class(55.0, ALS=62.0, MMN=50.0, NMO=45.0, MS=35.0),
        site="nfl",
        source="refs#nfl; r(NfL, severity) refs#corr",
    ),
    # HC median 40, 2.5-97.5 % 14-155 -> log-SD 0.61, +1.5 ng/mL/year (Bojesen 2011);
    # ALS plasma ~HC (Bombaci 2023; their older age gives the seed AUC ~0.55-0.6);
    # RRMS slightly raised (UE magnitude).
    Continuous(
        "chi3l1_ng_ml",
        "serum",
        True,
        mean=per_class(40.0, ALS=41.0, MS=46.0),
        sd=per_class(0.61),
        age_slope=1.5 / 40.0,
        source="refs#chi3l1",
    ),
    # MRS, SMA voxel (refs#mrs). HC NAA 10, Glu 8, GABA 1.25 (UE ranges); ALS Glu up,
    # NAA down in SMA (Sako 2021), GABA -16 % (Foerster 2012: 1.42 vs 1.70); MS Glx up
    # (Tisell 2013, NAWM; cortical magnitude UE). Cr: UE, no class effect.
    Continuous(
        "mrs_naa",
        "mrs",
        True,
        mean=per_class(10.0, ALS=9.3, ALS_EARLY=9.6, MS=9.7),
        sd=per_class(0.08, ALS=0.095),
        loading=per_class(0.0, ALS=-0.035),
        age_slope=-0.002,  # NAA ~-0.2 %/year of age (UE)
        site="mrs",
        source="refs#mrs; age slope UE",
    ),
    Continuous(
        "mrs_glu",
        "mrs",
        True,
        mean=per_class(8.0, ALS=8.6, ALS_EARLY=8.3, MS=8.5),
        sd=per_class(0.10, ALS=0.11),
        site="mrs",
        source="refs#mrs",
    ),
    Continuous(
        "mrs_gaba",
        "mrs",
        True,
        mean=per_class(1.25, ALS=1.05, ALS_EARLY=1.15),
        sd=per_class(0.18),
        site="mrs",
        source="refs#mrs (Foerster 2012)",
    ),
    Continuous(
        "mrs_cr",
        "mrs",
        True,
        mean=per_class(7.5),
        sd=per_class(0.08),
        site="mrs",
        source="UE",
    ),
    # Clinical continuous: FVC % predicted, ALS 101 (91-111) (Nitert 2022); others UE.
    Continuous(
        "fvc_pct",
        "clinical",
        False,
        mean=per_class(100.0),
        sd=per_class(12.0, ALS=16.0),
        loading=per_class(0.0, ALS=-8.0),
        source="refs#clin; precentral GM tracks FVC refs#corr",
    ),
)


def _tract(
    name: str,
    metric: str,
    mean: dict,
    sd: dict,
    loading: dict | None,
    slope: float,
    source: str,
) -> Continuous:
    return Continuous(
        f"dti_{name}_{metric}",
        "dti",
        False,
        mean=mean,
        sd=sd,
        loading=loading or per_class(0.0),
        age_slope=slope,
        site=metric,
        group=f"{name[:-2]}_{metric}",
        rho=0.6,
        source=source,
    )


_DTI = []
for _side in ("l", "r"):
    # CST (refs#dti): HC FA 0.55 +- 0.04, MD 0.75 (UE); ALS FA 5-10 % lower, MD 3-8 %
    # higher (Foerster 2012 meta, AUC 0.76); RRMS/NMOSD lower when lesioned (UE size).
    _DTI += [
        _tract(
            f"cst_{_side}",
            "fa",
            per_class(
                0.55, ALS=0.515, ALS_LMN=0.54, ALS_EARLY=0.535, MS=0.535, NMO=0.54
            ),
            per_class(0.035, ALS=0.04, MS=0.04, NMO=0.04),
            per_class(0.0, ALS=-0.015, ALS_LMN=-0.005, MS=-0.01),
            -0.001,
            "refs#dti",
        ),
        _tract(
            f"cst_{_side}",
            "md",
            per_class(0.75, ALS=0.79, ALS_LMN=0.76, ALS_EARLY=0.77, MS=0.77, NMO=0.765),
            per_class(0.035, ALS=0.04, MS=0.04, NMO=0.04),
            per_class(0.0, ALS=0.015),
            0.001,
            "refs#dti",
        ),
        # Optic radiation: control tract, affected in MS/NMOSD (refs#dti rows; UE size).
        _tract(
            f"optic_radiation_{_side}",
            "fa",
            per_class(0.50, MS=0.47, NMO=0.475),
            per_class(0.035),
            None,
            -0.001,
            "refs#dti (UE size)",
        ),
        _tract(
            f"optic_radiation_{_side}",
            "md",
            per_class(0.80, MS=0.84, NMO=0.83),
            per_class(0.04),
            None,
            0.001,
            "refs#dti (UE size)",
        ),
    ]

# Axial diffusivity beyond the cylindrical tensor that FA and MD define: the writer
# sets AD = AD_cyl(FA, MD) x exp(excess) and RD = (3 MD - AD) / 2, so AD and RD
# carry information of their own (regional means of FA, MD, AD, RD are not
# functions of each other). ALS: RD rises more than AD (refs#dti: FA lower, MD/RD
# higher; AD findings mixed); sizes UE.
for _tract_name in ("cst_l", "cst_r", "optic_radiation_l", "optic_radiation_r"):
    _cst = _tract_name.startswith("cst")
    _DTI.append(
        Continuous(
            f"dti_{_tract_name}_ad_excess",
            "dti",
            False,
            mean=per_class(0.0, ALS=-0.02, ALS_LMN=-0.005, ALS_EARLY=-0.01)
            if _cst
            else per_class(0.0),
            sd=per_class(0.03),
            loading=per_class(0.0, ALS=-0.01) if _cst else per_class(0.0),
            group=f"{_tract_name[:-2]}_ad_excess",
            rho=0.6,
            source="refs#dti (UE sizes)",
        )
    )

_QSM = []
for _side in ("l", "r"):
    _q = {"modality": "qsm", "log": False, "site": "qsm", "rho": 0.7}
    _QSM += [
        # refs#qsm: HC SN 120-160, NMO higher (Pudlac 2020; size UE).
        Continuous(
            f"qsm_substantia_nigra_{_side}",
            mean=per_class(140.0, NMO=162.0),
            sd=per_class(25.0),
            age_slope=0.5,
            group="qsm_sn",
            source="refs#qsm",
            **_q,
        ),
        # Thalamus: RRMS -7.5 vs HC -1.1 (Zivadinov 2018); NMO ~HC (Pudlac 2020).
        Continuous(
            f"qsm_thalamus_{_side}",
            mean=per_class(-1.1, MS=-7.5),
            sd=per_class(6.0),
            group="qsm_thal",
            source="refs#qsm",
            **_q,
        ),
        # Putamen 50-90 rising with age (Treit 2021); RRMS basal ganglia 62 vs 54.8
        # (Zivadinov 2018); tracks EDSS in RRMS (Pudlac 2020) via the loading.
        Continuous(
            f"qsm_putamen_{_side}",
            mean=per_class(70.0, MS=77.0),
            sd=per_class(15.0, MS=16.0),
            loading=per_class(0.0, MS=6.0),
            age_slope=0.6,
            group="qsm_put",
            source="refs#qsm, §9",
            **_q,
        ),
        Continuous(
            f"qsm_pallidum_{_side}",
            mean=per_class(175.0, MS=182.0),
            sd=per_class(25.0),
            group="qsm_gp",
            source="refs#qsm (UE)",
            **_q,
        ),
        Continuous(
            f"qsm_caudate_{_side}",
            mean=per_class(60.0, MS=66.0),
            sd=per_class(12.0),
            group="qsm_cd",
            source="refs#qsm (UE)",
            **_q,
        ),
        # ALS motor cortex 46 vs 35 (Schweitzer 2015, AUC 0.70).
        Continuous(
            f"qsm_precentral_{_side}",
            mean=per_class(35.0, ALS=46.0, ALS_LMN=38.0, ALS_EARLY=40.0),
            sd=per_class(14.0, ALS=15.0),
            loading=per_class(0.0, ALS=5.0),
            group="qsm_m1",
            source="refs#qsm",
            **_q,
        ),
    ]

# FreeSurfer (refs#gm). Volumes are bert's (FreeSurfer 7.2 sample subject) scaled by
# eTIV; GM loss ~0.3 %/year (UE). ALS precentral 3-8 % lower (Walhout 2015); the SD
# is set so that ~42 % of ALS fall below the HC 10th centile of the
# precentral/precuneus ratio (Sako 2023 operating point, refs#gm).
BERT_VOLUMES = {
    "precentral_l": 14392.0,
    "precentral_r": 14633.0,
    "precuneus_l": 9091.0,
    "precuneus_r": 9961.0,
    "thalamus_l": 8066.3,
    "thalamus_r": 8287.8,
    "caudate_l": 2975.2,
    "caudate_r": 2895.6,
    "putamen_l": 5051.1,
    "putamen_r": 5180.4,
    "pallidum_l": 2123.3,
    "pallidum_r": 2056.0,
    "total_gray": 675696.964762,
}
# Pulvinar (PuA + PuM + PuL + PuI, FreeSurfer 7 thalamic nuclei) of the template run
# in features/simulate/reference/thalamic_nuclei, as bert-scale references.
PULVINAR_VOLUMES = {"pulvinar_l": 2007.367416, "pulvinar_r": 1928.211155}
_FS_EFFECTS = {  # structure prefix: (class mean shifts in log units, sd, loading, rho)
    "precentral": (
        per_class(
            1.0,
            ALS=math.exp(-0.075),
            ALS_LMN=math.exp(-0.02),
            ALS_EARLY=math.exp(-0.045),
            MS=math.exp(-0.015),
        ),
        0.045,
        per_class(0.0, ALS=-0.02),
        0.75,
    ),
    "precuneus": (per_class(1.0, MS=math.exp(-0.02)), 0.045, per_class(0.0), 0.75),
    "thalamus": (
        per_class(1.0, MS=math.exp(-0.07)),
        0.07,
        per_class(0.0, MS=-0.02),
        0.8,
    ),  # RRMS atrophy (Pudlac 2020; size UE)
    "putamen": (per_class(1.0, MS=math.exp(-0.05)), 0.07, per_class(0.0), 0.8),
    # RRMS pulvinar atrophy vs HC and NMO (Pudlac 2020, refs#qsm; size UE)
    "pulvinar": (
        per_class(1.0, MS=math.exp(-0.08)),
        0.08,
        per_class(0.0, MS=-0.02),
        0.8,
    ),
    "caudate": (per_class(1.0, MS=math.exp(-0.03)), 0.08, per_class(0.0), 0.8),
    "pallidum": (per_class(1.0), 0.08, per_class(0.0), 0.8),
    "total_gray": (
        per_class(1.0, ALS=math.exp(-0.01), MS=math.exp(-0.03)),
        0.05,
        per_class(0.0, ALS=-0.01),
        0.0,
    ),
}
_FS = []
for _key, _ref in {**BERT_VOLUMES, **PULVINAR_VOLUMES}.items():
    _prefix = _key.rsplit("_", 1)[0] if _key != "total_gray" else "total_gray"
    _shift, _sd, _lam, _rho = _FS_EFFECTS[_prefix]
    _FS.append(
        Continuous(
            f"fs_{_key}_mm3",
            "freesurfer",
            True,
            mean={u: _ref * _shift[u] for u in UNITS},
            sd=per_class(_sd),
            loading=_lam,
            age_slope=-0.003,
            site="logvol",
            etiv=1.0,
            group=None if _rho == 0 else f"fs_{_prefix}",
            rho=_rho,
            source="refs#gm",
        )
    )
for _side, _bert in (("l", 2.60273), ("r", 2.59422)):
    # Mean thickness ~2.5 +- 0.15 mm (UE); reduced in ALS, not in mimics (Walhout).
    _FS.append(
        Continuous(
            f"fs_mean_thickness_{_side}_mm",
            "freesurfer",
            False,
            mean=per_class(2.50, ALS=2.46, ALS_LMN=2.49, ALS_EARLY=2.48, MS=2.45),
            sd=per_class(0.12),
            loading=per_class(0.0, ALS=-0.02),
            age_slope=-0.004,
            site="thickness",
            group="fs_thickness",
            rho=0.85,
            source="refs#gm",
        )
    )
CONTINUOUS = CONTINUOUS + tuple(_DTI) + tuple(_QSM) + tuple(_FS)


@dataclass(frozen=True)
class Ordinal:
    """A bounded clinical scale: a latent Gaussian rounded to ``step`` and clipped."""

    name: str
    lo: float
    hi: float
    step: float
    mean: dict[str, float]
    sd: dict[str, float]
    loading: dict[str, float]
    source: str


ORDINALS: tuple[Ordinal, ...] = (
    # ALSFRS-R: ALS first visit median 41 (38-44) (Nitert 2022); MMN 44-47; others
    # near 48 (UE); r(NfL, ALSFRS-R) ~ -0.31 (refs#corr) through the loading.
    # Research controls are older adults: some lose a point or two (UE).
    Ordinal(
        "alsfrs_r",
        0,
        48,
        1,
        per_class(46.5, ALS=41.0, ALS_EARLY=45.5, MMN=45.0, NMO=45.0, HC=48.0),
        per_class(2.0, ALS=4.8, ALS_EARLY=1.8, NMO=3.0, HC=1.2),
        per_class(0.0, ALS=-3.5, ALS_EARLY=-0.8, MMN=-1.0, NMO=-1.0),
        "refs#clin",
    ),
    # MRC sum: HC 60; ALS ~50 +- 7; MMN ~54 +- 4; MS/NMO ~57 +- 3 (UE, refs#clin).
    Ordinal(
        "mrc_sum",
        0,
        60,
        1,
        per_class(57.0, ALS=50.0, ALS_EARLY=57.0, MMN=54.0, HC=60.0),
        per_class(3.0, ALS=7.0, ALS_EARLY=2.5, MMN=4.0, HC=1.0),
        per_class(0.0, ALS=-5.0, ALS_EARLY=-1.5, MMN=-1.5),
        "refs#clin (UE)",
    ),
    # Penn UMN: ALS median ~8 (3-14), LMN-dominant ALS near 0 (Kleinveld 2024);
    # MMN 0 (exclusion criterion); MS/NMO 2-6; HC 0, brisk reflexes in some (UE).
    Ordinal(
        "penn_umn",
        0,
        32,
        1,
        per_class(4.0, ALS=8.5, ALS_LMN=-1.5, ALS_EARLY=2.0, MMN=-3.0, HC=-0.5),
        per_class(3.0, ALS=6.5, ALS_LMN=2.0, ALS_EARLY=2.5, MMN=1.0, NMO=3.5, HC=1.5),
        per_class(0.0, ALS=4.0, ALS_LMN=0.5, ALS_EARLY=1.0),
        "refs#clin (UE)",
    ),
    # EDSS: RRMS 1.9 +- 0.9; NMOSD AQP4+ median 3.5 (refs#clin); ALS/MMN UE; HC 0.
    Ordinal(
        "edss",
        0,
        10,
        0.5,
        per_class(3.0, MMN=2.0, NMO=3.5, MS=1.9, HC=-0.5),
        per_class(1.5, MMN=1.0, NMO=1.6, MS=0.9, HC=0.5),
        per_class(0.0, NMO=0.9, MS=0.5),
        "refs#clin, §9",
    ),
)


@dataclass(frozen=True)
class Binary:
    """A positive/negative finding independent of severity given the class."""

    name: str
    table: str
    p: dict[str, float]
    source: str


BINARIES: tuple[Binary, ...] = (
    Binary(
        "anti_gm1_igm",
        "serum",
        per_class(0.10, ALS=0.19, MMN=0.50, HC=0.05),
        "refs#ncs (JNNP 2014); HC UE",
    ),
    Binary(
        "aqp4_igg",
        "serum",
        per_class(0.0, NMO=0.73),
        "refs#ncs (Jarius 2012; Waters 2012)",
    ),
    Binary(
        "oligoclonal_bands",
        "serum",
        per_class(0.03, MS=0.90, NMO=0.13),
        "refs#ncs (Dobson 2013)",
    ),
    Binary(
        "lmn_signs",
        "clinical",
        per_class(0.10, ALS=0.85, MMN=0.95, HC=0.05),
        "UE (refs#src: ALS needs LMN signs; MMN is pure LMN)",
    ),
)

# Months since onset, log-normal (median, log-SD): ALS ~1 year diagnostic delay
# (refs#src, Nitert 2022); MMN slowly progressive over years; MS/NMO UE. HC: none.
P_ONSET_RECORDED = 0.9  # onset date/region recorded for a patient (UE)
MONTHS_SINCE_ONSET = {
    "ALS": (12.0, 0.6),
    "MMN": (72.0, 0.8),
    "NMO": (48.0, 1.0),
    "MS": (60.0, 0.9),
}
# Onset region of motor symptoms (ALS ~30 % bulbar, Logroscino 2010 [UE split of
# limbs]; MMN upper-limb predominant, no marked bulbar involvement: EFNS/PNS).
ONSET_REGION = {
    "ALS": {"bulbar": 0.30, "upper_limb": 0.40, "lower_limb": 0.30},
    "MMN": {"bulbar": 0.0, "upper_limb": 0.85, "lower_limb": 0.15},
}
# T2 lesion volume, mL: zero-inflated log-normal (P(0), median, log-SD, loading).
# RRMS 10 +- 11 mL (-> median 6.7, log-SD 0.89); NMOSD brain lesions in ~51 %,
# small; ALS/MMN/HC ~0-2 mL (refs#clin). r(NfL, lesions) ~0.6 in MS (refs#corr).
LESIONS = {
    "ALS": (0.60, 0.5, 0.8, 0.0),
    "MMN": (0.60, 0.5, 0.8, 0.0),
    "NMO": (0.49, 1.0, 0.9, 0.0),
    "MS": (0.02, 6.7, 0.89, 0.5),
    "HC": (0.65, 0.5, 0.8, 0.0),
}

# --- nerve conduction (refs#ncs) ----------------------------------------------------
MOTOR_NERVES = {  # nerve: (distal site, proximal site, normal CMAP mV, upper limb)
    # Normal distal CMAP: median/APB ~8-10 +- 3 mV (refs#ncs); others UE. Proximal sites
    # avoid the common entrapment sites (ulnar elbow, peroneal fibular head).
    "median": ("wrist", "elbow", 9.0, True),
    "ulnar": ("wrist", "below_elbow", 9.0, True),
    "peroneal": ("ankle", "below_knee", 5.0, False),
    "tibial": ("ankle", "popliteal_fossa", 12.0, False),
}
# Log shift of distal CMAP per class and nerve: ALS reduced in 30-54 % of nerves,
# split hand APB/ADM 0.44 vs 0.99 (refs#ncs); MMN upper-limb predominant (UE size).
CMAP_SHIFT = {
    "ALS": {"median": -0.80, "ulnar": -0.20, "peroneal": -0.45, "tibial": -0.35},
    "ALS_EARLY": {"median": -0.40, "ulnar": -0.10, "peroneal": -0.20, "tibial": -0.15},
    "MMN": {"median": -0.35, "ulnar": -0.35, "peroneal": -0.15, "tibial": -0.10},
}


def cmap_shift(unit: str, nerve: str) -> float:
    """Log shift of the distal CMAP of ``nerve`` for a class or phenotype."""
    shifts = CMAP_SHIFT.get(unit, CMAP_SHIFT.get(PARENT[unit], {}))
    return shifts.get(nerve, 0.0)


CMAP_SD = per_class(0.30, ALS=0.55, MMN=0.50)  # log-SD; HC ~+-3 mV at 9 (refs#ncs)
CMAP_LOADING = per_class(0.0, ALS=-0.20, MMN=-0.10)  # CMAP tracks severity (refs#corr)
# Conduction block per motor nerve: MMN definite/probable in 47-61 % of patients
# (refs#ncs: JNNP 2002; Doneddu 2024) -> P(>= 1 of 8 nerves) ~0.60 with these per-nerve
# rates; ALS, NMO, MS, HC ~0-3 % (UE) -> 0.25 % per nerve (~2 % per subject).
CB_RATE = {"MMN": {True: 0.17, False: 0.04}}
CB_RATE_OTHER = 0.0025
CB_RATIO_BLOCK = (4.0, 6.0)  # Beta: proximal/distal amplitude, mean 0.40 (UE)
CB_RATIO_NORMAL = (46.0, 4.0)  # Beta: mean 0.92, SD 0.04 (UE dispersion)
# Motor conduction velocity, m/s (mean, sd) for (upper, lower) limb: ALS ~normal
# (53.4 vs 52.9, Felice 1998); MMN demyelinating-range slowing in ~30 % (UE).
CV_NORMAL = {True: (55.0, 4.0), False: (47.0, 4.0)}
CV_ALS_SHIFT = -1.5
CV_SLOW = {True: (36.0, 5.0), False: (30.0, 4.0)}
P_CV_SLOW = per_class(0.0, MMN=0.30)
# Minimal F-wave latency, median and ulnar: HC 25.4 +- 2.4 ms (Muscle Nerve 2024);
# ALS and MMN prolongation UE.
F_WAVE = {
    "ALS": (27.0, 3.0),
    "MMN": (29.0, 4.0),
    "NMO": (25.5, 2.4),
    "MS": (25.5, 2.4),
    "HC": (25.4, 2.4),
}
# Class-independent (and so not informative): distal latency (UE), SNAP amplitudes
# (sensory NCS abnormal ALS 0-3 %, MMN 0 %, HC ~2.5 %: near-equal, refs#ncs).
DISTAL_LATENCY = {
    "median": (3.6, 0.4),
    "ulnar": (2.8, 0.3),
    "peroneal": (4.5, 0.6),
    "tibial": (4.2, 0.6),
}
SENSORY_NERVES = {
    "median_sensory": ("digit_ii", 30.0, 0.35, 55.0),
    "sural": ("calf", 15.0, 0.40, 48.0),
}  # site, uV, log-SD, CV (UE)

# --- peripheral nerve / muscle MRI (refs#clin; Staff, Muscle Nerve 2015) --------------
# Nerve changes ALS 58 % / MMN 63 %; muscle changes 57 % / 33 %; no atrophy in MMN.
# Others, asymmetry and atrophy fractions: UE.
PMRI_NERVE = per_class(0.05, ALS=0.58, MMN=0.63)
PMRI_NERVE_ONE_SIDE = per_class(0.5, ALS=0.3, MMN=0.7)
PMRI_MUSCLE = per_class(0.05, ALS=0.57, MMN=0.33)
PMRI_MUSCLE_ONE_SIDE = per_class(0.5, ALS=0.3, MMN=0.6)
PMRI_ATROPHY = per_class(0.3, ALS=0.5, MMN=0.0)
PMRI_THICKENING = 0.6  # given an abnormal nerve side, any class (UE)
