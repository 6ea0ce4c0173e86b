"""Tests for features.imaging.region_stats: value checks and region statistics of
maps."""

from __future__ import annotations

import dataclasses
import gzip
import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from features.errors import ImageMismatchError
from features.imaging.atlas import Atlas, load_atlas
from features.imaging.map_checks import check_map, check_values
from features.imaging.region_stats import (
    _flat_labels,
    region_means,
    region_qc,
    region_stats,
)


@pytest.fixture(scope="session")
def atlas(tmp_path_factory: pytest.TempPathFactory) -> Atlas:
    """The atlas, built once per session (same cache folder as test_atlas)."""
    return load_atlas(tmp_path_factory.getbasetemp() / "atlas_cache")


@pytest.fixture(scope="session")
def truth(atlas: Atlas) -> pd.Series:
    """A known constant per region: 0.1, 0.2, ... in atlas order."""
    return pd.Series(
        0.1 * np.arange(1, len(atlas.regions) + 1), index=list(atlas.regions)
    )


def _labels(atlas: Atlas) -> np.ndarray:
    return np.asarray(atlas.labels_img.dataobj)


def _piecewise_map(atlas: Atlas, truth: pd.Series, noise: float = 0.0) -> np.ndarray:
    """Each region at its true value plus zero-mean noise; background 0."""
    rng = np.random.default_rng(0)
    labels = _labels(atlas)
    data = np.zeros(atlas.shape, dtype=np.float32)
    for key, value in atlas.regions.items():
        inside = labels == value
        eps = rng.normal(0.0, noise, inside.sum()) if noise else 0.0
        data[inside] = truth[key] + (eps - np.mean(eps))
    return data


def _img(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    return nib.Nifti1Image(data, affine)


def test_recovers_known_region_values(atlas: Atlas, truth: pd.Series) -> None:
    img = _img(_piecewise_map(atlas, truth, noise=0.05), atlas.affine)
    means = region_means(img, atlas, kind="FA")
    assert means.name == "FA"
    assert list(means.index) == list(atlas.regions)
    np.testing.assert_allclose(means, truth, atol=1e-5)
    np.testing.assert_array_equal(region_qc(img, atlas, kind="FA"), 0.0)


def test_matches_brute_force_means(atlas: Atlas) -> None:
    data = np.random.default_rng(1).normal(size=atlas.shape).astype(np.float32)
    means = region_means(_img(data, atlas.affine), atlas, kind="MD")
    labels = _labels(atlas)
    for key, value in atlas.regions.items():
        assert means[key] == pytest.approx(data[labels == value].mean(), abs=1e-6)


def test_reads_a_file(atlas: Atlas, truth: pd.Series, tmp_path: Path) -> None:
    path = tmp_path / "sub-01_MD.nii.gz"
    nib.save(_img(_piecewise_map(atlas, truth), atlas.affine), path)
    stats = region_stats(path, atlas, kind="MD")
    assert list(stats.columns) == ["mean", "n_voxels", "missing_fraction", "voxel_mm3"]
    assert (stats["voxel_mm3"] == 8.0).all()
    np.testing.assert_allclose(stats["mean"], truth, atol=1e-6)
    assert (stats["n_voxels"] == pd.Series(atlas.voxel_counts())).all()


def test_nan_voxels_are_ignored_and_reported(atlas: Atlas, truth: pd.Series) -> None:
    data = _piecewise_map(atlas, truth)
    cst = np.flatnonzero(_labels(atlas).ravel() == atlas.regions["cst_l"])
    data.reshape(-1)[cst[::4]] = np.nan
    data.reshape(-1)[cst[1::4]] = np.inf
    img = _img(data, atlas.affine)
    means = region_means(img, atlas, kind="QSM")
    np.testing.assert_allclose(means, truth, atol=1e-6)
    qc = region_qc(img, atlas, kind="QSM")
    expected = (len(cst[::4]) + len(cst[1::4])) / len(cst)
    assert qc["cst_l"] == pytest.approx(expected)
    assert (qc.drop("cst_l") == 0).all()


def test_zeros_count_in_qc_not_removed_from_mean(
    atlas: Atlas, truth: pd.Series
) -> None:
    data = _piecewise_map(atlas, truth)
    labels = _labels(atlas)
    putamen = labels == atlas.regions["putamen_r"]
    data[putamen & (np.cumsum(putamen.ravel()).reshape(putamen.shape) % 2 == 0)] = 0
    stats = region_stats(_img(data, atlas.affine), atlas, kind="QSM")
    n = putamen.sum()
    assert stats.loc["putamen_r", "missing_fraction"] == pytest.approx((n // 2) / n)
    assert stats.loc["putamen_r", "mean"] == pytest.approx(
        truth["putamen_r"] * (n - n // 2) / n
    )


def test_all_nan_region_warns_and_gives_nan(atlas: Atlas, truth: pd.Series) -> None:
    data = _piecewise_map(atlas, truth)
    data[_labels(atlas) == atlas.regions["substantia_nigra_l"]] = np.nan
    with pytest.warns(UserWarning, match=r"no finite voxel.*substantia_nigra_l"):
        stats = region_stats(_img(data, atlas.affine), atlas, kind="QSM")
    assert np.isnan(stats.loc["substantia_nigra_l", "mean"])
    assert stats.loc["substantia_nigra_l", "missing_fraction"] == 1.0


def test_squeezes_trailing_singleton_volume(atlas: Atlas, truth: pd.Series) -> None:
    data = _piecewise_map(atlas, truth)[..., np.newaxis]
    img = _img(data, atlas.affine)
    check_map(img, atlas, path="x.nii.gz", kind="FA")
    np.testing.assert_allclose(region_means(img, atlas, kind="FA"), truth, atol=1e-6)


def test_wrong_shape_raises(atlas: Atlas, tmp_path: Path) -> None:
    path = tmp_path / "sub-07_FA.nii.gz"
    nib.save(_img(np.ones((91, 109, 91), np.float32), atlas.affine), path)
    with pytest.raises(
        ImageMismatchError,
        match=r"sub-07_FA\.nii\.gz: FA map has shape \(91, 109, 91\).*atlas.*shape "
        r"\(99, 117, 95\).*resample_to_img.*resample=True",
    ):
        region_means(path, atlas, kind="FA")


def test_wrong_affine_raises(atlas: Atlas) -> None:
    shifted = atlas.affine.copy()
    shifted[0, 3] += 1.0
    img = _img(np.ones(atlas.shape, np.float32), shifted)
    with pytest.raises(
        ImageMismatchError, match=r"sub-02_RD\.nii: RD map has affine .*tolerance"
    ):
        check_map(img, atlas, path="sub-02_RD.nii", kind="RD")


def test_affine_within_tolerance_passes(atlas: Atlas) -> None:
    nudged = atlas.affine.copy()
    nudged[:3, 3] += 1e-4
    check_map(
        _img(np.ones(atlas.shape, np.float32), nudged), atlas, path="a", kind="AD"
    )


def test_two_volume_map_raises_even_with_resample(atlas: Atlas) -> None:
    img = _img(np.ones((*atlas.shape, 2), np.float32), atlas.affine)
    with pytest.raises(
        ImageMismatchError,
        match=r"<in-memory image>: AD map has shape \(99, 117, 95, 2\); expected one "
        r"3D volume.*index_img",
    ):
        region_means(img, atlas, kind="AD", resample=True)


def test_resample_warns_and_returns_values(atlas: Atlas) -> None:
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-99, -135, -75]
    img = _img(np.full((67, 80, 66), 0.7, np.float32), affine)
    with pytest.warns(UserWarning, match=r"has shape \(67, 80, 66\).*resampled") as rec:
        means = region_means(img, atlas, kind="FA", resample=True)
    assert rec[0].filename == __file__  # the warning points at the caller
    np.testing.assert_allclose(means, 0.7, atol=1e-3)


def test_resample_marks_out_of_field_voxels_missing(atlas: Atlas) -> None:
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [0, -135, -75]  # covers only the right hemisphere
    img = _img(np.full((34, 80, 66), 0.4, np.float32), affine)
    with pytest.warns(UserWarning) as record:
        stats = region_stats(img, atlas, kind="FA", resample=True)
    messages = " | ".join(str(w.message) for w in record)
    assert "resampled" in messages
    assert "no finite voxel in regions ['cst_l'," in messages
    left = [key for key in atlas.regions if key.endswith("_l")]
    right = [key for key in atlas.regions if key.endswith("_r")]
    assert (stats.loc[left, "missing_fraction"] == 1.0).all()
    assert stats.loc[left, "mean"].isna().all()
    assert (stats.loc[right, "missing_fraction"] == 0.0).all()
    np.testing.assert_allclose(stats.loc[right, "mean"], 0.4, atol=1e-3)


def test_unknown_kind_raises(atlas: Atlas) -> None:
    img = _img(np.ones(atlas.shape, np.float32), atlas.affine)
    with pytest.raises(ValueError, match=r"kind = 'ADC' is not a known map kind"):
        region_means(img, atlas, kind="ADC")
    with pytest.raises(ValueError, match=r"kind = 'fa'"):
        check_map(img, atlas, path="a.nii", kind="fa")


def test_unreadable_file_raises(atlas: Atlas, tmp_path: Path) -> None:
    path = tmp_path / "sub-03_QSM.txt"
    path.write_text("not an image")
    with pytest.raises(ImageMismatchError, match=r"sub-03_QSM\.txt: cannot read"):
        region_means(path, atlas, kind="QSM")


# --- value checks ----------------------------------------------------------------


def _brain(atlas: Atlas) -> np.ndarray:
    return np.asarray(atlas.brain_mask_img.dataobj) > 0


def _filled(atlas: Atlas, value: float) -> np.ndarray:
    """``value`` in every brain voxel, 0 outside (C order)."""
    return np.ascontiguousarray(np.where(_brain(atlas), value, 0.0), dtype=np.float32)


@pytest.mark.parametrize(
    ("kind", "value"),
    [("FA", 0.45), ("MD", 0.0008), ("AD", 0.0012), ("RD", 0.0005), ("QSM", -40.0),
     ("GM", 0.7)],
)  # fmt: skip
def test_plausible_values_pass(atlas: Atlas, kind: str, value: float) -> None:
    check_values(_filled(atlas, value), _brain(atlas), kind=kind, path="ok.nii")


@pytest.mark.parametrize(
    ("kind", "value", "match"),
    [
        ("FA", 450.0, r"FA map: 100\.0% of brain voxels lie outside.*scaled by 1000"
         r".*divide it by 1000"),
        ("FA", 5000.0, r"FA map: .*Check that the file is an FA map"),
        ("MD", 0.8, r"MD map has median 0\.8 .*divide the map by 1000 to get"),
        ("AD", 1200.0, r"AD map has median 1\.2e\+03 .*um\^2/s.*divide the map by "
         r"1000000"),
        ("RD", 6e-10, r"RD map has median 6e-10 .*m\^2/s.*multiply the map by "
         r"1000000"),
        ("MD", 8e-5, r"MD map has median 8e-05 .*cm\^2/s.*multiply the map by 100 "),
        ("MD", -0.0008, r"MD map has median -0\.0008 .*Diffusivities are positive"),
        ("MD", 40.0, r"MD map has median 40 .*Check the map's units"),
        ("QSM", 0.05, r"QSM map: the 99th percentile of \|susceptibility\| .* is "
         r"0\.05;.*ppm"),
        ("GM", -0.2, r"GM map: 100\.0% of brain voxels are below -0\.01"),
        ("GM", 70.0, r"GM map: 100\.0% of brain voxels exceed 1\.5.*percent"),
    ],
)  # fmt: skip
def test_implausible_values_raise(
    atlas: Atlas, kind: str, value: float, match: str
) -> None:
    with pytest.raises(ImageMismatchError, match=r"^sub-09\.nii\.gz: " + match):
        check_values(
            _filled(atlas, value), _brain(atlas), kind=kind, path="sub-09.nii.gz"
        )


def test_fa_tolerates_a_few_outliers(atlas: Atlas) -> None:
    data = _filled(atlas, 0.45)
    inside = np.flatnonzero(_brain(atlas).ravel())
    data.reshape(-1)[inside[::200]] = 1.3  # 0.5 % of the brain
    check_values(data, _brain(atlas), kind="FA", path="fa.nii")
    data.reshape(-1)[inside[::50]] = 1.3  # 2 %
    with pytest.raises(ImageMismatchError, match=r"fa\.nii: FA map: 2\.0% of brain"):
        check_values(data, _brain(atlas), kind="FA", path="fa.nii")


@pytest.mark.parametrize("fill", [0.0, np.nan])
def test_empty_map_raises(atlas: Atlas, fill: float) -> None:
    data = np.full(atlas.shape, fill, dtype=np.float32)
    data[0, 0, 0] = 0.5  # outside the brain: does not count
    with pytest.raises(
        ImageMismatchError,
        match=r"e\.nii: RD map is zero or NaN everywhere in the MNI152 brain mask; it "
        r"holds no radial diffusivity values",
    ):
        check_values(data, _brain(atlas), kind="RD", path="e.nii")


def test_check_values_argument_errors(atlas: Atlas) -> None:
    with pytest.raises(
        ValueError, match=r"x\.nii: FA map has shape \(4, 4, 4\) but the brain mask"
    ):
        check_values(np.ones((4, 4, 4)), _brain(atlas), kind="FA", path="x.nii")
    with pytest.raises(ValueError, match=r"kind = 'T1' is not a known map kind"):
        check_values(np.ones((4, 4, 4)), np.ones((4, 4, 4)), kind="T1", path="x.nii")


def test_region_stats_checks_values_on_request(atlas: Atlas) -> None:
    img = _img(_filled(atlas, 0.8), atlas.affine)  # MD in 10^-3 mm^2/s
    assert region_stats(img, atlas, kind="MD")["mean"].notna().all()
    with pytest.raises(ImageMismatchError, match=r"<in-memory image>: MD map .*1000"):
        region_stats(img, atlas, kind="MD", check=True)
    with pytest.raises(ImageMismatchError, match=r"MD map has median 0\.8"):
        region_means(img, atlas, kind="MD", check=True)
    with pytest.raises(ImageMismatchError, match=r"MD map has median 0\.8"):
        region_qc(img, atlas, kind="MD", check=True)


def test_gm_missing_counts_only_non_finite(atlas: Atlas) -> None:
    data = _filled(atlas, 0.6)
    labels = _labels(atlas)
    caudate = np.flatnonzero(labels.ravel() == atlas.regions["caudate_l"])
    data.reshape(-1)[caudate[0::4]] = 0.0
    data.reshape(-1)[caudate[1::4]] = np.nan
    img = _img(data, atlas.affine)
    gm = region_stats(img, atlas, kind="GM", check=True).loc["caudate_l"]
    qsm = region_stats(img, atlas, kind="QSM").loc["caudate_l"]
    assert gm["missing_fraction"] == pytest.approx(len(caudate[1::4]) / len(caudate))
    assert qsm["missing_fraction"] == pytest.approx(
        (len(caudate[0::4]) + len(caudate[1::4])) / len(caudate)
    )


# --- reading files ---------------------------------------------------------------


def test_file_and_memory_orders_agree(atlas: Atlas, tmp_path: Path) -> None:
    data = np.random.default_rng(2).uniform(0.1, 0.9, atlas.shape).astype(np.float32)
    path = tmp_path / "fa.nii.gz"
    nib.save(_img(data, atlas.affine), path)
    from_file = region_stats(path, atlas, kind="FA", check=True)
    in_memory = region_stats(_img(np.ascontiguousarray(data), atlas.affine), atlas,
                             kind="FA")  # fmt: skip
    fortran = region_stats(
        _img(np.asfortranarray(data), atlas.affine), atlas, kind="FA"
    )
    pd.testing.assert_frame_equal(from_file, in_memory)
    pd.testing.assert_frame_equal(from_file, fortran)


@pytest.mark.parametrize(
    "variant", ["nii", "nifti2", "big_endian", "two_gzip_members", "scaled_int16"]
)
def test_reads_nifti_variants(
    atlas: Atlas, truth: pd.Series, tmp_path: Path, variant: str
) -> None:
    data = _piecewise_map(atlas, truth)
    img = _img(data, atlas.affine)
    path = tmp_path / "map.nii.gz"
    if variant == "nii":
        path = tmp_path / "map.nii"
    elif variant == "nifti2":
        img = nib.Nifti2Image(data, atlas.affine)
    elif variant == "big_endian":
        header = nib.Nifti1Header(endianness=">")
        img = nib.Nifti1Image(data, atlas.affine, header)
    elif variant == "scaled_int16":
        img = nib.Nifti1Image(data, atlas.affine)
        img.set_data_dtype(np.int16)  # nibabel stores with scl_slope
    nib.save(img, path)
    if variant == "big_endian":
        assert nib.load(path).header.endianness == ">"
    if variant == "two_gzip_members":  # as bgzip writes; one member per half
        raw = gzip.decompress(path.read_bytes())
        half = len(raw) // 2
        path.write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]))
    atol = 1e-3 if variant == "scaled_int16" else 1e-6
    np.testing.assert_allclose(region_means(path, atlas, kind="QSM"), truth, atol=atol)


def test_unreadable_gz_files_raise(atlas: Atlas, tmp_path: Path) -> None:
    good = tmp_path / "good.nii.gz"
    nib.save(_img(np.ones(atlas.shape, np.float32), atlas.affine), good)
    truncated = tmp_path / "sub-11_FA.nii.gz"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(
        ImageMismatchError, match=r"sub-11_FA\.nii\.gz: cannot read the FA map.*ends"
    ):
        region_means(truncated, atlas, kind="FA")
    corrupt = tmp_path / "sub-12_FA.nii.gz"
    raw = bytearray(good.read_bytes())
    raw[-8] ^= 0xFF  # CRC of the gzip trailer
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(ImageMismatchError, match=r"sub-12_FA\.nii\.gz: cannot read"):
        region_means(corrupt, atlas, kind="FA")
    plain = tmp_path / "sub-13_FA.nii.gz"
    plain.write_bytes(gzip.decompress(good.read_bytes()))
    with pytest.raises(
        ImageMismatchError,
        match=r"sub-13_FA\.nii\.gz: .*not gzip-compressed.*rename it to \.nii",
    ):
        region_means(plain, atlas, kind="FA")
    text = tmp_path / "sub-14_FA.nii.gz"
    text.write_bytes(gzip.compress(b"not an image at all"))
    with pytest.raises(
        ImageMismatchError, match=r"sub-14_FA\.nii\.gz: cannot read.*neither 348"
    ):
        region_means(text, atlas, kind="FA")
    bad_magic = tmp_path / "sub-15_FA.nii.gz"
    header = bytearray(gzip.decompress(good.read_bytes()))
    header[344:348] = b"xyz\0"  # NIfTI magic
    bad_magic.write_bytes(gzip.compress(bytes(header)))
    with pytest.raises(ImageMismatchError, match=r"sub-15_FA\.nii\.gz: cannot read"):
        region_means(bad_magic, atlas, kind="FA")


# --- the flattened-label cache ---------------------------------------------------


def test_cache_is_shared_by_pickled_copies(atlas: Atlas) -> None:
    copy = pickle.loads(pickle.dumps(atlas))
    assert copy is not atlas
    assert _flat_labels(copy) is _flat_labels(atlas)


def test_region_without_voxels(atlas: Atlas, truth: pd.Series) -> None:
    ghost = dataclasses.replace(atlas, regions={**atlas.regions, "ghost": 99})
    img = _img(_piecewise_map(atlas, truth), atlas.affine)
    with pytest.warns(UserWarning, match=r"no finite voxel in regions \['ghost'\]"):
        stats = region_stats(img, ghost, kind="QSM")
    assert stats.loc["ghost", "n_voxels"] == 0
    assert np.isnan(stats.loc["ghost", "mean"])
    np.testing.assert_allclose(stats["mean"].drop("ghost"), truth, atol=1e-6)
