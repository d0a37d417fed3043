# The two commands of the README: `make run` and `make test`. Both set up a fresh machine first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup tools lint bench

$(BIN)/kruispunt: setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "kruispunt needs Python 3.11 ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(BIN)/kruispunt

run: setup
	$(BIN)/kruispunt run

# The other WS-Security stacks the interoperability tests sign and verify with (WSS4J, xmlsec1, node-soap).
tools:
	@.ci/tools

test: setup tools
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 tests

bench: setup
	$(BIN)/python bench/lookup.py
	$(BIN)/python bench/security.py
