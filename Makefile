# Pulsegate — the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench install clean

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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/emulator_throughput.py --write-results
	$(BIN)/python benchmarks/limiter_overhead.py --write-results
	$(BIN)/python benchmarks/redis_limiter.py --write-results
	$(BIN)/python benchmarks/import_time.py --write-results
	$(BIN)/python benchmarks/overhead.py --write-results
	$(BIN)/python benchmarks/ingest.py --write-results
	$(BIN)/python benchmarks/outage.py --write-results
	$(BIN)/python benchmarks/queries.py --write-results
	$(BIN)/python benchmarks/uuid_order.py --write-results
	$(BIN)/python benchmarks/dashboard_load.py --write-results  # needs a database kept by queries.py --keep (see its docstring)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
