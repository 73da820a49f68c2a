# Two commands on a fresh machine: `make demo` and `make test`. Both make .venv from pinned versions.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OMP_WAIT_POLICY := PASSIVE

.PHONY: demo test lint format clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==26.3
	$(BIN)/python -m pip install -q -r requirements/constraints.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/telco_churn/setup_data.py
	$(BIN)/retrainer run examples/telco_churn/pipeline.yaml
	$(BIN)/retrainer run examples/telco_churn/pipeline.yaml
	$(BIN)/retrainer models telco-churn

test: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

format: $(STAMP)
	$(BIN)/ruff format src tests examples
	$(BIN)/ruff check --fix src tests examples

clean:
	rm -rf .retrainer .pytest_cache .ruff_cache
