# kafka-adx: the two set-up commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck unit bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e .
	touch $(STAMP)

## demo: generate storm events, ingest them into the local DuckDB, show what landed
demo: venv
	$(VENV)/bin/kafka-adx demo

## test: lint, type-check and the whole test suite (services are started by the suite)
test: venv lint typecheck unit

lint: venv
	$(VENV)/bin/ruff check shared tests bench function_app.py

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
