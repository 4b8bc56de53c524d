# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

# Test processes: the suite waits on subprocesses, servers and timeouts as much as it computes,
# so two workers take 2-core CI from ~12 to ~7 minutes (`make test TEST_WORKERS=0`: one process).
TEST_WORKERS ?= 2

.PHONY: demo test test-quick bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The runtime only: the demo needs no torch (the OCR reader ships its models in its wheel).
$(VENV)/.installed: pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

# Tests also build tiny Hugging Face models in code: torch (CPU wheel), transformers, moto.
$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/cropvlm demo

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The edit loop: the whole suite but the tests marked @pytest.mark.slow.
test-quick: $(VENV)/.installed-dev
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow"

bench: $(VENV)/.installed
	$(PY) benchmarks/extract_throughput.py

clean:
	rm -rf .cropvlm demo
