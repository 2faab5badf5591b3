# Front door of the project. Two commands set everything up on a fresh machine:
#   make diagnose    create .venv, install, fetch the default data, run every stage
#   make test        run the test suite
# `make` alone (or `make help`) lists the documented targets. The stage targets come from
# stages.mk, generated from the stage table in pipeline/stages.py (a test keeps it in sync); the
# pipeline itself skips a stage whose inputs, settings and code did not change, so re-running is cheap.
# SCOPE overrides the settings' scope: make diagnose SCOPE=france | SCOPE=region:84 | SCOPE=departements:11,34

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SCOPE  ?=
RUN    := $(PY) -m pipeline $(if $(SCOPE),--scope $(SCOPE),)

.DEFAULT_GOAL := help
.PHONY: help diagnose install test lint bench lock screenshots clean distclean

help: ## list the documented targets
	@echo "Usage: make TARGET [SCOPE=france|region:<code>|departements:<code>,<code>]"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):[^#]*## (.*)/  \1\t\2/' | expand -t 16

diagnose: install ## create .venv, fetch the default data, run every stage
	$(RUN) diagnose

install: $(VENV)/.installed ## create .venv and install the pipeline with its test tools

# Installs come from the lock files (requirements/*.txt: exact versions, PyPI's sha256 hashes;
# pip, setuptools and uv included), then the pipeline itself without dependencies. uv, taken
# hash-checked from the lock by pip, installs the rest in seconds; INSTALLER=pip does it all with
# pip (slower, same versions and hashes). `make lock` re-resolves the files (docs/dependencies.md).
INSTALLER ?= uv
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
UVPIP  := $(VENV)/bin/uv pip
ifeq ($(INSTALLER),pip)
LOCKED  = $(PIP) --require-hashes --no-deps -r
SELF    = $(PIP) --no-deps --no-build-isolation -e .
else
LOCKED  = $(UVPIP) install --quiet --python $(PY) --require-hashes --no-deps -r
SELF    = $(UVPIP) install --quiet --python $(PY) --no-deps --no-build-isolation -e .
endif
COMPILE = $(UVPIP) compile pyproject.toml requirements/build.in --quiet --no-config \
	--universal --python-version 3.11 --generate-hashes --index-url https://pypi.org/simple

$(VENV)/.installed: requirements/test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	sed -n '/^uv==/,/# via/p' requirements/test.txt > $(VENV)/uv-lock.txt
	$(PIP) --require-hashes --no-deps -r $(VENV)/uv-lock.txt
	$(LOCKED) requirements/test.txt
	$(SELF)
	touch $@

$(VENV)/.bench-installed: $(VENV)/.installed requirements/bench.txt
	$(LOCKED) requirements/bench.txt
	touch $@

lock: install ## re-resolve requirements/*.txt from pyproject.toml (latest versions, hashes)
	$(COMPILE) --upgrade --extra test --extra bench -o requirements/bench.txt
	$(COMPILE) --extra test -c requirements/bench.txt -o requirements/test.txt
	$(COMPILE) -c requirements/bench.txt -o requirements/runtime.txt

include stages.mk

test: install ## run the test suite (what CI runs)
	$(PY) -m pytest

lint: install ## ruff: lint and format check
	$(PY) -m ruff check pipeline tests bench
	$(PY) -m ruff format --check pipeline tests bench

screenshots: export ## rewrite docs/img/*.png (README screenshots) from the outputs of the run
	$(PY) -m pipeline.docs screenshots $(if $(SCOPE),--scope $(SCOPE),)

bench: $(VENV)/.bench-installed ## wall times, map sizes, regionalization vs spopt (bench/results/)
	$(PY) -m bench

clean: ## remove generated outputs (data/processed, maps, reports)
	rm -rf data/processed/* data/processed/.manifests data/processed/.cache maps/* reports tests/artifacts

distclean: clean ## also remove .venv and the downloaded data
	rm -rf $(VENV) data/raw/*
