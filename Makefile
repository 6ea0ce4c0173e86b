# Quick start: `make train` and `make test`; each bootstraps .venv from plain python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The report tests render HTML in Debian's headless chromium.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: train test lint clean postgresql

# Rebuilt when missing or when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,dask]'
	@touch $(STAMP)

train: $(STAMP)
	$(PY) -m training $(ARGS)

# One worker per core; a module's tests stay on one worker, so its fixtures (a
# simulated cohort, a trained model) are built once.
PYTEST_ARGS ?= -n auto --dist loadfile
test: $(STAMP) $(CHROMIUM) postgresql
	$(PY) -m pytest $(PYTEST_ARGS)

# The distributed tests start a throwaway PostgreSQL server (Debian's package) for
# Optuna and MLflow stores shared by many workers.
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null || { echo "install Debian's postgresql package: the distributed tests start a server"; exit 1; }; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; }

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Debian's chromium package: the report tests render in it"; exit 1; }
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core

lint: $(STAMP)
	$(PY) -m ruff check common features models training serve tests experiments
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) mlruns mlflow.db optuna.db .mlflow.db.lock .optuna.db.lock outputs data/simulated
