# Set-up is automatic: every target creates .venv on first use and reuses it afterwards.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: demo test lint bench
demo: $(STAMP)  ## the main job: import the real data in ../shared/data and backtest sma_cross on it
	$(VENV)/bin/smart-trader demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src

test: lint  ## lint, type-check, then the whole test suite
	$(VENV)/bin/pytest -q -n 2

bench: $(STAMP)  ## benchmarks; results go to docs/benchmarks.md by hand
	$(PY) benchmarks/run.py
