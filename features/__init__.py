"""Stage 1: pipeline outputs -> one features table (one row per subject-visit).

- :mod:`features.cohort`: ``participants.tsv``, the per-subject tables (clinical,
  serum, peripheral MRI, nerve conduction) and their cell rules.
- :mod:`features.imaging`: FreeSurfer stats and NIfTI maps (DTI, QSM, grey matter)
  reduced over the project atlas.
- :mod:`features.fmri`: resting-state SMN features (XCP-D, fMRIPrep) and group ICA.
- :mod:`features.mrs`: LCModel spectroscopy.
- :mod:`features.extract`: the whole cohort, in parallel, with the issue log;
  :mod:`features.cache` keeps per-visit results; :mod:`features.load` is the one
  way a command gets a table (``--cohort`` or ``--features``).
- :mod:`features.dictionary`: unit, meaning and plausible range of every column;
  :mod:`features.units` catches unit mix-ups; :mod:`features.lab_table` maps a
  lab's own table onto the contract.
- :mod:`features.simulate`: the simulated cohort, written in the pipelines' formats.
"""

from features.dictionary import describe, modality_of, value_range
from features.extract import Extraction, extract_features, feature_columns
from features.lab_table import InputMapping
from features.load import FeaturesInput, load_features

__all__ = [
    "Extraction",
    "FeaturesInput",
    "InputMapping",
    "describe",
    "extract_features",
    "feature_columns",
    "load_features",
    "modality_of",
    "value_range",
]
