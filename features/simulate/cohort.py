"""Write a simulated cohort directory in the real file formats.

`simulate_cohort` draws subjects from the generative model (`generative.sample`),
computes each one's Bayes-optimal posterior (`oracle.posterior`), and writes the
cohort exactly as `docs/cohort-format.md` describes: TSV tables, FreeSurfer stats
files, LCModel tables and NIfTI maps on the MNI152 2 mm grid, plus the ground truth
in ``simulation/``. Values the generative model draws independently of the class
(the FreeSurfer regions outside the model, distal latencies, SNAPs, voxel noise)
are drawn here from a per-subject random stream, so output is deterministic.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from features.cohort.participants import subject_key
from features.imaging.atlas import Atlas, load_atlas
from features.imaging.freesurfer import (
    PULVINAR_NUCLEI,
    read_aparc_stats,
    read_aseg_stats,
)
from features.simulate import fmri as sim_fmri
from features.simulate import generative, longitudinal, oracle, spec, writers

SPACE = "space-MNI152NLin2009cAsym_res-2"
_REFERENCE = Path(__file__).parent / "reference" / "bert"
SIMULATED_NOTICE = (
    "SIMULATED COHORT: every value in this directory was drawn from a generative "
    "model calibrated to published figures (docs/references.md). No real patient "
    "data. Do not use for clinical decisions."
)


def model_version() -> str:
    """Hash of the generative model's code; a cached cohort is reused only if equal."""
    digest = hashlib.sha256()
    for name in (
        "spec.py", "generative.py", "oracle.py", "cohort.py", "writers.py",
        "longitudinal.py", "fmri.py",
    ):  # fmt: skip
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:12]


def simulate_cohort(
    out: Path,
    n: int = 400,
    seed: int = 0,
    *,
    overwrite: bool = False,
    n_jobs: int = -1,
    sessions: int = 1,
    interval_months: float = 6.0,
    bold: bool = False,
) -> Path:
    """Write a simulated cohort of ``n`` subjects to ``out``.

    Parameters
    ----------
    out : Path
        Cohort directory to create. It must not exist unless ``overwrite``.
    n, seed : int
        Number of subjects and the random seed (same seed, same files).
    overwrite : bool
        Replace an existing directory.
    n_jobs : int
        Processes used to write the per-subject files (joblib convention).
    sessions, interval_months : int, float
        Visits planned per subject (baseline included) and the months between
        them. With ``sessions`` > 1 every subject is followed up as
        `longitudinal.follow_up` describes, with dropout, and the cohort has
        ``ses-<label>`` visits and ``sessions.tsv``.
    bold : bool
        Also write fMRIPrep-style 4D BOLD (8 mm grid, about 150 kB a visit) for
        the visits with rs-fMRI, beside their XCP-D outputs: the input of group
        ICA (``[ica]`` in analysis plans).

    Returns
    -------
    Path
        ``out``. The directory appears atomically: it is built beside ``out`` and
        renamed into place when complete.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"{out} already exists; pass overwrite=True (--overwrite) to replace it "
            "or choose another --out directory."
        )
    if n < 10:
        raise ValueError(f"n = {n}: simulate at least 10 subjects.")
    obs = generative.sample(n, seed)
    obs.insert(0, "participant_id", [f"sub-{i + 1:04d}" for i in range(n)])
    post = oracle.posterior(obs)
    visits, course = obs, None
    if sessions > 1:
        visits, course = longitudinal.follow_up(obs, sessions, interval_months, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Absolute: joblib may reuse worker processes started in another directory.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent.absolute()))
    try:
        _write_tables(visits, tmp)
        atlas = load_atlas()
        Parallel(n_jobs=n_jobs)(
            delayed(_write_subject)(row, tmp, atlas, seed, bold)
            for row in _rows(visits)
        )
        _write_truth(obs, post, tmp, n, seed)
        if course is not None:
            _tsv(course, tmp / "simulation" / "trajectories.tsv")
            _tsv(visits, tmp / "simulation" / "observed_visits.tsv")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _rows(obs: pd.DataFrame) -> list[dict]:
    return obs.to_dict(orient="records")


def _tsv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, sep="\t", index=False, na_rep="", float_format="%.10g")


def _posneg(x: pd.Series, yes: str = "positive", no: str = "negative") -> pd.Series:
    return x.map({1.0: yes, 0.0: no})


def _keys(frame: pd.DataFrame) -> list[str]:
    """The key columns of a table: participant_id, and session with visits."""
    return ["participant_id"] + (["session"] if "session" in frame else [])


def _visit_index(r: dict) -> int:
    """0 for the baseline (or a cohort without sessions), k for the k-th follow-up."""
    return int(r["session"][4:]) - 1 if "session" in r else 0


def _write_tables(obs: pd.DataFrame, root: Path) -> None:
    keys = _keys(obs)
    _tsv(obs[[*keys, "diagnosis", "age", "sex", "site"]], root / "participants.tsv")
    if "session" in obs:
        _tsv(obs[[*keys, "months_since_baseline"]], root / "sessions.tsv")
    clin = obs[obs["avail_clinical"]]
    clinical = pd.DataFrame(
        {
            **{k: clin[k] for k in keys},
            "alsfrs_r": clin["alsfrs_r"].astype("Int64"),
            "months_since_onset": clin["months_since_onset"],
            "onset_region": clin["onset_region"],
            "mrc_sum": clin["mrc_sum"].astype("Int64"),
            "fvc_pct": clin["fvc_pct"],
            "penn_umn": clin["penn_umn"].astype("Int64"),
            "edss": clin["edss"],
            "umn_signs": np.where(clin["penn_umn"] > 0, "yes", "no"),
            "lmn_signs": _posneg(clin["lmn_signs"], "yes", "no"),
            "t2_lesion_volume_ml": clin["t2_lesion_volume_ml"],
        }
    )
    _tsv(clinical, root / "clinical.tsv")
    ser = obs[obs["avail_serum"]]
    serum = pd.DataFrame(
        {
            **{k: ser[k] for k in keys},
            "nfl_pg_ml": ser["nfl_pg_ml"],
            "chi3l1_ng_ml": ser["chi3l1_ng_ml"],
        }
    )
    for b in ("anti_gm1_igm", "aqp4_igg", "oligoclonal_bands"):
        serum[b] = _posneg(ser[b])
    _tsv(serum, root / "serum.tsv")
    _tsv(_ncs_long(obs[obs["avail_ncs"]]), root / "nerve_conduction.tsv")
    pm = obs[obs["avail_peripheral_mri"]]
    rows = [
        {
            **{k: r[k] for k in keys},
            "side": side,
            "plexus_t2_hyperintensity": int(r[f"pmri_nerve_{side}"]),
            "nerve_thickening": int(r[f"pmri_thickening_{side}"]),
            "muscle_oedema": int(r[f"pmri_muscle_{side}"]),
            "muscle_atrophy": int(r[f"pmri_atrophy_{side}"]),
        }
        for r in _rows(pm)
        for side in generative.SIDES
    ]
    _tsv(
        pd.DataFrame(
            rows,
            columns=[
                *keys,
                "side",
                "plexus_t2_hyperintensity",
                "nerve_thickening",
                "muscle_oedema",
                "muscle_atrophy",
            ],
        ),
        root / "peripheral_mri.tsv",
    )


def _ncs_long(ncs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in _rows(ncs):
        k = _visit_index(r)
        rng = np.random.default_rng([int(r["participant_id"][4:]), 7, *[k] * (k > 0)])
        ids = {c: r[c] for c in _keys(ncs)}
        for nerve, (distal, proximal, _, upper) in spec.MOTOR_NERVES.items():
            lat_m, lat_s = spec.DISTAL_LATENCY[nerve]
            for side in generative.SIDES:
                key = f"ncs_{nerve}_{side}"
                duration = rng.normal(5.5, 0.5)  # CMAP duration, ms (UE)
                # Proximal duration increase (temporal dispersion): median 8 %,
                # > 30 % in ~9 % of nerves, drawn independently of the class (UE),
                # so the area falls less than the amplitude when it is dispersed.
                spread = min(0.08 * np.exp(rng.normal(0.0, 1.0)), 1.0)  # <= +100 %
                amp, prox = r[f"{key}_amp"], r[f"{key}_prox_amp"]
                area_ratio = prox / amp * (1 + spread) * np.exp(rng.normal(0.0, 0.04))
                rows.append(
                    {
                        **ids,
                        "nerve": nerve,
                        "side": side,
                        "stimulation_site": distal,
                        "cmap_amplitude_mv": amp,
                        "cmap_area_mvms": round(amp * duration, 2),
                        "cmap_duration_ms": round(duration, 2),
                        "distal_latency_ms": round(rng.normal(lat_m, lat_s), 2),
                        "f_wave_latency_ms": r.get(f"{key}_fwave") if upper else np.nan,
                    }
                )
                rows.append(
                    {
                        **ids,
                        "nerve": nerve,
                        "side": side,
                        "stimulation_site": proximal,
                        "cmap_amplitude_mv": prox,
                        "cmap_area_mvms": round(amp * duration * area_ratio, 2),
                        "cmap_duration_ms": round(duration * (1 + spread), 2),
                        "conduction_velocity_m_s": r[f"{key}_cv"],
                    }
                )
        for nerve, (site, median, log_sd, cv) in spec.SENSORY_NERVES.items():
            for side in generative.SIDES:
                rows.append(
                    {
                        **ids,
                        "nerve": nerve,
                        "side": side,
                        "stimulation_site": site,
                        "snap_amplitude_uv": round(
                            median * np.exp(rng.normal(0, log_sd)), 1
                        ),
                        "conduction_velocity_m_s": round(rng.normal(cv, 4.0), 1),
                    }
                )
    columns = [
        *_keys(ncs),
        "nerve",
        "side",
        "stimulation_site",
        "cmap_amplitude_mv",
        "cmap_area_mvms",
        "cmap_duration_ms",
        "distal_latency_ms",
        "conduction_velocity_m_s",
        "f_wave_latency_ms",
        "snap_amplitude_uv",
    ]
    return pd.DataFrame(rows, columns=columns)


def _write_subject(
    r: dict, root: Path, atlas: Atlas, seed: int, bold: bool = False
) -> None:
    k = _visit_index(r)
    pid = subject_key(r["participant_id"], r.get("session", ""))
    rng = np.random.default_rng([seed, int(r["participant_id"][4:]), *[k] * (k > 0)])
    r = {**r, "subject": pid}  # the file prefix: sub-X, or sub-X_ses-Y with visits
    if r["avail_freesurfer"]:
        _write_freesurfer(r, root / "derivatives" / "freesurfer" / pid / "stats", rng)
    if sim_fmri.has_fmri(r):
        sim_fmri.write_xcpd(r, root, seed, k)
        if bold:
            sim_fmri.write_fmriprep(r, root, seed, k)
    if r["avail_mrs"]:
        path = root / "derivatives" / "lcmodel" / pid / f"{pid}_voi-SMA_lcmodel.table"
        _write_lcmodel(r, path, rng)
    if r["avail_dti"]:
        _write_dti(r, root / "derivatives" / "dti" / pid, atlas, rng)
    if r["avail_qsm"]:
        values = {k: r[f"qsm_{k}"] for k in atlas.regions if f"qsm_{k}" in r}
        img = _paint(
            atlas, values, baseline=_baseline(atlas, "QSM"), noise=8.0, rng=rng
        )
        _save(img, root / "derivatives" / "qsm" / pid / f"{pid}_{SPACE}_Chimap.nii.gz")


@functools.cache
def _reference(name: str):
    """bert's stats file ``name``, parsed once per process (callers do not mutate)."""
    path = _REFERENCE / name
    return read_aseg_stats(path) if name == "aseg.stats" else read_aparc_stats(path)


def _write_freesurfer(r: dict, stats: Path, rng: np.random.Generator) -> None:
    stats.mkdir(parents=True, exist_ok=True)
    scale = r["etiv"] / spec.REF_ETIV
    aseg = _reference("aseg.stats")
    volumes = {
        k: v * scale * np.exp(rng.normal(0, 0.06)) for k, v in aseg.volumes.items()
    }
    for side, hemi in (("l", "Left"), ("r", "Right")):
        for s in ("thalamus", "caudate", "putamen", "pallidum"):
            volumes[f"{hemi}-{s.capitalize()}"] = r[f"fs_{s}_{side}_mm3"]
    measures = {k: v * scale for k, v in aseg.measures.items() if k.endswith("Vol")}
    measures.update({"eTIV": r["etiv"], "TotalGrayVol": r["fs_total_gray_mm3"]})
    writers.write_aseg_stats(stats / "aseg.stats", volumes, measures, r["subject"])
    for side, hemi in (("l", "lh"), ("r", "rh")):
        ref = _reference(f"{hemi}.aparc.stats")
        regions = ref.regions.copy()
        noise = np.exp(rng.normal(0, 0.06, len(regions)))
        regions["GrayVol"] = np.round(regions["GrayVol"] * scale * noise)
        thick = r[f"fs_mean_thickness_{side}_mm"]
        regions["ThickAvg"] = np.round(
            regions["ThickAvg"]
            * thick
            / ref.measures["MeanThickness"]
            * np.exp(rng.normal(0, 0.03, len(regions))),
            3,
        )
        regions.loc["precentral", "GrayVol"] = r[f"fs_precentral_{side}_mm3"]
        regions.loc["precuneus", "GrayVol"] = r[f"fs_precuneus_{side}_mm3"]
        measures = {**ref.measures, "MeanThickness": thick, "eTIV": r["etiv"]}
        writers.write_aparc_stats(
            stats / f"{hemi}.aparc.stats", hemi, regions, measures, r["subject"]
        )
        _write_thalamic_nuclei(r, side, hemi, stats)


def _write_thalamic_nuclei(r: dict, side: str, hemi: str, stats: Path) -> None:
    """``thalamic-nuclei.<hemi>.v13.T1.stats`` as segmentThalamicNuclei.sh writes it:
    the template's nuclei, pulvinar nuclei scaled to the subject's pulvinar and the
    others to its thalamus, ``Whole_thalamus`` their sum."""
    template = (
        _REFERENCE.parent / "thalamic_nuclei" / f"thalamic-nuclei.{hemi}.v13.T1.stats"
    )
    lines = template.read_text().splitlines()
    rows = [ln.split() for ln in lines[1:]]
    volume = {row[4]: float(row[3]) for row in rows}
    pulvinar = sum(volume[n] for n in PULVINAR_NUCLEI)
    out = [lines[0]]
    total = 0.0
    for index, seg, voxels, _, name in rows:
        if name == "Whole_thalamus":
            value = total
        elif name in PULVINAR_NUCLEI:
            value = volume[name] * r[f"fs_pulvinar_{side}_mm3"] / pulvinar
        else:
            value = (
                volume[name] * r[f"fs_thalamus_{side}_mm3"] / volume["Whole_thalamus"]
            )
        total += value if name != "Whole_thalamus" else 0.0
        out.append(f"{index} {seg}  {voxels} {value:.6f} {name}")
    (stats / template.name).write_text("\n".join(out) + "\n")


def _write_lcmodel(r: dict, path: Path, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cr = r["mrs_cr"]
    naag = 1.2 * np.exp(rng.normal(0, 0.1))  # UE, class-independent
    gln = 2.5 * np.exp(rng.normal(0, 0.15))
    conc = {
        "NAA": (r["mrs_naa"], r["mrs_naa_sd_pct"]),
        "NAAG": (naag, 25.0),
        "Glu": (r["mrs_glu"], r["mrs_glu_sd_pct"]),
        "Gln": (gln, 18.0),
        "GABA": (r["mrs_gaba"], r["mrs_gaba_sd_pct"]),
        "Cr": (0.55 * cr, 8.0),
        "PCr": (0.45 * cr, 9.0),
        "GPC+PCh": (2.0 * np.exp(rng.normal(0, 0.1)), 5.0),
        "Ins": (6.0 * np.exp(rng.normal(0, 0.1)), 6.0),
        "NAA+NAAG": (r["mrs_naa"] + naag, r["mrs_naa_sd_pct"]),
        "Cr+PCr": (cr, r["mrs_cr_sd_pct"]),
        "Glu+Gln": (r["mrs_glu"] + gln, 7.0),
    }
    frame = pd.DataFrame(conc, index=["conc", "sd_pct"]).T
    writers.write_lcmodel_table(
        path,
        frame,
        fwhm_ppm=round(rng.uniform(0.03, 0.07), 3),
        snr=float(round(rng.uniform(12, 35))),
        title=f"{r['subject']} SMA PRESS TE=30 (SIMULATED)",
    )


_DTI_NOISE = {"FA": 0.05, "MD": 0.03e-3, "AD": 0.04e-3, "RD": 0.03e-3}


def _write_dti(r: dict, folder: Path, atlas: Atlas, rng: np.random.Generator) -> None:
    values: dict[str, dict[str, float]] = {m: {} for m in _DTI_NOISE}
    tracts = ("cst_l", "cst_r", "optic_radiation_l", "optic_radiation_r")
    extra = {"callosal_body": (0.62 + rng.normal(0, 0.03), 0.80 + rng.normal(0, 0.04))}
    for key, (fa, md) in {
        **{t: (r[f"dti_{t}_fa"], r[f"dti_{t}_md"]) for t in tracts},
        **extra,
    }.items():
        # AD beyond the cylindrical tensor (spec: dti_<tract>_ad_excess); RD keeps
        # MD = (AD + 2 RD) / 3 exact.
        ad = axial_radial(fa, md * 1e-3)[0] * np.exp(r.get(f"dti_{key}_ad_excess", 0))
        values["FA"][key], values["MD"][key] = fa, md * 1e-3
        values["AD"][key], values["RD"][key] = ad, (3 * md * 1e-3 - ad) / 2
    for m, noise in _DTI_NOISE.items():
        img = _paint(
            atlas, values[m], baseline=_baseline(atlas, m), noise=noise, rng=rng
        )
        _save(img, folder / f"{r['subject']}_{SPACE}_{m}.nii.gz")


def axial_radial(fa: float, md: float) -> tuple[float, float]:
    """Axial and radial diffusivity of a cylindrical tensor with ``fa`` and ``md``."""
    a, c = 2 * fa**2 - 1, fa**2 - 1  # (2F^2-1) r^2 + 2 r + (F^2-1) = 0, r = RD/AD
    ratio = -c / 2 if abs(a) < 1e-12 else (-2 + np.sqrt(4 - 4 * a * c)) / (2 * a)
    ad = 3 * md / (1 + 2 * ratio)
    return float(ad), float(ratio * ad)


_BASELINES: dict[int, dict[str, np.ndarray]] = {}


def _baseline(atlas: Atlas, kind: str) -> np.ndarray:
    """Template-derived background of a map kind (FA/MD/AD/RD/QSM), once per atlas."""
    cached = _BASELINES.get(id(atlas))
    if cached is None:
        t = np.asarray(atlas.template_img.dataobj, dtype=np.float32)
        mask = np.asarray(atlas.brain_mask_img.dataobj) > 0
        t = np.where(mask, np.round(t / t.max() * 32) / 32, 0.0)  # 32 grey levels
        dti = {
            "FA": 0.10 + 0.40 * t,
            "MD": (1.0 - 0.3 * t) * 1e-3,
            "AD": (1.3 - 0.2 * t) * 1e-3,
            "RD": (0.85 - 0.35 * t) * 1e-3,
        }
        cached = {k: np.where(t > 0, v, 0.0).astype(np.float32) for k, v in dti.items()}
        cached["QSM"] = (np.round(t * 4) / 4 * 10.0).astype(np.float32)
        _BASELINES.clear()  # one atlas per process in practice
        _BASELINES[id(atlas)] = cached
    return cached[kind]


def _paint(
    atlas: Atlas,
    values: dict[str, float],
    baseline: np.ndarray,
    noise: float,
    rng: np.random.Generator,
) -> nib.Nifti1Image:
    """Baseline image with each region set to its value plus zero-mean voxel noise."""
    labels = np.asarray(atlas.labels_img.dataobj)
    data = baseline.copy()
    for key, value in values.items():
        idx = np.flatnonzero(labels == atlas.regions[key])
        # Zero-mean noise on a 1/16-SD grid: the region mean equals the value to
        # within ~1e-4 SD, and the few distinct voxel values compress well.
        eps = np.round(rng.normal(0.0, 16.0, idx.size))
        data.flat[idx] = value + (eps - eps.mean()) * noise / 16.0
    img = nib.Nifti1Image(data.astype(np.float32), atlas.labels_img.affine)
    img.header.set_xyzt_units("mm")
    return img


def _save(img: nib.Nifti1Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)


def _write_truth(
    obs: pd.DataFrame, post: pd.DataFrame, root: Path, n: int, seed: int
) -> None:
    folder = root / "simulation"
    folder.mkdir()
    ids = obs[["participant_id", "diagnosis", "phenotype", "severity"]]
    truth = pd.concat([ids, post], axis=1)
    _tsv(truth, folder / "truth.tsv")
    _tsv(obs, folder / "observed_values.tsv")
    meta = {
        "notice": SIMULATED_NOTICE,
        "n": n,
        "seed": seed,
        "model_version": model_version(),
        "classes": list(spec.CLASSES),
        "sites": list(spec.SITES),
        "phenotypes": spec.PHENOTYPES,
        "truth_columns": {
            "diagnosis": "the class the subject was drawn from",
            "phenotype": "the phenotype within the class (e.g. ALS_LMN)",
            "severity": "latent disease severity s ~ N(0, 1)",
            "p_<CLASS>": "Bayes-optimal posterior given every value in the cohort's "
            "files except the patient-only history columns (months_since_onset, "
            "onset_region), which the default model does not use either",
        },
    }
    (folder / "generative_model.json").write_text(json.dumps(meta, indent=2))
    (root / "README.txt").write_text(SIMULATED_NOTICE + "\n")
