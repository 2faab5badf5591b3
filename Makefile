# Front door of the project. Two commands set everything up on a fresh machine:
#   make diagnose    create .venv, install, fetch the default data, run every stage
#   make test        run the test suite
# Each stage is also a target; the pipeline itself skips a stage whose inputs, settings and code
# did not change (manifests in data/processed/.manifests), so re-running is cheap.
# SCOPE overrides the settings' scope: make diagnose SCOPE=france | SCOPE=region:84 | SCOPE=departements:11,34

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SCOPE  ?=
RUN    := $(PY) -m pipeline $(if $(SCOPE),--scope $(SCOPE),)

.PHONY: diagnose install data communes indicators perimeters coverage territories export test bench clean distclean

diagnose: install
	$(RUN) diagnose

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $@

data: install
	$(RUN) data

communes: data
	$(RUN) communes

indicators: communes
	$(RUN) indicators

perimeters: indicators
	$(RUN) perimeters

coverage: perimeters
	$(RUN) coverage

territories: coverage
	$(RUN) territories

export: territories
	$(RUN) export

test: install
	$(PY) -m pytest

bench: $(VENV)/.bench-installed
	$(PY) -m bench

clean:
	rm -rf data/processed/* data/processed/.manifests maps/* reports tests/artifacts

distclean: clean
	rm -rf $(VENV) data/raw/*
