# TaskLINKr — the two commands: `make run` (the platform) and `make test` (the suite).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install run broker-management test promtool test-unit test-integration test-e2e test-contract test-faults lint topology bench-relay bench-relay-idle bench-matching bench-billing bench-lanes bench-scaling soak clean

help:
	@echo "make run    start the whole platform as processes (embedded SecantusDB unless TASKLINKR_MONGO_URI is set)"
	@echo "make test   lint, architecture rules, unit, contract, integration and end-to-end tests"
	@echo "make demo   against the running platform: a small world walked from a posting to a paid invoice"

$(STAMP): pyproject.toml requirements.lock requirements-test.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-test.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@# The browser tests (tests/browser) drive Debian's headless Chromium through the web console.
	@command -v chromedriver >/dev/null || (apt-get update && apt-get install -y chromium chromium-driver)
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP) broker-management
	$(VENV)/bin/tasklinkr up

# `tasklinkr tenant-access` (tenants' own broker users, docs/integration.md) works through RabbitMQ's management
# API: when it does not answer and the broker is this machine's, enable its plugin; otherwise say what to run.
MANAGEMENT_URL = $(or $(TASKLINKR_RABBITMQ_MANAGEMENT_URL),http://127.0.0.1:15672)
broker-management:
	@if curl -s -o /dev/null -m 3 $(MANAGEMENT_URL)/api/overview; then exit 0; fi; \
	if rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1; then \
	  echo "make: enabled RabbitMQ's rabbitmq_management plugin (tasklinkr tenant-access and the tests use its API)"; \
	  for _ in $$(seq 1 30); do curl -s -o /dev/null -m 3 $(MANAGEMENT_URL)/api/overview && exit 0; sleep 1; done; \
	  echo "make: the management API still does not answer at $(MANAGEMENT_URL)"; \
	else \
	  echo "make: RabbitMQ's management API does not answer at $(MANAGEMENT_URL); tasklinkr tenant-access needs it:"; \
	  echo "      run 'sudo rabbitmq-plugins enable rabbitmq_management' on the broker's host, or set"; \
	  echo "      TASKLINKR_RABBITMQ_MANAGEMENT_URL"; \
	fi

# Against the platform `make run` started (same settings): a new world each time, over the public API.
.PHONY: demo
demo: $(STAMP)
	$(VENV)/bin/tasklinkr demo

lint: $(STAMP)
	$(VENV)/bin/ruff check shared services tests examples bench deploy contracts-schema
	$(VENV)/bin/lint-imports

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

test-contract: $(STAMP)
	$(PY) -m pytest tests/contract -q

test-integration: $(STAMP) broker-management
	$(PY) -m pytest tests/integration -q

test-e2e: $(STAMP) broker-management
	$(PY) -m pytest tests/e2e -q

# Fault tests: every message counted (lost, doubled, unexpected) under kills, cuts and outages. Also in `make test`.
test-faults: $(STAMP) broker-management
	$(PY) -m pytest tests/faults -q -s

# promtool (from Debian's `prometheus` package) unit-tests the alert rules in deploy/observability/prometheus.
promtool:
	@command -v promtool >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)

# The fault tests run beside the rest: they start broker nodes and databases of their own and spend most of their
# time waiting for kills, cuts and restarts to play out. Their report follows the rest's; either failing fails.
FAULTS_LOG := var/test-faults.log
test: lint promtool broker-management
	@mkdir -p var
	@$(PY) -m pytest tests/faults -q -ra --durations=10 -p no:cacheprovider > $(FAULTS_LOG) 2>&1 & faults=$$!; \
	  started=$$SECONDS; \
	  $(PY) -m pytest tests -q -ra --durations=15 --ignore=tests/faults; rest=$$?; \
	  echo "make test: the suite without the fault tests took $$((SECONDS - started)) s; waiting for the fault tests"; \
	  wait $$faults; faulted=$$?; \
	  echo "make test: fault tests (tests/faults) finished $$((SECONDS - started)) s after the start:"; \
	  cat $(FAULTS_LOG); \
	  if [ $$rest -ne 0 ] || [ $$faulted -ne 0 ]; then \
	    echo "make test: FAILED (suite exit $$rest, fault tests exit $$faulted)" >&2; exit 1; fi

# Benchmarks print their figures; they are never part of the test suite.
bench-relay: $(STAMP)
	$(PY) -m bench.relay

bench-relay-idle: $(STAMP)
	$(PY) -m bench.relay_idle

# ARGS: e.g. make bench-matching ARGS="--skip broker" (the in-process sections only)
bench-matching: $(STAMP)
	$(PY) -m bench.matching $(ARGS)

bench-billing: $(STAMP)
	$(PY) -m bench.billing

# `make bench-lanes ARGS="--seconds 15 --skip matching"` for a shorter run (`--help` lists the options).
bench-lanes: $(STAMP)
	$(PY) -m bench.lanes $(ARGS)

# `make bench-scaling ARGS=--quick` for a smaller market and backlog.
bench-scaling: $(STAMP)
	$(PY) -m bench.scaling $(ARGS)

soak: $(STAMP)
	$(PY) -m bench.soak

topology: $(STAMP)
	$(VENV)/bin/tasklinkr topology apply

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache
