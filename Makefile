# Pulsegate — the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test soak-test lint format bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pulsegate demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

# `make soak-test`: the whole product for 5 minutes (2 failure cycles of 150 s) with the Overview open in headless
# Chromium, judged at the end (benchmarks/soak.py; the 30-minute run: .venv/bin/python benchmarks/soak.py).
# Needs /usr/bin/chromium; CI runs it after `make test`.
soak-test: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes 5 --cycle-s 150

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# `make bench` runs every benchmark (benchmarks/run_all.py), each rewriting its section of benchmarks/RESULTS.md
# (figures, machine, command); one that fails or misses a goal does not stop the others. The dashboard-queries
# benchmark loads BENCH_ROWS raw rows into PostgreSQL (default 1 M); the recorded figures use 10 M:
# `make bench BENCH_ROWS=10000000`. Needs PostgreSQL and Redis on loopback and /usr/bin/chromium.
BENCH_ROWS ?= 1000000

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py --rows $(BENCH_ROWS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
