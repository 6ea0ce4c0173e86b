"""Tests for features.regions: region means of maps over the project atlas."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from features.atlas import Atlas, load_atlas
from features.errors import ImageMismatchError
from features.regions import check_map, region_means, region_qc, region_stats


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
    assert list(stats.columns) == ["mean", "n_voxels", "missing_fraction"]
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
