# Two commands on a fresh machine: `make demo` and `make test`. Both make .venv from pinned versions.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch 2.13.0 lies in /opt/wheels on these machines; elsewhere pip finds it on its index.
PIP_INSTALL := $(BIN)/python -m pip install -q $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
export OMP_WAIT_POLICY := PASSIVE

.PHONY: demo test lint typecheck docs docs-serve format clean setup chromium bench

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/no-deps.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) pip==26.3
	$(PIP_INSTALL) -r requirements/constraints.txt
	$(PIP_INSTALL) --no-deps -r requirements/no-deps.txt
	$(PIP_INSTALL) --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/telco_churn/setup_data.py
	$(BIN)/retrainer run examples/telco_churn/pipeline.yaml
	$(BIN)/retrainer run examples/telco_churn/pipeline.yaml
	$(BIN)/retrainer models telco-churn

# Two workers (one per core); a file's tests stay on one worker, so its fixtures are built once.
# The 30 slowest tests are listed at the end: the suite's time budget is watched from CI's log.
test: lint chromium
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=30 $(PYTEST_ARGS)

# Every benchmark script in order, each printing its table (docs/benchmarks.md holds the latest):
# `make bench BENCH=overhead,extract` runs a subset. See benchmarks/run_all.py for the list.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH)

# The report's render test screenshots the HTML report in headless Chromium (Debian's package).
chromium:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else echo "the report render test needs /usr/bin/chromium: sudo apt-get install chromium"; fi; }

# CI's static checks: ruff (lint and format), mypy (strict on the modules pyproject.toml lists), and
# import-linter (the layering of docs/design.md). pre-commit runs the same on each commit.
lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks docs
	$(BIN)/ruff format --check src tests examples benchmarks docs
	$(BIN)/mypy
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The documentation site (MkDocs + Material + mkdocstrings): strict, so a broken link fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

format: $(STAMP)
	$(BIN)/ruff format src tests examples benchmarks docs
	$(BIN)/ruff check --fix src tests examples benchmarks docs

clean:
	rm -rf .retrainer .pytest_cache .ruff_cache .mypy_cache site
