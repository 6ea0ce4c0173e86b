"""Tests for features.imaging.region_features: DTI, QSM and grey-matter features from
NIfTI maps."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from features.cohort.participants import CohortPaths
from features.errors import ImageMismatchError
from features.imaging.atlas import Atlas, load_atlas
from features.imaging.region_features import (
    DTI_MAPS,
    DTI_REGIONS,
    GM_REGIONS,
    QSM_REGIONS,
    dti_features,
    gm_features,
    qsm_features,
)

#: A plausible value for each map kind (FA, mm^2/s, ppb, modulated GM).
TYPICAL = {"FA": 0.45, "MD": 0.8e-3, "AD": 1.2e-3, "RD": 0.6e-3, "QSM": 60.0}


@pytest.fixture(scope="session")
def atlas(tmp_path_factory: pytest.TempPathFactory) -> Atlas:
    """The atlas, built once per session (same cache folder as test_atlas)."""
    return load_atlas(tmp_path_factory.getbasetemp() / "atlas_cache")


def _labels(atlas: Atlas) -> np.ndarray:
    return np.asarray(atlas.labels_img.dataobj)


def _brain_map(atlas: Atlas, value: float) -> np.ndarray:
    """``value`` in every brain voxel, 0 outside (C order, so ``reshape`` is a view)."""
    brain = np.asarray(atlas.brain_mask_img.dataobj) > 0
    return np.ascontiguousarray(np.where(brain, value, 0.0), dtype=np.float32)


def _save(data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), path)
    return path


def _dti_paths(atlas: Atlas, folder: Path, **data: np.ndarray) -> dict[str, Path]:
    """Write the four DTI maps (typical values unless given) and return their paths."""
    return {
        kind: _save(
            data.get(kind, _brain_map(atlas, TYPICAL[kind])),
            atlas.affine,
            folder / f"sub-01_{kind}.nii.gz",
        )
        for kind in DTI_MAPS
    }


def test_dti_columns_values_and_qc(atlas: Atlas, tmp_path: Path) -> None:
    out = dti_features(_dti_paths(atlas, tmp_path), atlas)
    values = [f"dti_{r}_{m.lower()}" for m in DTI_MAPS for r in DTI_REGIONS]
    qc = [f"qc_dti_{m.lower()}_{r}_missing" for m in DTI_MAPS for r in DTI_REGIONS]
    assert sorted(out) == sorted(values + qc)
    assert out["dti_cst_l_fa"] == pytest.approx(0.45, abs=1e-6)
    assert out["dti_cst_r_md"] == pytest.approx(0.8, abs=1e-5)  # 10^-3 mm^2/s
    assert out["dti_callosal_body_rd"] == pytest.approx(0.6, abs=1e-5)
    assert all(out[c] == 0.0 for c in qc)


def test_dti_skips_missing_files(atlas: Atlas, tmp_path: Path) -> None:
    paths = _dti_paths(atlas, tmp_path)
    paths["AD"] = tmp_path / "absent.nii.gz"
    out = dti_features(paths, atlas)
    assert not any(key.endswith("_ad") or "_ad_" in key for key in out)
    assert dti_features({"FA": tmp_path / "absent.nii.gz"}, atlas) == {}


def test_fa_out_of_range_raises(atlas: Atlas, tmp_path: Path) -> None:
    fa = _brain_map(atlas, 0.45)
    fa[: fa.shape[0] // 3] *= 3.0  # a third of the brain above 1
    paths = _dti_paths(atlas, tmp_path, FA=fa)
    with pytest.raises(
        ImageMismatchError,
        match=r"sub-01_FA\.nii\.gz: FA map: .*% of brain voxels lie outside "
        r"\[-0\.01, 1\.01\].*FA is a fraction in \[0, 1\]",
    ):
        dti_features(paths, atlas)


def test_md_in_wrong_units_raises(atlas: Atlas, tmp_path: Path) -> None:
    paths = _dti_paths(atlas, tmp_path, MD=_brain_map(atlas, 0.8))
    with pytest.raises(
        ImageMismatchError,
        match=r"sub-01_MD\.nii\.gz: MD map has median 0\.8 .*10\^-3 mm\^2/s "
        r"\(x1000\): divide the map by 1000 to get mm\^2/s",
    ):
        dti_features(paths, atlas)


def test_qsm_columns_values_and_qc(atlas: Atlas, tmp_path: Path) -> None:
    path = _save(_brain_map(atlas, 60.0), atlas.affine, tmp_path / "chi.nii.gz")
    out = qsm_features(path, atlas)
    assert sorted(out) == sorted(
        [f"qsm_{r}" for r in QSM_REGIONS] + [f"qc_qsm_{r}_missing" for r in QSM_REGIONS]
    )
    assert out["qsm_substantia_nigra_l"] == pytest.approx(60.0)
    assert out["qc_qsm_putamen_r_missing"] == 0.0
    assert qsm_features(tmp_path / "absent.nii.gz", atlas) == {}


def test_qsm_in_ppm_raises(atlas: Atlas, tmp_path: Path) -> None:
    path = _save(_brain_map(atlas, 0.06), atlas.affine, tmp_path / "sub-04_chi.nii.gz")
    with pytest.raises(
        ImageMismatchError,
        match=r"sub-04_chi\.nii\.gz: QSM map: .*looks like ppm.*Multiply it by 1000",
    ):
        qsm_features(path, atlas)


@pytest.mark.parametrize("fill", [0.0, np.nan])
def test_empty_map_raises(atlas: Atlas, tmp_path: Path, fill: float) -> None:
    path = _save(np.full(atlas.shape, fill), atlas.affine, tmp_path / "sub-05.nii.gz")
    with pytest.raises(
        ImageMismatchError,
        match=r"sub-05\.nii\.gz: QSM map is zero or NaN everywhere in the MNI152 "
        r"brain mask",
    ):
        qsm_features(path, atlas)


def test_poorly_covered_region_is_nan_with_warning(
    atlas: Atlas, tmp_path: Path
) -> None:
    fa = _brain_map(atlas, 0.45).reshape(-1)
    cst_l = np.flatnonzero(_labels(atlas).reshape(-1) == atlas.regions["cst_l"])
    cst_r = np.flatnonzero(_labels(atlas).reshape(-1) == atlas.regions["cst_r"])
    fa[cst_l[: int(0.6 * len(cst_l))]] = np.nan
    fa[cst_r[: int(0.4 * len(cst_r))]] = 0.0  # 40 % missing: still summarised
    paths = {"FA": _save(fa.reshape(atlas.shape), atlas.affine, tmp_path / "fa.nii")}
    with pytest.warns(UserWarning, match=r"fa\.nii: FA map covers too little of "):
        out = dti_features(paths, atlas)
    assert np.isnan(out["dti_cst_l_fa"])
    assert out["qc_dti_fa_cst_l_missing"] == pytest.approx(0.6, abs=1e-3)
    assert out["qc_dti_fa_cst_r_missing"] == pytest.approx(0.4, abs=1e-3)
    assert out["dti_cst_r_fa"] == pytest.approx(0.45 * 0.6, abs=1e-3)  # zeros count
    assert out["dti_optic_radiation_l_fa"] == pytest.approx(0.45)


def test_poorly_covered_warning_names_the_region(atlas: Atlas, tmp_path: Path) -> None:
    chi = _brain_map(atlas, 60.0)
    chi[_labels(atlas) == atlas.regions["caudate_r"]] = 0.0
    path = _save(chi, atlas.affine, tmp_path / "sub-06_chi.nii.gz")
    with pytest.warns(
        UserWarning,
        match=r"sub-06_chi\.nii\.gz: QSM map covers too little of regions "
        r"caudate_r \(100% missing\)",
    ):
        out = qsm_features(path, atlas)
    assert np.isnan(out["qsm_caudate_r"])
    assert out["qc_qsm_caudate_r_missing"] == 1.0


def test_gm_volumes_equal_the_known_sums(atlas: Atlas, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    brain = np.asarray(atlas.brain_mask_img.dataobj) > 0
    gm = np.where(brain, rng.uniform(0.0, 1.2, atlas.shape), 0.0).astype(np.float32)
    gm[(_labels(atlas) == atlas.regions["putamen_l"]) & (gm < 0.3)] = 0.0
    path = _save(gm, atlas.affine, tmp_path / "gm.nii.gz")
    out = gm_features(path, atlas)
    assert sorted(out) == sorted(
        [f"vbm_{r}_ml" for r in GM_REGIONS]
        + [f"qc_vbm_{r}_missing" for r in GM_REGIONS]
    )
    voxel_mm3 = 8.0  # 2 mm isotropic
    for region in GM_REGIONS:
        inside = _labels(atlas) == atlas.regions[region]
        want = gm[inside].astype(np.float64).sum() * voxel_mm3 / 1000
        assert out[f"vbm_{region}_ml"] == pytest.approx(want, rel=1e-6)
    assert out["qc_vbm_putamen_l_missing"] == 0.0  # zero grey matter is a value


def test_gm_nan_voxels_are_filled_with_the_region_mean(
    atlas: Atlas, tmp_path: Path
) -> None:
    gm = _brain_map(atlas, 0.5)
    thalamus = np.flatnonzero(_labels(atlas).ravel() == atlas.regions["thalamus_r"])
    gm.reshape(-1)[thalamus[::4]] = np.nan
    out = gm_features(_save(gm, atlas.affine, tmp_path / "gm.nii.gz"), atlas)
    assert out["vbm_thalamus_r_ml"] == pytest.approx(0.5 * len(thalamus) * 8 / 1000)
    assert out["qc_vbm_thalamus_r_missing"] == pytest.approx(0.25, abs=1e-3)
    assert gm_features(tmp_path / "absent.nii.gz", atlas) == {}


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (-0.3, r"gm\.nii\.gz: GM map: 100\.0% of brain voxels are below -0\.01"),
        (60.0, r"gm\.nii\.gz: GM map: .*exceed 1\.5.*It looks like percent"),
        (900.0, r"gm\.nii\.gz: GM map: .*exceed 1\.5.*looks like an intensity image"),
    ],
)
def test_implausible_gm_raises(
    atlas: Atlas, tmp_path: Path, value: float, match: str
) -> None:
    path = _save(_brain_map(atlas, value), atlas.affine, tmp_path / "gm.nii.gz")
    with pytest.raises(ImageMismatchError, match=match):
        gm_features(path, atlas)


def test_resample_on_request(atlas: Atlas, tmp_path: Path) -> None:
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-99, -135, -75]
    path = _save(np.full((67, 80, 66), 0.45), affine, tmp_path / "fa_3mm.nii.gz")
    with pytest.raises(ImageMismatchError, match=r"fa_3mm\.nii\.gz: FA map has shape"):
        dti_features({"FA": path}, atlas)
    with pytest.warns(
        UserWarning, match=r"fa_3mm\.nii\.gz: FA map has shape .*resampl"
    ):
        out = dti_features({"FA": path}, atlas, resample=True)
    assert out["dti_cst_l_fa"] == pytest.approx(0.45, abs=1e-3)
    assert out["qc_dti_fa_cst_l_missing"] == 0.0


def test_gm_volume_on_another_grid_uses_that_grid(atlas: Atlas, tmp_path: Path):
    # A 3 mm map: the atlas is resampled onto it (nearest), voxels are 27 mm^3, and
    # a uniform GM fraction gives about the same regional volume as on 2 mm.
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-99, -135, -75]
    coarse = _save(np.full((67, 80, 66), 0.5), affine, tmp_path / "gm_3mm.nii.gz")
    fine = _save(_brain_map(atlas, 0.5), atlas.affine, tmp_path / "gm_2mm.nii.gz")
    with pytest.warns(UserWarning, match="nearest"):
        on_coarse = gm_features(coarse, atlas, resample=True)
    on_fine = gm_features(fine, atlas)
    for region in ("precentral_l", "thalamus_r", "putamen_l"):
        ratio = on_coarse[f"vbm_{region}_ml"] / on_fine[f"vbm_{region}_ml"]
        assert 0.85 < ratio < 1.15, region


def test_cohort_paths_gm_map() -> None:
    path = CohortPaths(Path("cohort"), "sub-01_ses-2").gm_map
    assert path == Path(
        "cohort/derivatives/vbm/sub-01_ses-2/sub-01_ses-2_space-MNI152NLin2009cAsym_"
        "res-2_label-GM_desc-modulated_probseg.nii.gz"
    )


def _gz_nifti(path, shape, data_bytes: int):
    """A gzipped float64 NIfTI-1 header declaring ``shape``, then ``data_bytes``
    zero bytes (whatever the header says)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.float64)
    hdr.set_data_offset(352)
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(hdr.binaryblock + b"\0" * 4)
        for start in range(0, data_bytes, 1 << 20):
            handle.write(b"\0" * min(1 << 20, data_bytes - start))
    return path


def test_a_gzip_bomb_is_refused_from_its_header_before_inflating(tmp_path):
    from features.imaging.map_checks import load_map

    huge = _gz_nifti(tmp_path / "huge_FA.nii.gz", (4096, 4096, 4096), 0)
    with pytest.raises(ImageMismatchError, match=r"declares 512\.0 GiB of image data"):
        load_map(huge, path=str(huge), kind="FA")
    padded = _gz_nifti(tmp_path / "padded_FA.nii.gz", (4, 4, 4), 64 << 20)
    assert padded.stat().st_size < 1 << 20  # 64 MiB of zeros, compressed
    with pytest.raises(ImageMismatchError, match="more than its header declares"):
        load_map(padded, path=str(padded), kind="FA")
    fine = _gz_nifti(tmp_path / "fine_FA.nii.gz", (4, 4, 4), 4 * 4 * 4 * 8)
    assert load_map(fine, path=str(fine), kind="FA").shape == (4, 4, 4)


def test_a_complex_valued_map_is_refused_naming_the_file(tmp_path):
    from features.imaging.map_checks import load_map

    path = tmp_path / "sub-01_Chimap.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.complex64), np.eye(4)), path)
    with pytest.raises(ImageMismatchError, match=r"Chimap.nii.gz: the QSM map holds "
                       r"complex values \(complex64\)"):  # fmt: skip
        load_map(path, path=str(path), kind="QSM")
