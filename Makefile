# clogs: the two commands of the quick start are `make demo` and `make test`.
# Both are idempotent and print what they do.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.clogs-installed
WHEELS := $(wildcard /opt/wheels)
FIND_LINKS := $(if $(WHEELS),--find-links /opt/wheels,)
PYTEST_ARGS ?=

.PHONY: setup services services-down demo test bench checkpoint clean

setup: $(STAMP)

$(STAMP): setup.cfg setup.py
	@echo "==> creating $(VENV) and installing clogs (editable) with its test and bench extras"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q $(FIND_LINKS) "torch==2.13.0"
	$(PIP) install -q $(FIND_LINKS) -e ".[test,bench]"
	@touch $(STAMP)
	@echo "==> $(VENV) ready"

services:
	@echo "==> starting local Kafka and Elasticsearch (scripts/services up)"
	@scripts/services up

services-down:
	@scripts/services down

demo: setup services
	@echo "==> running the demo: synthetic multi-source logs -> Kafka -> clogs worker -> Elasticsearch"
	$(PY) scripts/demo.py

test: setup
	@scripts/ensure_test_tools
	@started=0; \
	if scripts/services status >/dev/null 2>&1; then echo "==> reusing the running Kafka and Elasticsearch"; \
	else echo "==> starting Kafka and Elasticsearch for the tests"; scripts/services up || exit 1; started=1; fi; \
	echo "==> running the test suite"; \
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then echo "==> stopping the services this run started"; scripts/services down; fi; \
	if [ $$rc = 5 ]; then echo "==> pytest collected no tests: that is a failure"; rc=1; fi; \
	exit $$rc

bench: setup
	$(PY) scripts/bench_quality.py
	$(PY) scripts/bench_speed.py

checkpoint: setup
	$(PY) scripts/train_default_checkpoint.py

clean:
	scripts/services down --purge
	rm -rf .clogs-data data/kafka out
