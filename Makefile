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
PIPFILTER := 2>&1 | grep -v -E "is ignored: it is neither a file nor a directory" || true

export HARNESS_PORT ?= 4566

.PHONY: help check-python venv emulator-venv install up down status logs test test-unit test-fast fixtures \
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
	@$(PY) -m pip install $(PIP_QUIET) --upgrade pip $(PIPFILTER)
	@set -o pipefail; $(PY) -m pip install $(PIP_QUIET) -e '.[dev,cdk,bench]' 2>&1 | grep -v -E "is ignored: it is neither a file nor a directory"
	@touch $@

$(EVENV)/.installed: harness/requirements/emulator.txt harness/requirements/emulator-constraints.txt harness/executor/pyproject.toml | check-python
	@echo "==> emulator venv ($(EVENV)) with $(EMULATOR_PYTHON): localstack-core 2026.3.0 + local-process executor"
	@test -x $(EPY) || $(EMULATOR_PYTHON) -m venv $(EVENV)
	@set -o pipefail; $(EPY) -m pip install $(PIP_QUIET) -r harness/requirements/emulator.txt \
	    -c harness/requirements/emulator-constraints.txt 2>&1 | grep -v -E "is ignored: it is neither a file nor a directory"
	@set -o pipefail; $(EPY) -m pip install $(PIP_QUIET) --no-deps -e harness/executor 2>&1 | grep -v -E "is ignored: it is neither a file nor a directory"
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

fixtures: venv ## generate the deterministic fixture corpus into fixtures/generated
	@$(PY) -m fixtures.generate --out fixtures/generated

clean-state: down ## remove emulator state and logs (.harness)
	rm -rf $${HARNESS_HOME:-.harness}

clean: clean-state ## remove venvs, state, caches
	rm -rf $(VENV) $(EVENV) node_modules .pytest_cache .benchmarks

# ---- stack: deploy / destroy / lint / CDK (issue 3) ---------------------------------------------------------

# ---- benchmarks (issue 5) -----------------------------------------------------------------------------------

# ---- load (issue 6) -----------------------------------------------------------------------------------------

# ---- chaos (issue 7) ----------------------------------------------------------------------------------------

# ---- ARM64 package (issue 8) --------------------------------------------------------------------------------
