# kafka-adx: the two set-up commands a new user needs are `make demo` and `make test`.
# The interpreter of .venv: python3 when it is a supported version, else python3.12, 3.11 or 3.13
# from PATH or pyenv (scripts/find-python.sh); none: CHECK_PYTHON stops with the remedy.
PYTHON ?= $(or $(shell sh scripts/find-python.sh 3.12 3.11 3.13),python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The Python versions that run kafka-adx: the same range as requires-python in pyproject.toml
# (3.11 for datetime.UTC; 3.13 is the newest the Functions platform runs). One line of Python, so
# an unsupported interpreter stops with this message, not a wall of pip errors.
CHECK_PYTHON := import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v < (3, 14) else \
	'kafka-adx needs Python 3.11, 3.12 or 3.13; %s is %d.%d. Pick another interpreter, e.g. make PYTHON=python3.12 \
	(and remove $(VENV) if it was made with this one)' % ((sys.executable,) + v))
# The function app as deployed on Python 3.13: only requirements.txt (azure-functions 2.x and the
# app-pinned azure-functions-runtime) plus the harness's protobuf compiler, in its own venv. The
# runtime tests (tests/integration/functions/runtime) run function_app.py in it.
PYTHON313 ?= $(or $(shell sh scripts/find-python.sh 3.13),python3.13)
VENV313 ?= .venv-313
STAMP313 := $(VENV313)/.installed
CHECK_PYTHON313 := import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 13) else \
	'the function runtime tests need Python 3.13 for $(VENV313); %s is %d.%d. Install one (e.g. pyenv install 3.13) \
	or name it: make PYTHON313=/path/to/python3.13' % ((sys.executable,) + v))

.PHONY: venv venv313 lock demo test tools lint typecheck unit unit-fast bench local-settings kafka kafka-stop infra-check infra-kql clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements.in requirements-cli.txt requirements-dev.txt pyproject.toml
	@$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -c "$(CHECK_PYTHON)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e '.[cli]'
	touch $(STAMP)

## venv313: the function app's own Python 3.13 venv (requirements.txt only) for the runtime tests
venv313: $(STAMP313)

$(STAMP313): requirements.txt requirements-runtime-test.txt
	@$(if $(wildcard $(VENV313)/bin/python),$(VENV313)/bin/python,$(PYTHON313)) -c "$(CHECK_PYTHON313)"
	test -x $(VENV313)/bin/python || $(PYTHON313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install -q --upgrade pip
	$(VENV313)/bin/python -m pip install -q -r requirements.txt -r requirements-runtime-test.txt
	touch $(STAMP313)

## lock: requirements.txt, what the remote build installs, from requirements.in: every package pinned for
## Python 3.11-3.13 (uv; existing pins are kept unless UPGRADE=1). Run it after editing requirements.in
lock:
	$(or $(wildcard $(VENV)/bin/uv),uv) pip compile requirements.in --universal --python-version 3.11 \
		--custom-compile-command 'make lock' --quiet $(if $(UPGRADE),--upgrade) -o requirements.txt

## demo: the Kafka tutorial on a local broker (produce, consume into the local DuckDB, dead letters, fix, replay); files without Java
demo: venv
	$(VENV)/bin/kafka-adx demo

## test: lint, type-check and the whole test suite (services are started by the suite)
test: venv tools lint typecheck unit

## tools: fetch the pinned local services the tests start (Kafka jars via Maven, Azurite via npm, Apicurio
## Registry built with Maven, into .tools/) and the Compose specification's schema (compose-go's
## compose-spec.json via the Go module proxy)
tools:
	bash scripts/kafka-install.sh >/dev/null
	bash scripts/azurite-install.sh
	bash scripts/apicurio-install.sh >/dev/null
	bash scripts/compose-schema-install.sh

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

unit: venv venv313
	$(PY) -m pytest -q

## bench: the benchmarks, then the function app's deployed package size and cold import time (Python 3.13)
bench: venv venv313
	$(PY) bench/run.py
	$(PY) scripts/function-package.py --python $(VENV313)/bin/python

## local-settings: local.settings.json for `func start`, from local.settings.sample.json (an existing one is kept)
local-settings: local.settings.json

local.settings.json:
	cp local.settings.sample.json $@

## infra-check: pycep + checkov over infra/ (checkov lives in .venv-checkov; also run by the tests)
infra-check: venv
	scripts/check-infra.sh

## infra-kql: regenerate infra/kql/database.kql from ingestion.yaml
infra-kql: venv
	scripts/gen-infra-kql.sh

clean:
	rm -rf $(VENV) $(VENV313) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
