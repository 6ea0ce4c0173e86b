"""Stage 4: serve a locked model.

- :mod:`serve.bundle`: load a registered or exported model, verify its manifest,
  check tables against it.
- :mod:`serve.predict`: probabilities, conformal sets and flags for a table;
  :mod:`serve.score` scores large inputs in chunks (``python -m serve score``).
- :mod:`serve.explain` and :mod:`serve.report`: SHAP explanations and the HTML
  report (``serve explain``); :mod:`serve.monitor`: visits over time.
- :mod:`serve.api`: the HTTP API (``serve api``).

``serve`` never imports ``training`` (``lint-imports`` checks it): a locked model
carries everything it needs.
"""

from serve.bundle import Bundle, load_bundle, load_source
from serve.config import ModelSource
from serve.predict import predict

__all__ = ["Bundle", "ModelSource", "load_bundle", "load_source", "predict"]
