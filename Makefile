# kafka-adx: the two set-up commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The Python versions that run kafka-adx: the same range as requires-python in pyproject.toml
# (3.11 for datetime.UTC; azure-functions 1.x installs on nothing newer than 3.12). One line of
# Python, so an unsupported interpreter stops with this message, not a wall of pip errors.
CHECK_PYTHON := import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v < (3, 13) else \
	'kafka-adx needs Python 3.11 or 3.12; %s is %d.%d. Pick another interpreter, e.g. make PYTHON=python3.12 \
	(and remove $(VENV) if it was made with this one)' % ((sys.executable,) + v))

.PHONY: venv demo test tools lint typecheck unit unit-fast bench kafka kafka-stop infra-check infra-kql clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -c "$(CHECK_PYTHON)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e .
	touch $(STAMP)

## demo: the Kafka tutorial on a local broker (produce, consume into the local DuckDB, dead letters, fix, replay); files without Java
demo: venv
	$(VENV)/bin/kafka-adx demo

## test: lint, type-check and the whole test suite (services are started by the suite)
test: venv tools lint typecheck unit

## tools: fetch the pinned local services the tests start (Kafka jars via Maven, Azurite via npm, into .tools/)
tools:
	bash scripts/kafka-install.sh >/dev/null
	bash scripts/azurite-install.sh

## kafka: a local Kafka broker on 127.0.0.1:9092 (a free port if taken); Ctrl-C stops it. BACKGROUND=1 detaches
kafka: venv tools
	bash scripts/kafka-dev.sh $(if $(BACKGROUND),--background)

## kafka-stop: stop the broker that `make kafka BACKGROUND=1` started
kafka-stop:
	bash scripts/kafka-stop.sh

lint: venv
	$(VENV)/bin/ruff check shared tests bench function_app.py scripts

typecheck: venv
	$(VENV)/bin/mypy

## unit-fast: the tests that need no service (tests/unit), in well under a minute
unit-fast: venv
	$(PY) -m pytest -q tests/unit -m "not kafka and not azurite"

unit: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) bench/run.py

## infra-check: pycep + checkov over infra/ (checkov lives in .venv-checkov; also run by the tests)
infra-check: venv
	scripts/check-infra.sh

## infra-kql: regenerate infra/kql/database.kql from ingestion.yaml
infra-kql: venv
	scripts/gen-infra-kql.sh

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
