# One command gates a change: `make test`. One command shows the whole pipeline: `make run`.
# Both install what they need into .venv (Python 3.13, found on PATH or through pyenv).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13: `python3.13` on PATH, else any pyenv-installed 3.13.x.
PYTHON ?= $(shell for c in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { command -v "$$c"; break; }; done)
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install run test soak lint format typecheck security bandit checkov pytest validate build bench events test-events clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Every venv is made with $(PYTHON): an override (`make install PYTHON=python3.11`) that is not 3.13 stops here,
# before anything is installed (the code's syntax needs 3.13).
CHECK_PYTHON = @test -n "$(PYTHON)" || { echo "Python 3.13 not found: put python3.13 on PATH (or install it with pyenv)"; \
	exit 1; }; "$(PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { \
	echo "PYTHON=$(PYTHON) is not Python 3.13 ($$("$(PYTHON)" --version 2>/dev/null || echo 'not found')): name a 3.13 interpreter"; \
	exit 1; }
# pip's output as one dot per package (its warnings and errors still reach stderr): short CI logs, visible progress.
DOTS := awk '/^(Collecting|Requirement already satisfied|Obtaining)/ { printf "."; fflush() } END { print " done" }'

$(STAMP): pyproject.toml layers/shared/requirements.txt layers/shared/cli-requirements.txt
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	@echo "Upgrading pip in $(VENV)"
	@set -o pipefail; $(BIN)/python -m pip install --upgrade "pip>=25.1" | $(DOTS)
	@echo "Installing the project (editable: the crm-sphere CLI), its layer's libraries and the dev tools into $(VENV)"
	@set -o pipefail; $(BIN)/python -m pip install --progress-bar off -e . --group dev | $(DOTS)
	@touch $@

$(SAM_STAMP):
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(SAM_VENV)/bin/python -m pip install --quiet "aws-sam-cli==1.170.0"
	@touch $@

# checkov pins dozens of packages of its own (boto3 among them): like the SAM CLI, it gets a venv of its own.
# The stamp names the version, so changing CHECKOV_VERSION reinstalls.
$(CHECKOV_STAMP):
	$(CHECK_PYTHON)
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	@touch $@

install: $(STAMP) ## Create .venv: the project (editable, with the crm-sphere CLI), its libraries and the dev tools

# The console prints each request and its events' outcomes; the functions' JSON logs go to make-run.log
# (RUN_LOG=path elsewhere), or to the console with LOGS=1.
run: $(STAMP) ## Start the local stack on http://127.0.0.1:3000, play the demo, serve until Ctrl-C (LOGS=1: logs here)
	PYTHONPATH=layers/shared:functions:tests $(BIN)/python -m devstack

test: lint typecheck security pytest validate build ## Everything CI checks: lint, format, types, security scans, tests with coverage, template lint, build

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

security: bandit checkov ## Security scans: bandit on the shipped code, checkov on template.yaml

# Every finding is fixed, or suppressed on its line with a reason: `# nosec BNNN # why` in the code,
# a `Metadata: checkov: skip:` entry with a comment on the template's resource.
bandit: $(STAMP) ## bandit on what the layer and the functions ship (config: pyproject.toml [tool.bandit])
	$(BIN)/bandit -c pyproject.toml -r layers/shared/webhook_adapter functions -q

# --skip-download: offline, no Prisma Cloud guidelines.
checkov: $(CHECKOV_STAMP) ## checkov on template.yaml (SAM resources included), in .venv-checkov
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet

pytest: $(STAMP) ## pytest (unit, integration on moto, end to end over HTTP) with coverage
	$(BIN)/pytest --cov --cov-report=term

validate: $(SAM_STAMP) ## sam validate --lint on template.yaml
	PATH="$(abspath $(SAM_VENV))/bin:$$PATH" sam validate --lint

build: $(SAM_STAMP) ## sam build (needs python3.13 on PATH, which this target arranges)
	PATH="$(abspath $(SAM_VENV))/bin:$$PATH" sam build

# Never part of `make test` (its smoke test runs the quick mode, BENCH_QUICK=1). About 5-10 minutes on 2 cores.
bench: $(STAMP) build ## Measure cold starts, receive CPU, delivery, cost and memory of the built code: writes BENCHMARKS.md
	PYTHONPATH=layers/shared:functions:tests $(BIN)/python -m bench

# Tracked events/ files are signed at a fixed time (same bytes on every run); events/signed/ (ignored) gets
# each source's request signed now with your variables' secrets.
events: $(STAMP) ## Write events/ (fixed, tracked) and events/signed/ (signed now, for sam local invoke)
	PYTHONPATH=layers/shared:functions:tests $(BIN)/python -m devstack.sign_events

# Each events/ file becomes a shareable test event of the function it is for (the Lambda console's Test tab lists it;
# `sam remote invoke --test-event-name` runs it): receive-*/relay-* -> receive, deliver-* -> deliver, replay-* -> replay.
STACK ?= crm-sphere-webhooks-dev
SAM ?= $(abspath $(SAM_VENV))/bin/sam
test-events: $(SAM_STAMP) ## Publish every events/ file as a shareable test event of its function in STACK (deployed)
	@set -e; for file in events/*.json; do \
		name=$$(basename "$$file" .json); \
		case "$$name" in receive-*|relay-*) function=ReceiveFunction;; deliver-*) function=DeliverFunction;; \
			replay-*) function=ReplayFunction;; *) echo "no function for $$file"; exit 1;; esac; \
		echo "$$file -> $$function ($$name)"; \
		"$(SAM)" remote test-event put "$$function" --stack-name "$(STACK)" \
			--name "$$name" --file "$$file" --force; \
	done

clean: ## Remove virtual environments, build output and caches
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
