# Two commands on a fresh machine (see README): `make demo` and `make test`.
# Everything installs into .venv; torch is the local CPU build 2.13.0.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# cyclonedds (Python) builds against the Cyclone DDS C library; Debian installs it in its
# multiarch layout, which the build's search does not know: a prefix of links shows it.
DDS_HOME := $(abspath $(VENV))/cyclonedds-home

.PHONY: demo test bench-ltc

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	sh -c 'dpkg -s cyclonedds-dev >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q cyclonedds-dev >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q cyclonedds-dev >/dev/null; }; }'
	mkdir -p $(DDS_HOME)
	ln -sfn /usr/include $(DDS_HOME)/include
	ln -sfn /usr/lib/$$(gcc -dumpmachine) $(DDS_HOME)/lib
	ln -sfn /usr/bin $(DDS_HOME)/bin
	CYCLONEDDS_HOME=$(DDS_HOME) $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/velora-robot demo

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench-ltc: $(VENV)/.installed
	$(BIN)/velora-robot bench ltc --json out/bench_ltc.json
