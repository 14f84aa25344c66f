# One command gates a change: `make test`. One command shows the whole pipeline: `make run`.
# Both install what they need into .venv (Python 3.13, found on PATH or through pyenv).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13: `python3.13` on PATH, else any pyenv-installed 3.13.x.
PYTHON ?= $(shell for c in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { command -v "$$c"; break; }; done)
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install run test soak lint format typecheck pytest validate build events clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml layers/shared/requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found: put python3.13 on PATH (or install it with pyenv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -r layers/shared/requirements.txt --group dev
	@touch $@

$(SAM_STAMP):
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found: put python3.13 on PATH (or install it with pyenv)"; exit 1; }
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(SAM_VENV)/bin/python -m pip install --quiet "aws-sam-cli==1.170.0"
	@touch $@

install: $(STAMP) ## Create .venv with the runtime and development dependencies

run: $(STAMP) ## Start the local stack on http://127.0.0.1:3000, send the demo events, serve until Ctrl-C
	PYTHONPATH=layers/shared:functions:tests $(BIN)/python -m devstack

test: lint typecheck pytest validate build ## Everything CI checks: lint, format, types, tests with coverage, template lint, build

soak: $(STAMP) ## Chaos load: 10,000 webhook events, 500 contacts, a flaky Sphere, over the local stack (12-14 min here); prints its counts
	@# The grep drops the metric lines Powertools prints every 100 values even with metrics disabled.
	set -o pipefail; CHAOS_SOAK=1 $(BIN)/pytest -q -s -p no:cacheprovider \
		tests/chaos/test_chaos.py::test_soak_10000_events_over_500_contacts | grep -v '^{"_aws'

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy (strict on the shared package)
	$(BIN)/mypy layers/shared functions tests

pytest: $(STAMP) ## pytest (unit, integration on moto, end to end over HTTP) with coverage
	$(BIN)/pytest --cov --cov-report=term

validate: $(SAM_STAMP) ## sam validate --lint on template.yaml
	PATH="$(abspath $(SAM_VENV))/bin:$$PATH" sam validate --lint

build: $(SAM_STAMP) ## sam build (needs python3.13 on PATH, which this target arranges)
	PATH="$(abspath $(SAM_VENV))/bin:$$PATH" sam build

events: $(STAMP) ## Re-sign events/ with a fresh timestamp and the local secrets (for sam local invoke)
	PYTHONPATH=layers/shared:functions:tests $(BIN)/python -m devstack.sign_events

clean: ## Remove virtual environments, build output and caches
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage
