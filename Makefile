# Two commands on a fresh machine (see README): `make demo` and `make test`.
# Everything installs into .venv; torch is the local CPU build 2.13.0.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench-ltc

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/velora-robot demo

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench-ltc: $(VENV)/.installed
	$(BIN)/velora-robot bench ltc --json out/bench_ltc.json
