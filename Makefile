# ResetAccess: every entry point a developer or CI needs. Each target installs what it uses,
# so `make demo` and `make test` work from a fresh clone.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := build/stamps
LAYER_DIR := build/layer
# Two workers match CI's two cores; override with `make test PYTEST_WORKERS=auto`.
PYTEST_WORKERS ?= 2
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help venv node layer demo test lint asl diagram synth deploy acceptance clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Stamps depend on the requirement files, so a changed pin reinstalls and nothing else does.
# It says what it installs and how long that took: a fresh clone's first minute is this.
$(STAMPS)/venv: requirements.txt requirements-dev.txt lambdas/requirements.txt
	@mkdir -p $(STAMPS)
	@echo "venv: installing the pinned packages of requirements-dev.txt (the CDK app, the functions'" \
	  "libraries, moto, the test and lint tools) into $(VENV)"
	@started=$$(date +%s); \
	  test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt; \
	  echo "venv: $$($(PY) -m pip list --format=freeze --disable-pip-version-check | wc -l)" \
	    "packages in $(VENV), installed in $$(( $$(date +%s) - started )) s"
	@touch $@

# The project itself, editable and without dependencies (the requirements pin them): the
# `reset-access` console script then runs this tree from any directory.
$(STAMPS)/project: pyproject.toml $(STAMPS)/venv
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(STAMPS)/venv $(STAMPS)/project  ## create .venv with the pinned packages and `reset-access`

# npm ci is exact to package-lock.json; node_modules/.package-lock.json changes when it runs.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

node: node_modules/.package-lock.json  ## install the CDK CLI and asl-validator (npm ci)

# The functions run python3.13 on arm64: fetch wheels for that platform, never build them here.
$(STAMPS)/layer: lambdas/requirements.txt $(STAMPS)/venv
	rm -rf $(LAYER_DIR)
	$(PY) -m pip install --quiet --disable-pip-version-check \
	  --platform manylinux2014_aarch64 --implementation cp --python-version 3.13 \
	  --only-binary=:all: --target $(LAYER_DIR)/python -r lambdas/requirements.txt
	touch $@

layer: $(STAMPS)/layer  ## build the Lambda layer (build/layer) from lambdas/requirements.txt

# No layer: the engine runs the handlers in-process from .venv and synthesizes nothing.
demo: venv  ## run the lost-key scenario end to end on the embedded AWS
	@started=$$(date +%s); $(PY) -m local demo; \
	  echo "demo: $$(( $$(date +%s) - started )) s on the embedded engine"

# Lint first: it takes seconds and fails the run before the minutes of tests.
test: lint node layer  ## lint, then run every test (what CI runs)
	$(PY) -m pytest -n $(PYTEST_WORKERS)

# One mypy call checks the code and tests/ (one package; tests.support holds what its folders
# share), so each module is analysed once; pyproject.toml sets what tests may leave unannotated.
SOURCES := $(wildcard app.py stacks statemachine lambdas local cli rescue acceptance) tests

lint: venv  ## ruff (rules, complexity, layout) and mypy; any finding fails
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy $(SOURCES)

# The definition is built by statemachine/ (Python); this is its JSON, placeholders and all, for
# Workflow Studio or the console. The stack and the engine build it themselves.
asl: venv  ## write the workflow's JSON to build/reset_access.asl.json
	$(PY) -m statemachine --output build/reset_access.asl.json

# The README's Mermaid diagram of the workflow, drawn from the definition (a test checks it).
diagram: venv  ## redraw the workflow diagram in README.md from statemachine/
	$(PY) -m statemachine.diagram --readme README.md

# --no-notices: the CLI would otherwise fetch its notices from the internet on every run.
synth: venv node layer  ## synthesize the ResetAccess stack into cdk.out
	npx --no-install cdk synth --quiet --no-notices
	@for template in cdk.out/*.template.json; do echo "template: $$template"; done

deploy: venv node layer  ## deploy the ResetAccess stack (AWS credentials; cdk bootstrap once)
	npx --no-install cdk deploy ResetAccess

# AWS CLI-style: `make acceptance REGION=eu-west-1 PROFILE=dev ARGS="--subnet subnet-..."`.
acceptance: venv  ## after deploy: reset a throwaway instance in your account, log in, delete it
	$(PY) -m acceptance $(if $(REGION),--region $(REGION)) $(if $(PROFILE),--profile $(PROFILE)) $(ARGS)

clean:  ## remove what the targets built (not .venv or node_modules)
	rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache
