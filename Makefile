# feedhouse: everything installs from nothing on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DATADOCS := quality/datadocs
DATADOCS_STAMP := $(DATADOCS)/node_modules/.package-lock.json

.PHONY: install system-deps demo test test-fast lint ui bench audit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml setup.py dataflows/parse/fast_path.c | $(BIN)/python system-deps
	# bench extra too: a smoke test runs every benchmark (cryptofeed side included) on a
	# tiny corpus so the harness does not rot
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/pip check
	touch $(STAMP)

# The files Great Expectations' Data Docs load from CDNs (Bootstrap, jQuery,
# bootstrap-table, Font Awesome, Vega), from the npm registry at the versions in
# quality/datadocs/package-lock.json, so Data Docs render offline (quality/offline_docs.py).
$(DATADOCS_STAMP): $(DATADOCS)/package.json $(DATADOCS)/package-lock.json
	cd $(DATADOCS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(DATADOCS_STAMP)

# Mosquitto (MQTT tests and demo), Chromium (report rendering tests), npm (Data Docs
# assets) and gcc (the fast-path C module, dataflows/parse/fast_path.c) from Debian.
system-deps:
	@missing=""; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "installing$$missing with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
			systemctl disable --now mosquitto >/dev/null 2>&1 || true; \
		else \
			echo "missing system packages:$$missing (run as root or: sudo apt-get install$$missing)"; \
		fi; \
	fi

install: $(STAMP) system-deps
	@$(MAKE) -s --no-print-directory $(DATADOCS_STAMP)

# ruff, then the layer rule (import-linter contracts in pyproject.toml)
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# everything: unit and integration tests (processes, Mosquitto, WebSocket, Chromium)
test: install lint
	$(BIN)/pytest

# unit tests only: no subprocess, no broker, no browser (under 2 minutes), on two
# pytest-xdist workers: the unit tests are CPU-bound and independent (a store each)
test-fast: install lint
	$(BIN)/pytest -m "not integration" -n 2

demo: install
	$(BIN)/feedhouse demo

# The Dagster instance the demo records its runs in; with no feedhouse.yaml here (and no
# FEEDHOUSE_CONFIG), the demo's settings: its store, feeds and sample archive_dir.
ui: install
	DAGSTER_HOME=$(CURDIR)/.feedhouse/dagster_home; mkdir -p $$DAGSTER_HOME; \
	if [ -z "$$FEEDHOUSE_CONFIG" ] && [ ! -f feedhouse.yaml ] && [ -f .feedhouse/demo.yaml ]; then \
		export FEEDHOUSE_CONFIG=$(CURDIR)/.feedhouse/demo.yaml; fi; \
	DAGSTER_HOME=$$DAGSTER_HOME $(BIN)/dagster dev -m orchestration.definitions -h 127.0.0.1 -p 3000

# Benchmarks (bench/README.md): < 15 min, writes bench/results/latest.json + a dated copy.
# cryptofeed 2.4.1 installs beside our pins (checked with pip check); should a future
# version conflict, build it a venv of its own and point BENCH_CRYPTOFEED_PYTHON at it.
bench: install
	$(BIN)/python -m bench

# --strict: a dependency the vulnerability service cannot look up fails the audit
# (an index without PyPI's JSON API would otherwise report "no known vulnerabilities").
audit: install
	$(BIN)/pip install --quiet pip-audit
	$(BIN)/pip-audit --skip-editable --strict

clean:
	rm -rf $(VENV) .feedhouse reports .pytest_cache .ruff_cache $(DATADOCS)/node_modules
