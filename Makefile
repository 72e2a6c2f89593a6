# Two entry points for a fresh machine:
#   make demo   set up .venv and run the main job on the built-in synthetic data
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test docs

$(BIN)/robustrec: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[captions,features,ray,test,docs]'
	touch $@

setup: $(BIN)/robustrec

demo: setup
	bash scripts/demo.sh

test: setup
	$(BIN)/python -m pytest

docs: setup
	$(BIN)/mkdocs build --strict
