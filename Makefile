# Driftwatch: `make run` starts the local stack, `make test` runs the test suite.
# Both set up the virtual environment (and the Debian packages the tests use, where apt can install them) first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The bundled digits demo has 360 held-out rows: windows of 300 never repeat a row.
WINDOW ?= 300
# Where the local stack listens (`make run MODEL_PORT=18200 MONITOR_PORT=18201` where 8000/8001 are taken).
MODEL_PORT ?= 8000
MONITOR_PORT ?= 8001

.PHONY: setup run test test-fast lint typecheck check bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

setup: $(STAMP)
	@scripts/install-system-packages.sh

run: setup
	$(BIN)/driftwatch up --window-size $(WINDOW) --model-port $(MODEL_PORT) --monitor-port $(MONITOR_PORT)

test: setup
	$(BIN)/pytest -q

test-fast: setup
	$(BIN)/pytest -q -m "not e2e and not docker"

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

bench: setup
	$(BIN)/python benchmarks/drift.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
