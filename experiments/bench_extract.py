"""Throughput of the NIfTI map features beside loading alone and a nilearn masker.

Usage: ``python experiments/bench_extract.py [--n 60] [--repeats 3] [--n-jobs -1]``.

Simulates a cohort once (cached under ``outputs/bench/extract-cohort-n<N>``; DTI is
acquired at 3 of 4 sites, QSM at 2), then times, on the same DTI and QSM files and
with the same joblib process pool over subjects:

(a) load only: ``nib.load`` + ``np.asarray(img.dataobj, np.float32)`` of every map;
(a') load only the way ``features.imaging.region_stats`` reads a ``.nii.gz``: the whole
file
    decompressed in one call, then ``Nifti1Image.from_bytes`` (shows what (b) adds
    beyond reading);
(b) our extraction: ``dti_features`` + ``qsm_features`` (value checks, region means
    and QC), the atlas loaded once before timing and passed to each task as
    ``features.extract`` does (joblib pickles it, ~8 MB, with every batch);
(b') the same, but each worker process gets the atlas once from the memoized
    ``load_atlas()`` (what the lead could do in ``features.extract``);
(c) nilearn: a new ``NiftiLabelsMasker(labels_img=atlas.labels_img)`` per image,
    ``fit_transform(path)``.

Each stage runs ``--repeats`` times (interleaved, so drifts in machine load hit all
three alike); the best time counts. Goal: (b)/(a) throughput >= 0.8.

Resting-state BOLD (``--bold N``, default 8): N simulated fMRIPrep 4D BOLD files
(4 mm MNI grid, 180 volumes, int16 ``.nii.gz``, with confounds) are timed the same
way: (d) load only (``nib.load`` + float32 array), (e)
``features.fmri.smn.fmri_features``
(find the files, resample the SMN atlas to the grid, nilearn ``NiftiLabelsMasker``
with detrending, motion regression and censoring, connectivity and fALFF). Goal:
(e)/(d) throughput >= 0.8.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import joblib
import nibabel as nib
import nilearn
import numpy as np
from joblib import Parallel, delayed

from features.cohort.participants import CohortPaths, read_participants, subject_key
from features.imaging.atlas import Atlas, load_atlas
from features.imaging.region_features import (
    DTI_MAPS,
    DTI_REGIONS,
    dti_features,
    qsm_features,
)
from features.simulate import fmri as sim_fmri
from features.simulate.cohort import simulate_cohort

Subject = tuple[dict[str, Path], Path | None]  # existing DTI maps, QSM map or None


def _subjects(cohort: Path) -> list[Subject]:
    """The DTI and QSM files of every subject that has at least one of them."""
    out = []
    for pid, session in read_participants(cohort).index:
        paths = CohortPaths(cohort, subject_key(pid, session))
        dti = {m: paths.dti_map(m) for m in DTI_MAPS if paths.dti_map(m).exists()}
        qsm = paths.qsm_map if paths.qsm_map.exists() else None
        if dti or qsm:
            out.append((dti, qsm))
    return out


def _files(subject: Subject) -> list[Path]:
    dti, qsm = subject
    return [*dti.values(), *([qsm] if qsm else [])]


def _load_only(subject: Subject) -> int:
    for path in _files(subject):
        np.asarray(nib.load(path).dataobj, dtype=np.float32)
    return len(_files(subject))


def _load_one_shot(subject: Subject) -> int:
    for path in _files(subject):
        img = nib.Nifti1Image.from_bytes(gzip.decompress(path.read_bytes()))
        np.asarray(img.dataobj, dtype=np.float32)
    return len(_files(subject))


def _extract(subject: Subject, atlas: Atlas) -> dict[str, float]:
    dti, qsm = subject
    out = dti_features(dti, atlas)
    if qsm is not None:
        out.update(qsm_features(qsm, atlas))
    return out


def _extract_worker_atlas(subject: Subject) -> dict[str, float]:
    return _extract(subject, load_atlas())  # memoized: loaded once per process


def _nilearn(subject: Subject, labels_img: nib.Nifti1Image) -> list[np.ndarray]:
    from nilearn.maskers import NiftiLabelsMasker

    return [
        NiftiLabelsMasker(labels_img=labels_img, standardize=None).fit_transform(
            str(path)
        )
        for path in _files(subject)
    ]


def _bold_cohort(root: Path, n: int) -> list[str]:
    """``n`` fMRIPrep-style BOLD runs with confounds under ``root``; their subjects."""
    from nilearn.image import resample_to_img

    from features.fmri.smn import fmri_features
    from features.fmri.smn_atlas import smn_atlas

    grid = np.diag([4.0, 4.0, 4.0, 1.0])
    grid[:3, 3] = [-96, -132, -78]
    labels = resample_to_img(
        smn_atlas().labels_img,
        nib.Nifti1Image(np.zeros((49, 58, 49), np.int8), grid),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    pids = [f"sub-{i + 1:02d}" for i in range(n)]
    for i, pid in enumerate(pids):
        folder = root / "derivatives" / "fmriprep" / pid / "func"
        path = folder / f"{pid}_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold"
        if Path(f"{path}.nii.gz").exists():
            continue
        rng = np.random.default_rng(i)
        signals = sim_fmri.region_signals(1.5, rng)
        sim_fmri.write_bold(Path(f"{path}.nii.gz"), signals, labels, rng)
        Path(f"{path}.json").write_text('{"RepetitionTime": 2.0}')
        sim_fmri.motion(rng).to_csv(
            folder / f"{pid}_task-rest_desc-confounds_timeseries.tsv",
            sep="\t",
            index=False,
        )
        fmri_features(root, pid, "")  # fails here, not in the timing, if broken
    return pids


def _bold_load(root: Path, pid: str) -> int:
    folder = root / "derivatives" / "fmriprep" / pid / "func"
    for path in folder.glob("*_bold.nii.gz"):
        np.asarray(nib.load(path).dataobj, dtype=np.float32)
    return 1


def _bold_extract(root: Path, pid: str) -> dict[str, float]:
    from features.fmri.smn import fmri_features

    return fmri_features(root, pid, "")[0]


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _best_times(
    stages: dict[str, Callable[[], object]], repeats: int
) -> dict[str, float]:
    """Best wall time of each stage over ``repeats`` interleaved rounds."""
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(repeats):
        for name, stage in stages.items():
            start = time.perf_counter()
            stage()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60, help="subjects to simulate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n-jobs", type=int, default=-1, help="joblib convention")
    p.add_argument("--bold", type=int, default=8, help="4D BOLD runs to time")
    a = p.parse_args()

    name = f"extract-cohort-n{a.n}" + (f"-seed{a.seed}" if a.seed else "")
    cohort = Path("outputs") / "bench" / name
    if not cohort.exists():
        print(f"simulating {a.n} subjects into {cohort} (once) ...", flush=True)
        simulate_cohort(cohort, a.n, a.seed)
    subjects = _subjects(cohort)
    n_images = sum(len(_files(s)) for s in subjects)
    atlas = load_atlas()
    workers = joblib.effective_n_jobs(a.n_jobs)
    print(
        f"machine: {_cpu_model()} ({platform.machine()}), {os.cpu_count()} logical "
        "cores "
        f"(joblib sees {joblib.cpu_count()}); {workers} joblib workers (loky), "
        f"parallel over subjects\nnibabel {nib.__version__}, nilearn "
        f"{nilearn.__version__}, numpy {np.__version__}\ncohort: {cohort} "
        f"({a.n} subjects; {len(subjects)} with DTI or QSM; {n_images} maps, "
        f"float32 .nii.gz on the 2 mm grid); best of {a.repeats}\n"
    )

    with Parallel(n_jobs=a.n_jobs) as pool:
        first = next(s for s in subjects if "FA" in s[0])
        ours = pool(delayed(_extract)(s, atlas) for s in [first])[0]
        theirs = np.ravel(_nilearn(first, atlas.labels_img)[0])  # FA, atlas order
        keys = list(atlas.regions)
        diff = max(
            abs(ours[f"dti_{r}_fa"] - theirs[keys.index(r)]) for r in DTI_REGIONS
        )
        print(f"check: |ours - nilearn| over FA tract means of one subject: {diff:.1e}")
        stages = {
            "(a) load only (nibabel, float32)": lambda: pool(
                delayed(_load_only)(s) for s in subjects
            ),
            "(a') load only (one-shot gzip)": lambda: pool(
                delayed(_load_one_shot)(s) for s in subjects
            ),
            "(b) dti_features + qsm_features": lambda: pool(
                delayed(_extract)(s, atlas) for s in subjects
            ),
            "(b') same, atlas once per worker": lambda: pool(
                delayed(_extract_worker_atlas)(s) for s in subjects
            ),
            "(c) nilearn NiftiLabelsMasker": lambda: pool(
                delayed(_nilearn)(s, atlas.labels_img) for s in subjects
            ),
        }
        best = _best_times(stages, a.repeats)
        bold_root = Path("outputs") / "bench" / "bold-4mm"
        pids = _bold_cohort(bold_root, a.bold) if a.bold else []
        pool(delayed(_bold_extract)(bold_root, p) for p in pids)  # warm the atlas
        bold = (
            _best_times(
                {
                    "(d) BOLD load only (nibabel)": lambda: pool(
                        delayed(_bold_load)(bold_root, p) for p in pids
                    ),
                    "(e) BOLD fmri_features": lambda: pool(
                        delayed(_bold_extract)(bold_root, p) for p in pids
                    ),
                },
                a.repeats,
            )
            if pids
            else {}
        )

    print(f"\n{'stage':<34} {'best s':>7} {'images/s':>9} {'subjects/s':>11}")
    for name, seconds in best.items():
        print(
            f"{name:<34} {seconds:>7.2f} {n_images / seconds:>9.1f} "
            f"{len(subjects) / seconds:>11.1f}"
        )
    load, one_shot, ours_s, ours_worker_s, nilearn_s = best.values()
    print(
        f"\n(b)/(a)   throughput: {load / ours_s:.2f} (goal >= 0.8)\n"
        f"(b')/(a)  throughput: {load / ours_worker_s:.2f}\n"
        f"(b)/(a')  throughput: {one_shot / ours_s:.2f} (checks + reduction vs "
        "our read alone)\n"
        f"(b)/(c)   throughput: {nilearn_s / ours_s:.2f} (ours vs nilearn masker)"
    )
    if bold:
        print(f"\n{len(pids)} BOLD runs (4 mm MNI grid, 180 volumes, int16 .nii.gz)")
        for name, seconds in bold.items():
            print(f"{name:<34} {seconds:>7.2f} {len(pids) / seconds:>9.2f} runs/s")
        load_b, ours_b = bold.values()
        print(f"(e)/(d)   throughput: {load_b / ours_b:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
