# Pulsegate — the README's two commands are `make demo` and `make test`.
#
# Installs come from requirements.lock (every package pinned, with hashes), so a fresh machine gets exactly what
# was tested; `make lock` refreshes it, `make test-latest` tries the newest versions pyproject.toml admits.
# docs/development.md says when to run which.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# The lowest anthropic and openai that pyproject.toml admits, installed beside .venv (they shadow the locked SDKs
# when on PYTHONPATH) so that `make test` runs the SDK-facing tests on them too.
FLOOR_LOCK  := requirements-sdk-floor.lock
FLOOR       := $(VENV)/sdk-floor
FLOOR_STAMP := $(FLOOR)/.installed
FLOOR_TESTS := tests/emulator tests/client tests/unit/test_provider_wire_reading.py
# Every file requirements.lock pins, downloaded once: tests/packaging builds the wheel and installs it from here into
# a fresh venv with no index, as a user's offline machine would.
WHEELHOUSE       := $(VENV)/wheelhouse
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.filled
# The official Node SDKs the gateway's tests drive (tests/gateway/node/package-lock.json), installed with npm ci.
NODE_CLIENTS := tests/gateway/node
NODE_STAMP   := $(NODE_CLIENTS)/node_modules/.installed
# `make lock` resolves with uv (its own venv, this exact version); `make test-latest` builds its own venv too.
LOCK_VENV   := .venv-lock
UV_VERSION  := 0.13.9
LATEST_VENV := .venv-latest

.PHONY: demo test test-latest lock soak-test lint format bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The lock first (it pins pip, setuptools and wheel too), then the project itself: editable, without resolving
# anything, built with the locked setuptools. sync removes what an older lock installed and checks the result.
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python .ci/lockfile.py sync $(LOCK)
	$(BIN)/python -m pip check --quiet
	touch $(STAMP)

$(FLOOR_STAMP): $(FLOOR_LOCK) | $(STAMP)
	rm -rf $(FLOOR)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --target $(FLOOR) -r $(FLOOR_LOCK)
	touch $(FLOOR_STAMP)

$(WHEELHOUSE_STAMP): $(LOCK) | $(STAMP)
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip download --quiet --require-hashes --no-deps -r $(LOCK) -d $(WHEELHOUSE)
	touch $(WHEELHOUSE_STAMP)

$(NODE_STAMP): $(NODE_CLIENTS)/package-lock.json
	npm ci --prefix $(NODE_CLIENTS) --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(FLOOR_STAMP) $(WHEELHOUSE_STAMP) $(NODE_STAMP)

demo: $(STAMP)
	$(BIN)/pulsegate demo

test: $(STAMP) $(FLOOR_STAMP) $(WHEELHOUSE_STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	PULSEGATE_TEST_WHEELHOUSE=$(abspath $(WHEELHOUSE)) $(BIN)/pytest -n 2 -m "not serial"
	$(BIN)/pytest -m serial
	PYTHONPATH=$(abspath $(FLOOR)) PULSEGATE_TEST_SDK_FLOOR=$(FLOOR_LOCK) $(BIN)/pytest -n 2 -m "not serial" $(FLOOR_TESTS)
	PYTHONPATH=$(abspath $(FLOOR)) PULSEGATE_TEST_SDK_FLOOR=$(FLOOR_LOCK) $(BIN)/pytest -m serial $(FLOOR_TESTS)

# The whole suite on the newest versions pyproject.toml admits, in a venv of its own built without the lock.
# Run it before every `make lock`: a refresh takes in only versions this has passed on. PYTEST_ARGS narrows the run
# while fixing one failure (e.g. PYTEST_ARGS=tests/emulator); the refresh needs the whole suite.
PYTEST_ARGS ?=

test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[test]'
	$(LATEST_VENV)/bin/python -m pip freeze --exclude-editable > $(LATEST_VENV)/versions.txt
	@echo "newest admitted versions (also in $(LATEST_VENV)/versions.txt):"
	@cat $(LATEST_VENV)/versions.txt
	$(LATEST_VENV)/bin/ruff check .
	$(LATEST_VENV)/bin/ruff format --check .
	PULSEGATE_TEST_UNLOCKED=1 $(LATEST_VENV)/bin/pytest $(PYTEST_ARGS)

$(LOCK_VENV)/bin/uv:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION) packaging

# Resolves the newest admitted versions for this interpreter (CPython 3.11 on Linux, as every machine of the
# project) from the package index, with the hashes of every file of each version; then raises each lower bound in
# pyproject.toml to the version now locked (the SDKs keep their floor), so that every bound is a tested version.
lock: $(LOCK_VENV)/bin/uv
	printf 'pip\nsetuptools>=69\nwheel\n' | $(LOCK_VENV)/bin/uv pip compile --quiet --upgrade --generate-hashes \
		--python $(PYTHON) --extra test --custom-compile-command 'make lock' -o $(LOCK) - pyproject.toml
	$(LOCK_VENV)/bin/python .ci/lockfile.py floor-pins | $(LOCK_VENV)/bin/uv pip compile --quiet --upgrade \
		--no-deps --generate-hashes --python $(PYTHON) --custom-compile-command 'make lock' -o $(FLOOR_LOCK) -
	$(LOCK_VENV)/bin/python .ci/lockfile.py raise-lower-bounds $(LOCK)

# `make soak-test`: the whole product for 5 minutes (2 failure cycles of 150 s) with the Overview open in headless
# Chromium, judged at the end (benchmarks/soak.py; the 30-minute run: .venv/bin/python benchmarks/soak.py).
# Needs /usr/bin/chromium; CI runs it after `make test`.
soak-test: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes 5 --cycle-s 150

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

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
	rm -rf $(VENV) $(LATEST_VENV) $(LOCK_VENV) $(NODE_CLIENTS)/node_modules build *.egg-info .pytest_cache .ruff_cache
