"""Stage 2: the fitted steps and model families (scikit-learn estimators).

- :mod:`models.pipelines`: :func:`~models.pipelines.build_pipeline` builds each
  family's pipeline (checks, harmonisation, normative scores, imputation,
  classifier, calibration) and its search space.
- :mod:`models.estimators`: the project's own fitted steps (column checks,
  class balancing, fold calibration).
- :mod:`models.harmonize`, :mod:`models.normative`, :mod:`models.ood`: site
  harmonisation, normative z-scores, out-of-distribution distance.
- :mod:`models.decision`: ALS-vs-mimics probabilities and conformal sets.
- :mod:`models.locked`: the locked model a run registers;
  :mod:`models.manifest`: the SHA-256 manifest that makes its folder tamper-evident.
"""

from models.decision import als_vs_mimics
from models.locked import LockedModel
from models.manifest import ManifestError, verify
from models.pipelines import PipelineSpec, build_pipeline, suggest

__all__ = [
    "LockedModel",
    "ManifestError",
    "PipelineSpec",
    "als_vs_mimics",
    "build_pipeline",
    "suggest",
    "verify",
]
