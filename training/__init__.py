"""Stage 3: nested cross-validated training and the source studies' analyses.

``python -m training`` reads a :class:`~training.config.TrainConfig`, gets the
table (:mod:`training.data`), runs nested CV with an Optuna search per family
(:mod:`training.nested_cv`, :mod:`training.search`), assesses the champion
(:mod:`training.assessment`, :mod:`training.evaluation`, :mod:`training.conformal`,
peers and baselines) and records everything in MLflow (:mod:`training.tracking`).
``python -m training analyze`` runs an analysis plan (:mod:`training.analysis`).
"""

from training.config import TrainConfig
from training.run import RunResult, run

__all__ = ["RunResult", "TrainConfig", "run"]
