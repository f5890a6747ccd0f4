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
UV_QUIET  ?= -q
# Lock files (make lock) that every install reads; INSTALLER=uv (default) or INSTALLER=pip install the same pins.
LOCK_DIR  := requirements
INSTALLER ?= uv
UV_VERSION := 0.13.8
# uv: a uv of exactly UV_VERSION on PATH, else the one bootstrapped into the project venv (pip install uv==UV_VERSION).
ifeq ($(origin UV),undefined)
UV := $(or $(shell command -v uv >/dev/null 2>&1 && uv --version 2>/dev/null | grep -qE '^uv $(subst .,\.,$(UV_VERSION))( |$$)' && command -v uv),$(VENV)/bin/uv)
endif
# Silence the "Location ... is ignored" noise some pip configurations print; real errors still show.
# (pip's own exit status is kept: grep finding nothing to print is not an error)
PIPFILTER = 2>&1 | { grep -v -E "is ignored: it is neither a file nor a directory" || true; }; test $${PIPESTATUS[0]} -eq 0

export HARNESS_PORT ?= 4566

.PHONY: help check-python venv emulator-venv install up down status logs test test-unit typecheck fixtures \
        clean clean-state lint lock uv-tool

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
# install_locked(python, lock file): install exactly the pinned, hash-checked distributions of a lock into a venv.
ifeq ($(INSTALLER),pip)
install_locked = $(1) -m pip install $(PIP_QUIET) --require-hashes -r $(2) $(PIPFILTER)
install_editable = $(1) -m pip install $(PIP_QUIET) --no-deps -e $(2) $(PIPFILTER)
else ifeq ($(INSTALLER),uv)
install_locked = $(UV) pip install $(UV_QUIET) --python $(1) --require-hashes -r $(2)
install_editable = $(UV) pip install $(UV_QUIET) --python $(1) --no-deps -e $(2)
else
$(error INSTALLER must be uv or pip, not '$(INSTALLER)')
endif

uv-tool: | check-python
	@if [ "$(UV)" = "$(VENV)/bin/uv" ] && ! $(VENV)/bin/uv --version 2>/dev/null | grep -qE '^uv $(subst .,\.,$(UV_VERSION))( |$$)'; then \
	  echo "==> uv $(UV_VERSION) into $(VENV)"; \
	  test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install $(PIP_QUIET) "uv==$(UV_VERSION)" $(PIPFILTER); \
	fi

$(VENV)/.installed: $(LOCK_DIR)/project.txt | check-python $(if $(filter uv,$(INSTALLER)),uv-tool)
	@echo "==> project venv ($(VENV)) with $(PYTHON)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# Dependencies only, not the project itself: this interpreter also runs Lambda code (the 'layer'), and a
	@# handler must not be able to import harness/ or infra/ here when it could not in AWS.
	@$(call install_locked,$(PY),$(LOCK_DIR)/project.txt)
	@touch $@

$(EVENV)/.installed: $(LOCK_DIR)/emulator.txt harness/executor/pyproject.toml | check-python $(if $(filter uv,$(INSTALLER)),uv-tool)
	@echo "==> emulator venv ($(EVENV)) with $(EMULATOR_PYTHON): localstack-core 2026.3.0 + local-process executor"
	@test -x $(EPY) || $(EMULATOR_PYTHON) -m venv $(EVENV)
	@$(call install_locked,$(EPY),$(LOCK_DIR)/emulator.txt)
	@$(call install_editable,$(EPY),harness/executor)
	@$(EPY) -c 'import importlib.metadata as m; v=m.version("localstack-core"); assert v=="2026.3.0", v'
	@touch $@

venv: $(VENV)/.installed ## create/update the project venv (from requirements/project.txt)
emulator-venv: $(EVENV)/.installed ## create/update the emulator venv (LocalStack + executor plugin, requirements/emulator.txt)
install: venv emulator-venv ## both environments

lock: uv-tool ## regenerate the lock files in requirements/ from pyproject.toml and harness/requirements/ (uv)
	@echo "==> lock files ($(LOCK_DIR)/) with uv $(UV_VERSION)"
	@$(PYTHON) -m common.lockgen --uv $(UV)

lint: venv ## ruff: lint and format check over the tree (also part of make test)
	@$(PY) -m ruff check --quiet . && echo "ruff check: clean"
	@$(PY) -m ruff format --check --quiet . && echo "ruff format: clean"

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
test: install fixtures lint ## the whole suite: unit, contract, integration (starts or reuses the emulator)
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
.PHONY: deploy destroy lint-stack synth deploy-aws destroy-aws cdk-cli deploy-cdk-local destroy-cdk-local

$(CDK_STAMP): $(CDK_DIR)/package.json $(CDK_DIR)/package-lock.json
	@command -v node >/dev/null 2>&1 || { echo "error: node (20+) is needed for the aws-cdk CLI (apt-get install nodejs)" >&2; exit 2; }
	@echo "==> aws-cdk CLI (npm ci in $(CDK_DIR))"
	@cd $(CDK_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

cdk-cli: $(CDK_STAMP) ## install the pinned aws-cdk CLI into infra/cdk/node_modules (npm)

# `make install` (and so `make test`) also installs the CDK CLI: the synth/cfn-lint/parity tests need it.
install: cdk-cli

deploy: venv ## deploy or update the stack on the running emulator (STACK=thumbs STACK_PROFILE=default|seed SET="code=artifact arch=arm64")
	@$(PY) -m infra deploy --stack $(STACK) --profile $(STACK_PROFILE) $(foreach kv,$(SET),--set $(kv))

destroy: venv ## delete every resource of the stack from the emulator
	@$(PY) -m infra destroy --stack $(STACK)

lint-stack: venv ## lint the stack definition against AWS guidance (STACK_PROFILE=seed shows the seed's mistakes)
	@$(PY) -m infra lint --stack $(STACK) --profile $(STACK_PROFILE)

synth: venv cdk-cli ## cdk synth (offline) into infra/cdk.out, then cfn-lint the template
	@$(CDK_ENV) $(PY) -m infra synth --stack $(STACK) --profile $(STACK_PROFILE)
	@$(VENV)/bin/cfn-lint infra/cdk.out/$(STACK)-pipeline.template.json && echo "cfn-lint: clean"

# The real `cdk bootstrap` + `cdk deploy` (assets published) of the AWS variant of the app: locally against the
# running emulator's CloudFormation (code-only zip: the executor adds the project venv as layer), on AWS with the
# caller's credentials (AWS_PROFILE or the standard chain) and the packaged arm64 zip. Same code: infra/cdk/deploy.py.
CDK_DEPLOY := $(PY) -m infra.cdk.deploy
deploy-cdk-local: venv cdk-cli ## cdk bootstrap + deploy of STACK to the running emulator ($$HARNESS_PORT) through CloudFormation
	@$(CDK_DEPLOY) deploy --endpoint http://127.0.0.1:$(HARNESS_PORT) --region us-east-1 --stack $(STACK) --profile $(STACK_PROFILE)

destroy-cdk-local: venv cdk-cli ## cdk destroy of STACK on the emulator, then empty and delete its retained buckets
	@$(CDK_DEPLOY) destroy --endpoint http://127.0.0.1:$(HARNESS_PORT) --region us-east-1 --stack $(STACK) --profile $(STACK_PROFILE)

deploy-aws: venv cdk-cli package ## deploy to REAL AWS with CDK (needs credentials, e.g. AWS_PROFILE=..., and `make package`; never in CI)
	@if [ -n "$$CI" ]; then echo "error: deploy-aws talks to real AWS and never runs in CI" >&2; exit 2; fi
	@test -f .package/lambda-arm64.zip || { echo "error: .package/lambda-arm64.zip is missing: run 'make package' first" >&2; exit 2; }
	@$(PY) -m infra lint --stack $(STACK) --profile $(STACK_PROFILE)
	@$(CDK_DEPLOY) deploy --stack $(STACK) --profile $(STACK_PROFILE) --code artifact --artifact $(CURDIR)/.package/lambda-arm64.zip

destroy-aws: venv cdk-cli ## delete the CDK stack from REAL AWS (buckets are retained: empty and delete them yourself)
	@if [ -n "$$CI" ]; then echo "error: destroy-aws talks to real AWS and never runs in CI" >&2; exit 2; fi
	@$(CDK_DEPLOY) destroy --stack $(STACK) --profile $(STACK_PROFILE)


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

# The whole pipeline (emulator + executor with its CPU share + handler) under the S3 latency model of the fault proxy:
# billed ms per image sequential vs overlapped, both backends, 128..3008 MB (issue 16). ~10-15 min; BENCH_PIPELINE_ARGS
# ="--quick" for a smoke run, "--target STACK [--endpoint-url URL] [--yes]" against a deployed stack.
BENCH_PIPELINE_ARGS ?=
.PHONY: bench-pipeline
bench-pipeline: install fixtures ## pipeline Power Tuning: billed ms/image seq vs overlap, per backend x memory (results/pipeline-latest)
	@PYTHONPATH=.:handlers $(PY) -m benchmarks.pipeline $(BENCH_PIPELINE_ARGS)

# The emulator's CPU per call and per image: LocalStack defaults (HARNESS_LEAN=0) vs our lean path, beside MiniStack,
# interleaved in one run (issue 16). Ports HARNESS_PORT (lean), +1 (MiniStack), +2 (defaults); ~10 min.
MINISTACK_VERSION := 1.5.33
# MiniStack 1.5.33 pins botocore==1.43.106: its venv gets the matching boto3 (the project's 1.44 cannot go beside it)
MINISTACK_BOTO3 := 1.43.106
MVENV := .venv-ministack
BENCH_EMULATOR_ARGS ?=
.PHONY: bench-emulator ministack-venv
$(MVENV)/.installed: $(LOCK_DIR)/lambda-x86_64.txt | venv uv-tool
	@echo "==> MiniStack $(MINISTACK_VERSION) venv ($(MVENV)) with the Lambda dependencies (its workers run this Python)"
	@test -x $(MVENV)/bin/python || $(EMULATOR_PYTHON) -m venv $(MVENV)
	@$(UV) pip install $(UV_QUIET) --python $(MVENV)/bin/python "ministack==$(MINISTACK_VERSION)" \
	  -r $(LOCK_DIR)/lambda-x86_64.txt "boto3==$(MINISTACK_BOTO3)"
	@touch $@
ministack-venv: $(MVENV)/.installed ## MiniStack (the peer emulator of bench-emulator) in its own venv
test: ministack-venv  # tests/integration/test_bench_emulator.py measures beside it (~4 s to install from uv's cache)
bench-emulator: install ministack-venv fixtures ## emulator CPU per call/image: LocalStack before/after lean vs MiniStack
	@$(PY) -m benchmarks.emulator $(BENCH_EMULATOR_ARGS)


# ---- load (issue 6) -----------------------------------------------------------------------------------------
SCENARIO ?= steady
LOAD_ARGS ?=
.PHONY: load load-list load-test
load: install fixtures ## load test a scenario: make load SCENARIO=steady|spike|soak|smoke|saturate [LOAD_ARGS="--rate 8"]
	@$(PY) -m harness.load $(SCENARIO) --stack-profile $(STACK_PROFILE) $(LOAD_ARGS)

# the seed replica and our pipeline under the same scenario, one after the other on the same emulator, side by side
COMPARE_OUT ?= benchmarks/results/load-compare-$(SCENARIO)
.PHONY: load-compare
load-compare: install fixtures ## seed replica vs ours: make load-compare SCENARIO=spike
	@$(PY) -m harness.load $(SCENARIO) --stack-profile seed --keep-emulator --out $(COMPARE_OUT)/seed $(LOAD_ARGS)
	@$(PY) -m harness.load $(SCENARIO) --stack-profile default --out $(COMPARE_OUT)/default $(LOAD_ARGS) || true
	@$(PY) -m harness compare $(COMPARE_OUT)/seed/pillow $(COMPARE_OUT)/default/pillow --out $(COMPARE_OUT)

load-list: venv ## list the load scenarios (benchmarks/scenarios/*.toml)
	@$(PY) -m harness.load --list

load-test: install fixtures ## the load harness' own tests (unit + the ~100-upload accounting run)
	@$(PY) -m pytest tests/unit/test_load_*.py tests/integration/test_load_short.py $(PYTEST_ARGS)


# ---- chaos (issue 7) ----------------------------------------------------------------------------------------
CHAOS ?= all
CHAOS_ARGS ?=
.PHONY: chaos chaos-list redrive chaos-test
chaos: install ## fault scenarios under load + invariant table: make chaos [CHAOS=poison|crash|...] [STACK_PROFILE=seed] [CHAOS_ARGS="--scale 0.5"]
	@$(PY) -m harness.chaos $(CHAOS) $(if $(filter list redrive,$(CHAOS)),,--stack-profile $(STACK_PROFILE)) $(CHAOS_ARGS)

# the seed replica and our pipeline under the same fault scenarios, one after the other, in one side-by-side report
CHAOS_COMPARE_OUT ?= benchmarks/results/chaos-compare
.PHONY: chaos-compare
chaos-compare: install ## seed replica vs ours under every fault: make chaos-compare [CHAOS=crash] -> compare.md
	@rm -rf $(CHAOS_COMPARE_OUT)
	@$(PY) -m harness.chaos $(CHAOS) --stack-profile seed --out $(CHAOS_COMPARE_OUT)/seed $(CHAOS_ARGS)
	@$(PY) -m harness.chaos $(CHAOS) --stack-profile default --out $(CHAOS_COMPARE_OUT)/default $(CHAOS_ARGS) || true
	@$(PY) -m harness.chaos.compare $(CHAOS_COMPARE_OUT)/seed $(CHAOS_COMPARE_OUT)/default --out $(CHAOS_COMPARE_OUT)

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

package: venv $(LOCK_DIR)/lambda-$(ARCH).txt ## build + check the Lambda zip for ARCH=arm64 (default) or ARCH=x86_64 into .package/
	@$(PY) -m infra.artifact --arch $(ARCH)

ARM64_TOOLS_OK = command -v qemu-aarch64-static >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1

arm64-tools: ## install qemu-user-static + mmdebstrap with apt-get if missing (as root; else says what to run)
	@if ! { $(ARM64_TOOLS_OK); }; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "==> apt-get install qemu-user-static mmdebstrap (for the arm64 tests)"; \
	    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q qemu-user-static mmdebstrap >/dev/null; \
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

# ---- Docker mode (issue 12) ---------------------------------------------------------------------------------
# EMULATOR=docker runs the emulator in our own image (docker/Dockerfile: LocalStack core + the local-process executor
# + the function layer), started by docker-compose.yml with host networking on 127.0.0.1:$HARNESS_PORT. No auth
# token, no Docker socket. The deploy step and the test suite are the same as in embedded mode. docs/docker.md.
.PHONY: docker-engine docker-engine-stop docker-base docker-wheelhouse docker-image docker-logs
DOCKER_ENGINE_DIR  ?= $(CURDIR)/.docker-engine
DOCKER_ENGINE_SOCK := $(DOCKER_ENGINE_DIR)/docker.sock
DOCKER_ENGINE_PID  := $(DOCKER_ENGINE_DIR)/dockerd.pid
# The engine `make docker-engine` started is the one every later make uses (unless DOCKER_HOST says otherwise).
ifeq ($(origin DOCKER_HOST),undefined)
ifneq ($(wildcard $(DOCKER_ENGINE_SOCK)),)
export DOCKER_HOST := unix://$(DOCKER_ENGINE_SOCK)
endif
endif
DOCKER_ARCH       ?= $(shell uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')
# auto: python:3.13-slim when present or pullable, else a local Debian trixie base (make docker-base)
DOCKER_BASE_IMAGE ?= auto
DOCKER_LOCAL_BASE := thumbnail-harness-base:trixie
DOCKER_WHEELHOUSE := docker/wheelhouse/$(DOCKER_ARCH)
# `docker compose` (v2) when the plugin is there, else `docker-compose` (v1); evaluated when a recipe runs
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

docker-engine: ## a Docker engine for EMULATOR=docker: reuse one that answers, else install (apt, as root) and start our own
	@if command -v docker >/dev/null 2>&1 && v=$$(timeout 10 docker version --format '{{.Server.Version}}' 2>/dev/null); then \
	  echo "docker engine $$v already answers at $${DOCKER_HOST:-the default socket}: nothing to do"; exit 0; fi; \
	need=""; command -v dockerd >/dev/null 2>&1 || need="docker.io"; \
	{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || need="$$need docker-compose"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "error: missing $$need; install it (sudo apt-get install $$need) or run as root" >&2; exit 2; fi; \
	  echo "==> apt-get install --no-install-recommends $$need"; \
	  { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null \
	    && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$need >/dev/null; } \
	    || { echo "error: apt-get install $$need failed" >&2; exit 2; }; \
	fi; \
	if [ "$$(id -u)" != 0 ]; then echo "error: starting dockerd needs root; or start an engine yourself and set DOCKER_HOST" >&2; exit 2; fi; \
	mkdir -p $(DOCKER_ENGINE_DIR)/data $(DOCKER_ENGINE_DIR)/exec; \
	echo "==> dockerd: state $(DOCKER_ENGINE_DIR), socket $(DOCKER_ENGINE_SOCK), host-only networking (no bridge, no iptables)"; \
	setsid nohup dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
	    --data-root $(DOCKER_ENGINE_DIR)/data --exec-root $(DOCKER_ENGINE_DIR)/exec \
	    -H unix://$(DOCKER_ENGINE_SOCK) -p $(DOCKER_ENGINE_PID) </dev/null >$(DOCKER_ENGINE_DIR)/dockerd.log 2>&1 & \
	for i in $$(seq 1 120); do DOCKER_HOST=unix://$(DOCKER_ENGINE_SOCK) docker version >/dev/null 2>&1 && break; sleep 0.25; done; \
	if v=$$(DOCKER_HOST=unix://$(DOCKER_ENGINE_SOCK) docker version --format '{{.Server.Version}}' 2>/dev/null); then \
	  echo "docker engine $$v up (pid $$(cat $(DOCKER_ENGINE_PID))); clients: DOCKER_HOST=unix://$(DOCKER_ENGINE_SOCK) (make exports it)"; \
	else echo "error: dockerd did not answer within 30 s; see $(DOCKER_ENGINE_DIR)/dockerd.log" >&2; tail -n 20 $(DOCKER_ENGINE_DIR)/dockerd.log >&2; exit 2; fi

docker-engine-stop: ## stop the Docker engine `make docker-engine` started (and its containers)
	@pid=$$(cat $(DOCKER_ENGINE_PID) 2>/dev/null || true); \
	if [ -n "$$pid" ] && kill -0 $$pid 2>/dev/null; then \
	  kill $$pid; for i in $$(seq 1 120); do kill -0 $$pid 2>/dev/null || break; sleep 0.25; done; \
	  if kill -0 $$pid 2>/dev/null; then kill -9 $$pid; echo "docker engine (pid $$pid) killed after 30 s"; else echo "stopped docker engine (pid $$pid)"; fi; \
	else echo "no docker engine of ours is running"; fi; \
	for m in $$(awk -v d="$(DOCKER_ENGINE_DIR)/" 'index($$2, d) == 1 {print $$2}' /proc/mounts | sort -r); do \
	  umount "$$m" 2>/dev/null && echo "unmounted $$m (left by dockerd: the folder can be removed)"; done; true

docker-base: ## (docker mode, no registry) a local base image: Debian trixie (Python 3.13) via mmdebstrap + docker import
	@if docker image inspect $(DOCKER_LOCAL_BASE) >/dev/null 2>&1; then echo "base image $(DOCKER_LOCAL_BASE): present"; exit 0; fi; \
	if ! command -v mmdebstrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then echo "error: mmdebstrap is needed for the local base image (sudo apt-get install mmdebstrap)" >&2; exit 2; fi; \
	  { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
	    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends mmdebstrap >/dev/null; } || exit 2; fi; \
	mkdir -p $(DOCKER_ENGINE_DIR); tar=$(DOCKER_ENGINE_DIR)/base-trixie-$(DOCKER_ARCH).tar; \
	echo "==> base image $(DOCKER_LOCAL_BASE): mmdebstrap trixie ($(DOCKER_ARCH)) + docker import"; \
	if [ ! -f $$tar ] || [ ! -s $$tar ]; then rm -rf $$tar; \
	  mmdebstrap --quiet --variant=minbase --format=tar --architectures=$(DOCKER_ARCH) \
	    --include=python3,python3-venv,ca-certificates trixie $$tar.partial \
	    && mv $$tar.partial $$tar || { rm -rf $$tar.partial; exit 2; }; fi; \
	docker import $$tar $(DOCKER_LOCAL_BASE) >/dev/null && rm -f $$tar && echo "base image $(DOCKER_LOCAL_BASE): imported"

# rebuilt when a lock or the layer's list changes (new wheel bytes would invalidate the image build's cache)
$(DOCKER_WHEELHOUSE)/.complete: harness/requirements/emulator.txt harness/requirements/emulator-constraints.txt \
                                docker/layer_requirements.py $(wildcard requirements/*.txt) | venv
	@echo "==> wheelhouse $(DOCKER_WHEELHOUSE) (linux/$(DOCKER_ARCH), cp313) with $(EMULATOR_PYTHON)"
	@$(PY) -m harness.docker_image --arch $(DOCKER_ARCH) --python $(EMULATOR_PYTHON)
	@touch $@

docker-wheelhouse: venv ## the wheels the image installs, made on the host into docker/wheelhouse/<arch> (DOCKER_ARCH=arm64 too)
	@if [ -z "$(EMULATOR_PYTHON)" ] && [ "$(DOCKER_ARCH)" = "$$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')" ]; then \
	  echo "no CPython 3.13 on the host: the image build installs from the package index instead"; \
	else $(MAKE) --no-print-directory $(DOCKER_WHEELHOUSE)/.complete; fi

docker-image: venv docker-wheelhouse ## build (cached) the emulator image thumbnail-harness-emulator:local
	@base="$(DOCKER_BASE_IMAGE)"; \
	if [ "$$base" = auto ]; then \
	  if docker image inspect python:3.13-slim >/dev/null 2>&1; then base=python:3.13-slim; \
	  elif docker image inspect $(DOCKER_LOCAL_BASE) >/dev/null 2>&1; then base=$(DOCKER_LOCAL_BASE); \
	  elif timeout 60 docker pull -q python:3.13-slim >/dev/null 2>&1; then base=python:3.13-slim; \
	  else echo "(python:3.13-slim cannot be pulled: using a local base image)"; $(MAKE) --no-print-directory docker-base || exit 2; base=$(DOCKER_LOCAL_BASE); fi; \
	fi; \
	wheels=docker/wheelhouse; [ -f $(DOCKER_WHEELHOUSE)/.complete ] && wheels=$(DOCKER_WHEELHOUSE); \
	rm -rf docker/node/[0-9]*; \
	if [ "$(DOCKER_ARCH)" = "$$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')" ]; then \
	  for m in 20 22; do for n in $(NODE_RT_DIR)/$$m/node_modules/.bin/node "$$(command -v node)"; do \
	    if [ -n "$$n" ] && [ -x "$$n" ] && "$$n" --version 2>/dev/null | grep -q "^v$$m\."; then \
	      mkdir -p docker/node/$$m/bin; n=$$(readlink -f "$$n"); \
	      ln -f "$$n" docker/node/$$m/bin/node 2>/dev/null || cp -p "$$n" docker/node/$$m/bin/node; break; fi; \
	  done; done; fi; \
	echo "    node for nodejs20.x/22.x in the image: $$(ls docker/node | grep -E '^[0-9]+$$' | tr '\n' ' ')(make node-runtimes)"; \
	echo "==> image thumbnail-harness-emulator:local from $$base, wheels from $$wheels ($(COMPOSE))"; \
	start=$$(date +%s.%N); \
	HARNESS_BASE_IMAGE=$$base HARNESS_WHEELHOUSE=$$wheels $(COMPOSE) -f docker-compose.yml build -q localstack \
	  && echo "    built in $$(echo "$$(date +%s.%N) - $$start" | bc 2>/dev/null || echo '?') s"

docker-logs: ## follow the logs of the docker-mode emulator
	@$(COMPOSE) -f docker-compose.yml -p thumbnail-harness-$(HARNESS_PORT) logs -f --tail 100 localstack

ifeq ($(EMULATOR),docker)
# the image is part of what `up`, `test`, `load` and `chaos` need in docker mode
up test load load-test chaos chaos-test: docker-image
endif

# ---- Node.js runtimes for the executor + the seed replica (issue 14) --------------------------------------------
# nodejs22.x runs on node 22 from the npm registry (node-linux-<cpu>, installed under harness/executor/node/22/);
# nodejs20.x on the node 20 on PATH, else node 20 from npm the same way. The executor finds them there (its README).
NODE_RT_DIR  := harness/executor/node
NODE22_STAMP := $(NODE_RT_DIR)/22/node_modules/.installed
NODE20_STAMP := $(NODE_RT_DIR)/20/node_modules/.installed
SEED_DIR     := handlers/seed
SEED_ARCHES  ?= arm64 x86_64
SEED_ZIPS    := $(foreach a,$(SEED_ARCHES),.package/seed-$(a).zip)
.PHONY: node-runtimes node20-runtime clean-node-runtimes package-seed

$(NODE_RT_DIR)/%/node_modules/.installed: $(NODE_RT_DIR)/%/package.json $(NODE_RT_DIR)/%/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to install node $* for nodejs$*.x (apt-get install nodejs npm)" >&2; exit 2; }
	@echo "==> node $* for the nodejs$*.x Lambda runtime (npm ci in $(NODE_RT_DIR)/$*)"
	@cd $(NODE_RT_DIR)/$* && npm ci --no-audit --no-fund --loglevel=error
	@$(NODE_RT_DIR)/$*/node_modules/.bin/node --version | grep -q '^v$*\.' || { echo "error: $(NODE_RT_DIR)/$* did not install node $*" >&2; exit 2; }
	@touch $@

node20-runtime:
	@if node --version 2>/dev/null | grep -q '^v20\.'; then :; else $(MAKE) --no-print-directory $(NODE20_STAMP); fi

node-runtimes: $(NODE22_STAMP) node20-runtime ## node 22 (npm) and node 20 (PATH, else npm) for the nodejs20.x/22.x Lambda runtimes

install: node-runtimes
clean: clean-node-runtimes
clean-node-runtimes:
	rm -rf $(NODE_RT_DIR)/*/node_modules

.package/seed-%.zip: $(SEED_DIR)/index.js $(SEED_DIR)/package.json $(SEED_DIR)/package-lock.json infra/seed_artifact.py | venv
	@echo "==> seed replica zip for linux/$*"
	@$(PY) -m infra.seed_artifact --arch $*

package-seed: $(SEED_ZIPS) ## the seed replica's zip (handlers/seed + node_modules for linux) into .package/seed-<arch>.zip

# STACK_PROFILE=seed deploys the seed replica (infra/stack.py function_impl=seed): its zip for this machine first
SEED_HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
load-compare: .package/seed-$(SEED_HOST_ARCH).zip
chaos-compare: .package/seed-$(SEED_HOST_ARCH).zip
ifeq ($(STACK_PROFILE),seed)
chaos: .package/seed-$(SEED_HOST_ARCH).zip
load: .package/seed-$(SEED_HOST_ARCH).zip
deploy: .package/seed-$(SEED_HOST_ARCH).zip
endif

# ---- simulation at AWS scale (issue 17) -----------------------------------------------------------------------
SIM_SCENARIO ?= spike
SIM_ARGS ?=
.PHONY: simulate simulate-validate simulate-bench simulate-measure
simulate: venv ## simulate a scenario at AWS scale: make simulate SIM_SCENARIO=spike SIM_ARGS="--set rate=500 --set maximum_concurrency=50 --sweep"
	@PYTHONPATH=.:handlers $(PY) -m harness.simulate $(SIM_SCENARIO) $(SIM_ARGS)

simulate-validate: venv ## prediction vs the measured local steady/spike/saturate runs (stored, or SIM_REPORTS="dir ...") with verdicts
	@PYTHONPATH=.:handlers $(PY) -m harness.simulate.validate $(SIM_REPORTS)

simulate-bench: venv ## time a simulated spike of one million uploads (target < 60 s)
	@PYTHONPATH=.:handlers $(PY) -m benchmarks.simulate_1m

SIM_MEASURE_PORT ?= 4621
SIM_MEASURE_HOME ?= $(CURDIR)/.harness-simulate
SIM_MEASURE_DIR ?= benchmarks/results/simulate-measure
simulate-measure: venv emulator-venv ## rerun steady/spike/saturate locally, read their invocations, extract them into SIM_MEASURE_DIR
	@set -e; for r in steady spike saturate; do \
	  HARNESS_PORT=$(SIM_MEASURE_PORT) HARNESS_HOME=$(SIM_MEASURE_HOME) PYTHONPATH=.:handlers nice $(PY) -m harness.load $$r \
	    --backend pillow --keep-emulator --out $(SIM_MEASURE_DIR)/$$r; \
	  HARNESS_PORT=$(SIM_MEASURE_PORT) HARNESS_HOME=$(SIM_MEASURE_HOME) PYTHONPATH=.:handlers $(PY) -m harness.simulate.calibrate \
	    invocations $(SIM_MEASURE_DIR)/$$r/pillow/report.json --out $(SIM_MEASURE_DIR)/$$r-invocations.json; \
	  PYTHONPATH=.:handlers $(PY) -m harness.simulate.calibrate extract $(SIM_MEASURE_DIR)/$$r/pillow/report.json \
	    --invocations $(SIM_MEASURE_DIR)/$$r-invocations.json --out $(SIM_MEASURE_DIR)/$$r.json; \
	done; HARNESS_PORT=$(SIM_MEASURE_PORT) HARNESS_HOME=$(SIM_MEASURE_HOME) $(PY) -m harness down; \
	PYTHONPATH=.:handlers $(PY) -m harness.simulate.validate $(SIM_MEASURE_DIR)/steady.json $(SIM_MEASURE_DIR)/spike.json \
	  $(SIM_MEASURE_DIR)/saturate.json
