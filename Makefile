# WiseRock ELT. `make run` loads both sources into PostgreSQL; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
PLUGINS_STAMP := .meltano/.installed
ORCH_VENV := orchestrate/.venv
ORCH_STAMP := $(ORCH_VENV)/.installed

.PHONY: run test bench bench-api bench-large install orchestrate orchestrate-worker install-orchestrate stop-db clean help
help:
	@echo "make run    install what is missing, then load both sources into PostgreSQL"
	@echo "make test   install what is missing, then run every test"
	@echo "make bench  measure load speed and memory (writes bench/results.md)"
	@echo "make bench-api  the API part of make bench alone, without the CSV part (writes bench/results-api.md)"
	@echo "make bench-large  the CSV path at 10M rows against COPY, memory at 1M and 10M (writes bench/results-large.md)"
	@echo "make orchestrate  Dagster's web UI and daemon: the schedules of meltano.yml run by themselves"
	@echo "make orchestrate-worker  one Celery worker for Dagster's steps (with DAGSTER_CELERY_BROKER_URL)"
	@echo "make stop-db  stop the embedded PostgreSQL started by make run"

install: $(PLUGINS_STAMP)

# Reinstalled only when a dependency list changes.
$(VENV_STAMP): requirements-dev.txt pyproject.toml wiserock-sandbox/pyproject.toml tap-wiserock-api/pyproject.toml tap-wiserock-csv/pyproject.toml target-wiserock-postgres/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# `meltano install` works offline: the loader's definition is in plugins/loaders/*.lock.
# UV_COMPILE_BYTECODE: the plugins' environments get their .pyc files at install time; without
# them (PYTHONDONTWRITEBYTECODE set, as on CI) every tap and loader process compiles singer-sdk
# from source again (0.7-1 s each).
$(PLUGINS_STAMP): $(VENV_STAMP) meltano.yml plugins/loaders/target-postgres-meltanolabs--meltanolabs.lock pyproject.toml tap-wiserock-api/pyproject.toml tap-wiserock-csv/pyproject.toml target-wiserock-postgres/pyproject.toml
	UV_COMPILE_BYTECODE=1 $(BIN)/meltano install
	touch $@

run: install
	$(BIN)/wiserock-elt run

test: install $(ORCH_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q wiserock-sandbox/tests
	$(BIN)/python -m pytest -q tap-wiserock-api/tests
	$(BIN)/python -m pytest -q tap-wiserock-csv/tests
	$(BIN)/python -m pytest -q target-wiserock-postgres/tests
	$(BIN)/python -m pytest -q tests
	$(ORCH_VENV)/bin/python -m pytest -q orchestrate/tests

# Dagster gets its own environment (with the project's uv): in .venv it would downgrade
# python-dateutil. It holds the project's elt/ and both taps (for their settings and naming rules).
$(ORCH_STAMP): $(VENV_STAMP) orchestrate/requirements.txt orchestrate/requirements-test.txt orchestrate/pyproject.toml pyproject.toml tap-wiserock-csv/pyproject.toml tap-wiserock-api/pyproject.toml wiserock-sandbox/pyproject.toml
	test -x $(ORCH_VENV)/bin/python || $(BIN)/uv venv --quiet --python $(PYTHON) $(ORCH_VENV)
	UV_COMPILE_BYTECODE=1 $(BIN)/uv pip install --quiet --python $(ORCH_VENV)/bin/python \
		-r orchestrate/requirements.txt -r orchestrate/requirements-test.txt
	touch $@

install-orchestrate: install $(ORCH_STAMP)

orchestrate: install-orchestrate
	$(BIN)/python orchestrate/serve.py

orchestrate-worker: install-orchestrate
	$(BIN)/python orchestrate/serve.py worker

# The peers (dlt, sling) get their own environment so that they never touch the project's.
BENCH_VENV := bench/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed
$(BENCH_STAMP): bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements.txt
	touch $@

bench: install $(BENCH_STAMP)
	$(BIN)/python -m bench

# The API part alone (BENCH_NOTES notes, 300,000 by default), without the CSV part.
bench-api: install $(BENCH_STAMP)
	$(BIN)/python -m bench api

# No peers here: the project's own paths at scale (about 10 minutes, 3 GB of temporary files).
bench-large: install
	$(BIN)/python -m bench.large

stop-db:
	$(BIN)/wiserock-elt stop-db

clean:
	rm -rf $(VENV) .meltano $(BENCH_VENV) $(ORCH_VENV)
