"""Structural and diffusion imaging: the project's MNI atlas
(:mod:`~features.imaging.atlas`), FreeSurfer stats
(:mod:`~features.imaging.freesurfer`), checks that a NIfTI map is usable
(:mod:`~features.imaging.map_checks`), region statistics over the atlas
(:mod:`~features.imaging.region_stats`) and the DTI, QSM and grey-matter features
built from them (:mod:`~features.imaging.region_features`).
"""

from features.imaging.atlas import Atlas, load_atlas
from features.imaging.freesurfer import freesurfer_features
from features.imaging.region_features import dti_features, gm_features, qsm_features
from features.imaging.region_stats import region_stats

__all__ = [
    "Atlas",
    "dti_features",
    "freesurfer_features",
    "gm_features",
    "load_atlas",
    "qsm_features",
    "region_stats",
]
