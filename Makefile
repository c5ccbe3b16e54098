# TaskLINKr — the two commands: `make run` (the platform) and `make test` (the suite).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install run test test-unit test-integration test-e2e test-contract test-faults lint topology bench-relay bench-matching bench-billing soak clean

help:
	@echo "make run    start the whole platform as processes (embedded SecantusDB unless TASKLINKR_MONGO_URI is set)"
	@echo "make test   lint, architecture rules, unit, contract, integration and end-to-end tests"
	@echo "make demo   against the running platform: a small world walked from a posting to a paid invoice"

$(STAMP): pyproject.toml requirements.lock requirements-test.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-test.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tasklinkr up

# Against the platform `make run` started (same settings): a new world each time, over the public API.
.PHONY: demo
demo: $(STAMP)
	$(VENV)/bin/tasklinkr demo

lint: $(STAMP)
	$(VENV)/bin/ruff check shared services tests examples
	$(VENV)/bin/lint-imports

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

test-contract: $(STAMP)
	$(PY) -m pytest tests/contract -q

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e -q

# Fault tests: every message counted (lost, doubled, unexpected) under kills, cuts and outages. Also in `make test`.
test-faults: $(STAMP)
	$(PY) -m pytest tests/faults -q -s

test: lint
	$(PY) -m pytest tests -q -ra --durations=15

# Benchmarks print their figures; they are never part of the test suite.
bench-relay: $(STAMP)
	$(PY) -m bench.relay

bench-matching: $(STAMP)
	$(PY) -m bench.matching

bench-billing: $(STAMP)
	$(PY) -m bench.billing

soak: $(STAMP)
	$(PY) -m bench.soak

topology: $(STAMP)
	$(VENV)/bin/tasklinkr topology apply

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache
