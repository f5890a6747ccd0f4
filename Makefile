# Thumbnail Pipeline Harness. Start here:  make up && make test      (make help lists everything)
SHELL := /bin/bash
.DEFAULT_GOAL := help

# ---------------------------------------------------------------------------------------------------------------
# Python discovery: PYTHON=..., else a working python3.13 on PATH, else pyenv's 3.13, else a working python3.12.
# ---------------------------------------------------------------------------------------------------------------
define find_python
$(strip $(or \
  $(shell command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys; assert sys.version_info[:2]==(3,13)' >/dev/null 2>&1 && command -v python3.13), \
  $(shell r=$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv); ls -d $$r/versions/3.13*/bin/python3.13 2>/dev/null | sort -V | tail -n 1), \
  $(shell command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' >/dev/null 2>&1 && command -v python3.12)))
endef
ifeq ($(origin PYTHON),undefined)
PYTHON := $(call find_python)
endif
# LocalStack 2026.3 needs exactly Python 3.13.
ifeq ($(origin EMULATOR_PYTHON),undefined)
EMULATOR_PYTHON := $(or $(filter %3.13,$(PYTHON)),$(strip $(shell command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys' >/dev/null 2>&1 && command -v python3.13)),$(shell r=$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv); ls -d $$r/versions/3.13*/bin/python3.13 2>/dev/null | sort -V | tail -n 1))
endif

VENV      := .venv
EVENV     := .venv-emulator
PY        := $(VENV)/bin/python
EPY       := $(EVENV)/bin/python
HARNESS   := $(PY) -m harness
PIP_QUIET ?= -q
# Silence the "Location ... is ignored" noise some pip configurations print; real errors still show.
# (pip's own exit status is kept: grep finding nothing to print is not an error)
PIPFILTER = 2>&1 | { grep -v -E "is ignored: it is neither a file nor a directory" || true; }; test $${PIPESTATUS[0]} -eq 0

export HARNESS_PORT ?= 4566

.PHONY: help check-python venv emulator-venv install up down status logs test test-unit typecheck fixtures \
        clean clean-state

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  make %-16s %s\n",$$1,$$2}'

check-python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: no Python 3.13 found (tried PYTHON=, python3.13 on PATH, pyenv versions 3.13.*)." >&2; \
	  echo "       Install CPython 3.13 (e.g. 'pyenv install 3.13' or your OS package python3.13 + python3.13-venv)," >&2; \
	  echo "       or pass it explicitly: make up PYTHON=/path/to/python3.13" >&2; exit 2; fi
	@if [ -z "$(EMULATOR_PYTHON)" ]; then \
	  echo "error: the embedded emulator (localstack-core 2026.3.0) needs CPython 3.13; none found." >&2; \
	  echo "       Install it (pyenv install 3.13) or pass EMULATOR_PYTHON=/path/to/python3.13, or use EMULATOR=docker." >&2; exit 2; fi

# ---- environments -------------------------------------------------------------------------------------------
$(VENV)/.installed: pyproject.toml | check-python
	@echo "==> project venv ($(VENV)) with $(PYTHON)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install $(PIP_QUIET) --upgrade pip $(PIPFILTER) || echo "(pip upgrade skipped)"
	@# Dependencies only, not the project itself: this interpreter also runs Lambda code (the 'layer'), and a
	@# handler must not be able to import harness/ or infra/ here when it could not in AWS.
	@$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	    print("\n".join(p["dependencies"] + [r for x in ("dev", "cdk", "bench") for r in p["optional-dependencies"][x]]))' \
	    > $(VENV)/requirements.txt
	@$(PY) -m pip install $(PIP_QUIET) -r $(VENV)/requirements.txt $(PIPFILTER)
	@touch $@

$(EVENV)/.installed: harness/requirements/emulator.txt harness/requirements/emulator-constraints.txt harness/executor/pyproject.toml | check-python
	@echo "==> emulator venv ($(EVENV)) with $(EMULATOR_PYTHON): localstack-core 2026.3.0 + local-process executor"
	@test -x $(EPY) || $(EMULATOR_PYTHON) -m venv $(EVENV)
	@$(EPY) -m pip install $(PIP_QUIET) -r harness/requirements/emulator.txt \
	    -c harness/requirements/emulator-constraints.txt $(PIPFILTER)
	@$(EPY) -m pip install $(PIP_QUIET) --no-deps -e harness/executor $(PIPFILTER)
	@$(EPY) -c 'import importlib.metadata as m; v=m.version("localstack-core"); assert v=="2026.3.0", v'
	@touch $@

venv: $(VENV)/.installed ## create/update the project venv
emulator-venv: $(EVENV)/.installed ## create/update the emulator venv (LocalStack + executor plugin)
install: venv emulator-venv ## both environments

# ---- emulator lifecycle -------------------------------------------------------------------------------------
up: install ## start the emulator (reused if running), deploy the pipeline stack, print the endpoint
	@$(HARNESS) up

down: ## stop the emulator and every Lambda runtime process
	@if [ -x $(PY) ]; then $(HARNESS) down; else echo "nothing to stop (no venv)"; fi

status: ## services, deployed resources, queue and DLQ depths
	@$(HARNESS) status

logs: ## follow the emulator log
	@tail -n 100 -f $${HARNESS_HOME:-.harness}/localstack.log

# ---- tests --------------------------------------------------------------------------------------------------
test: install fixtures ## the whole suite: unit, contract, integration (starts or reuses the emulator)
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## unit + contract tests only (no emulator)
	@$(PY) -m pytest tests/unit tests/contract $(PYTEST_ARGS)

typecheck: venv ## mypy over harness/, handlers/, infra/, fixtures/, benchmarks/ (also part of make test)
	@$(PY) -m mypy

fixtures: venv ## generate the deterministic fixture corpus into fixtures/generated
	@$(PY) -m fixtures.generate --out fixtures/generated

clean-state: down ## remove emulator state and logs (.harness)
	rm -rf $${HARNESS_HOME:-.harness}

clean: clean-state ## remove venvs, state, caches
	rm -rf $(VENV) $(EVENV) node_modules benchmarks/node_modules infra/cdk/node_modules .pytest_cache .benchmarks

# ---- stack: deploy / destroy / lint / CDK (issue 3) ---------------------------------------------------------
CDK_DIR       := infra/cdk
CDK_STAMP     := $(CDK_DIR)/node_modules/.installed
STACK         ?= thumbs
STACK_PROFILE ?= default
# quiet, offline CDK: no telemetry, no version check, no node end-of-life banner from jsii
CDK_ENV       := CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=18,20 JSII_DEPRECATED=quiet
.PHONY: deploy destroy lint-stack synth deploy-aws destroy-aws cdk-cli

$(CDK_STAMP): $(CDK_DIR)/package.json $(CDK_DIR)/package-lock.json
	@command -v node >/dev/null 2>&1 || { echo "error: node (20+) is needed for the aws-cdk CLI (apt-get install nodejs)" >&2; exit 2; }
	@echo "==> aws-cdk CLI (npm ci in $(CDK_DIR))"
	@cd $(CDK_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

cdk-cli: $(CDK_STAMP) ## install the pinned aws-cdk CLI into infra/cdk/node_modules (npm)

# `make install` (and so `make test`) also installs the CDK CLI: the synth/cfn-lint/parity tests need it.
install: cdk-cli

deploy: venv ## deploy or update the stack on the running emulator (STACK=thumbs STACK_PROFILE=default|seed)
	@$(PY) -m infra deploy --stack $(STACK) --profile $(STACK_PROFILE)

destroy: venv ## delete every resource of the stack from the emulator
	@$(PY) -m infra destroy --stack $(STACK)

lint-stack: venv ## lint the stack definition against AWS guidance (STACK_PROFILE=seed shows the seed's mistakes)
	@$(PY) -m infra lint --stack $(STACK) --profile $(STACK_PROFILE)

synth: venv cdk-cli ## cdk synth (offline) into infra/cdk.out, then cfn-lint the template
	@$(CDK_ENV) $(PY) -m infra synth --stack $(STACK) --profile $(STACK_PROFILE)
	@$(VENV)/bin/cfn-lint infra/cdk.out/$(STACK)-pipeline.template.json && echo "cfn-lint: clean"

deploy-aws: venv cdk-cli package ## deploy to REAL AWS with CDK (needs credentials, e.g. AWS_PROFILE=..., a bootstrapped account and `make package`; never in CI)
	@if [ -n "$$CI" ]; then echo "error: deploy-aws talks to real AWS and never runs in CI" >&2; exit 2; fi
	@test -f .package/lambda-arm64.zip || { echo "error: .package/lambda-arm64.zip is missing: run 'make package' first" >&2; exit 2; }
	@$(PY) -m infra lint --stack $(STACK) --profile $(STACK_PROFILE)
	cd $(CDK_DIR) && $(CDK_ENV) ./node_modules/.bin/cdk deploy $(STACK)-pipeline --require-approval broadening \
	    -c stack=$(STACK) -c profile=$(STACK_PROFILE) -c artifact=$(CURDIR)/.package/lambda-arm64.zip

destroy-aws: venv cdk-cli ## delete the CDK stack from REAL AWS (buckets are retained: empty and delete them yourself)
	@if [ -n "$$CI" ]; then echo "error: destroy-aws talks to real AWS and never runs in CI" >&2; exit 2; fi
	cd $(CDK_DIR) && $(CDK_ENV) ./node_modules/.bin/cdk destroy $(STACK)-pipeline -c stack=$(STACK) -c profile=$(STACK_PROFILE)


# ---- benchmarks (issue 5) -----------------------------------------------------------------------------------
.PHONY: bench bench-quick bench-deps
BENCH_ARGS ?=
BENCH_NODE_STAMP := benchmarks/node_modules/.installed

# sharp (the reference) from the npm registry into benchmarks/node_modules; without npm the benchmark skips sharp.
$(BENCH_NODE_STAMP): benchmarks/package.json benchmarks/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "==> sharp reference (npm ci in benchmarks/)"; \
	  cd benchmarks && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else \
	  echo "bench-deps: npm/node not found: the sharp reference will be skipped (install Node.js >= 18 to include it)"; \
	fi

bench-deps: $(BENCH_NODE_STAMP) ## install the sharp reference (npm) into benchmarks/node_modules

bench: venv fixtures bench-deps ## full benchmark, < 10 min: benchmarks/results/<timestamp>/ (+ results/latest)
	@$(PY) -m benchmarks $(BENCH_ARGS)

bench-quick: venv fixtures bench-deps ## quick benchmark, < 2 min: 3 inputs, fewer rounds and memory ceilings
	@$(PY) -m benchmarks --quick $(BENCH_ARGS)


# ---- load (issue 6) -----------------------------------------------------------------------------------------
SCENARIO ?= steady
LOAD_ARGS ?=
.PHONY: load load-list load-test
load: install fixtures ## load test a scenario: make load SCENARIO=steady|spike|soak|smoke|saturate [LOAD_ARGS="--rate 8"]
	@$(PY) -m harness.load $(SCENARIO) $(LOAD_ARGS)

load-list: venv ## list the load scenarios (benchmarks/scenarios/*.toml)
	@$(PY) -m harness.load --list

load-test: install fixtures ## the load harness' own tests (unit + the ~100-upload accounting run)
	@$(PY) -m pytest tests/unit/test_load_*.py tests/integration/test_load_short.py $(PYTEST_ARGS)


# ---- chaos (issue 7) ----------------------------------------------------------------------------------------
CHAOS ?= all
CHAOS_ARGS ?=
.PHONY: chaos chaos-list redrive chaos-test
chaos: install ## fault scenarios under load + invariant table: make chaos [CHAOS=poison|crash|...] [CHAOS_ARGS="--scale 0.5"]
	@$(PY) -m harness.chaos $(CHAOS) $(CHAOS_ARGS)

chaos-list: venv ## list the chaos scenarios
	@$(PY) -m harness.chaos list

redrive: venv ## move DLQ messages back to the queue after a fix: make redrive [STACK=thumbs] [REDRIVE_ARGS="--code ACCESS_DENIED"]
	@$(PY) -m harness.chaos redrive --stack $${STACK:-thumbs} $(REDRIVE_ARGS)

chaos-test: install ## the chaos harness' own tests (unit + the four integration checks)
	@$(PY) -m pytest tests/unit/test_chaos_*.py tests/integration/test_chaos*.py $(PYTEST_ARGS)

# ---- ARM64 package (issue 8) --------------------------------------------------------------------------------
# The Lambda zip (handlers + Pillow, pyvips, pyvips-binary, Powertools from manylinux wheels for python3.13), checked
# for size limits, ELF machine, GLIBC <= 2.34 and CPython ABI. test-arm64 runs it under qemu-aarch64 (docs/arm64-and-aws.md).
ARCH ?= arm64

.PHONY: package arm64-tools test-arm64

package: venv ## build + check the Lambda zip for ARCH=arm64 (default) or ARCH=x86_64 into .package/
	@$(PY) -m infra.artifact --arch $(ARCH)

ARM64_TOOLS_OK = command -v qemu-aarch64-static >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1

arm64-tools: ## install qemu-user-static + mmdebstrap with apt-get if missing (as root; else says what to run)
	@if ! { $(ARM64_TOOLS_OK); }; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "==> apt-get install qemu-user-static mmdebstrap (for the arm64 tests)"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static mmdebstrap >/dev/null; \
	  else \
	    echo "warning: qemu-user-static/mmdebstrap missing and not root: the arm64 tests will skip" \
	         "(sudo apt-get install qemu-user-static mmdebstrap)" >&2; \
	  fi; \
	fi

# The arm64 tests take about a minute on an idle 2-core machine, so they are part of `make test` too.
test: arm64-tools

test-arm64: venv arm64-tools ## arm64 zip under qemu (neoverse-n1) vs native x86_64: same thumbnails; bad zips fail
	@$(ARM64_TOOLS_OK) || { echo "error: qemu-aarch64-static and mmdebstrap are needed (sudo make arm64-tools)" >&2; exit 2; }
	@$(PY) -m pytest tests/arm64 -m arm64 $(PYTEST_ARGS)
