# glacier-velocity: two commands for users (make demo, make test), a few for developers.
# Set-up is a dependency, not a step to remember: .venv/.installed is rebuilt whenever
# pyproject.toml or requirements.lock changes.

SHELL := bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# cwltool gives each job only HOME, TMPDIR and PATH: the venv's bin must come first on PATH
# so that papermill, python and the python3 kernel are this environment's.
RUN := PATH="$(BIN):$$PATH"
PARAMS ?= params/yazghil.yml
OUT ?= build/run

.DEFAULT_GOAL := help
.PHONY: help venv setup demo test test-fast notebooks lint format run validate lock clean distclean

help: ## list the targets
	@grep -hE '^[a-z -]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

venv setup: $(STAMP) ## create .venv and install the package with pinned dependencies

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "need python3.11 (or python3 >= 3.11) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[workflow,test]'
	touch $@

demo: $(STAMP) ## offline demo: synthetic glacier, local STAC API, whole CWL Workflow, pairs in parallel (a minute or two)
	$(RUN) $(BIN)/glacier-velocity demo --dir build/demo

test: $(STAMP) ## the test suite, including end-to-end cwltool runs of the Workflow
	$(RUN) $(BIN)/python -m pytest

test-fast: $(STAMP) ## every test but the end-to-end runs (markers integration, containers: pyproject.toml), on all cores
	$(RUN) $(BIN)/python -m pytest -m "not integration and not containers" -n auto

notebooks: $(STAMP) ## regenerate notebooks/*.ipynb from their sources notebooks/*.py (commit both)
	$(BIN)/python notebooks/make_notebooks.py

LINT_PATHS := src tests benchmarks notebooks setup.py

lint: $(STAMP) ## ruff (lint and format check), mypy on src/ and the notebook sources, the layers of docs/architecture.md (lint-imports); configured in pyproject.toml
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy src $(wildcard notebooks/*.py)
	$(BIN)/lint-imports --no-cache

format: $(STAMP) ## apply ruff's import sorting and formatting (commit the result)
	$(BIN)/ruff check --select I --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

run: $(STAMP) ## real data: make run PARAMS=params/yazghil.yml [OUT=build/run]: a fresh OUT/<UTC time>/ per run, OUT/latest (needs internet)
	$(RUN) $(BIN)/glacier-velocity run $(PARAMS) --out-dir $(OUT)

validate: $(STAMP) ## cwltool --validate of every CWL file
	@for f in cwl/*.cwl; do $(RUN) $(BIN)/cwltool --quiet --validate "$$f" || exit 1; done

lock: ## refresh requirements.lock from the working .venv (commit the result)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v ' @ ' > requirements.lock

clean: ## remove build outputs and caches (keeps .venv)
	rm -rf build dist .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean ## also remove .venv
	rm -rf $(VENV)

include mk/deploy.mk
include mk/slurm.mk
