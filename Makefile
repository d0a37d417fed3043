# The two commands of the README: `make run` and `make test`. Both set up a fresh machine first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup tools lint bench client-test

# The integrator and the client library it depends on (kruispunt-client, from client/: never from a registry).
$(BIN)/kruispunt: setup.cfg pyproject.toml client/pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "kruispunt needs Python 3.11 ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./client -e '.[test]'
	@touch $@

setup: $(BIN)/kruispunt

run: setup
	$(BIN)/kruispunt run

# The other WS-Security stacks the interoperability tests sign and verify with (WSS4J, xmlsec1, node-soap).
tools:
	@.ci/tools

test: setup tools client-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 tests

# The client library on its own, on each of Python 3.11, 3.12 and 3.13 found here (python3.X on PATH, else pyenv's
# build of it): a venv each under client/.venv-3.X with only the client and its test extra, made again when
# client/pyproject.toml changes; its tests run from client/, where the integrator cannot be imported.
CLIENT_PYTHONS := 3.11 3.12 3.13
PYENV_ROOT ?= $(HOME)/.pyenv
find_python = $(shell for p in python$(1) $(PYENV_ROOT)/versions/$(1).*/bin/python$(1); do \
  "$$p" -c 'import sys' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)

client/.venv-%/installed: client/pyproject.toml
	@py="$(call find_python,$*)"; \
	if [ -z "$$py" ]; then echo "client: no Python $* here, not tested on it"; exit 0; fi; \
	echo "client: venv for Python $* ($$py)"; rm -rf client/.venv-$*; \
	"$$py" -m venv client/.venv-$* && client/.venv-$*/bin/pip install --quiet --upgrade pip && \
	client/.venv-$*/bin/pip install --quiet -e './client[test]' && touch $@

client-test: $(foreach v,$(CLIENT_PYTHONS),client/.venv-$(v)/installed)
	@tested=0; for v in $(CLIENT_PYTHONS); do \
	  [ -e client/.venv-$$v/installed ] || continue; \
	  echo "client tests on Python $$v"; \
	  (cd client && .venv-$$v/bin/python -m pytest -q -p no:cacheprovider tests) || exit 1; \
	  tested=$$((tested + 1)); \
	done; [ $$tested -gt 0 ] || { echo "client: none of Python $(CLIENT_PYTHONS) found"; exit 1; }

bench: setup
	$(BIN)/python bench/lookup.py
	$(BIN)/python bench/security.py
