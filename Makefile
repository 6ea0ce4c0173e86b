# Quick start: `make train` and `make test`; each bootstraps .venv from plain python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: train test lint clean

# Rebuilt when missing or when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

train: $(STAMP)
	$(PY) -m training $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check features models training serve tests experiments

clean:
	rm -rf $(VENV) mlruns mlflow.db optuna.db outputs data/simulated
