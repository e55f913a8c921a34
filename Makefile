# hdiaks-widgets — the README's commands. Everything a fresh machine (Python 3.11, Java 17,
# package registries) needs is installed here; nothing is assumed to be present.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SANDBOX_ROOT ?= .sandbox
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup demo lab test test-fast lint typecheck clean

help:
	@echo "make demo       set up, start the sandbox, run a real Spark job end to end, export a DAG"
	@echo "make lab        JupyterLab on the quickstart notebook against the sandbox"
	@echo "make test       install everything the tests need and run them all"
	@echo "make test-fast  unit tests only: no sandbox server, Spark, Airflow or browser (under a minute)"
	@echo "make soak       the reliability campaign on the sandbox (about 15 minutes): docs/reliability.md's figures"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[all,test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/hdiaks demo --root $(SANDBOX_ROOT)

lab: setup
	$(BIN)/hdiaks lab --root $(SANDBOX_ROOT)

# Each mk/*.mk fragment adds what the full test suite needs to TEST_DEPS
# (Airflow virtualenvs, Chromium, ...).
TEST_DEPS :=
-include mk/*.mk

.PHONY: test-deps
test-deps: $(TEST_DEPS)

test: setup test-deps
	$(BIN)/ruff check hdiaks_widgets tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q --durations=25

test-fast: setup
	$(BIN)/pytest -q -m "not sandbox and not spark and not airflow and not browser and not notebook"

lint: setup
	$(BIN)/ruff check hdiaks_widgets tests bench

typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .venv-airflow* $(SANDBOX_ROOT) test-artifacts .pytest_cache .mypy_cache .ruff_cache
