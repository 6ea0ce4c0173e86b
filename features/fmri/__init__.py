"""Resting-state fMRI: finding XCP-D and fMRIPrep outputs
(:mod:`~features.fmri.inputs`), loading and reducing 4D BOLD
(:mod:`~features.fmri.bold`), the SMN features (:mod:`~features.fmri.smn`) on the
SMN atlas (:mod:`~features.fmri.smn_atlas`), and group ICA
(:mod:`~features.fmri.group_ica`).
"""

from features.fmri.bold import BoldRun, load_bold
from features.fmri.inputs import find_bold, find_fmri
from features.fmri.smn import fmri_features

__all__ = ["BoldRun", "find_bold", "find_fmri", "fmri_features", "load_bold"]
