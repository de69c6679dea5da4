# player-sessions: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PS := $(BIN)/player-sessions
STAMP := $(VENV)/.installed

.PHONY: install lock run test test-unit lint typecheck db-start db-stop clean bench demo fuzz faults

# Exact versions with their hashes from requirements.lock, then the project itself without resolving again.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# $(call with_db,COMMAND): run COMMAND against the local Cassandra and exit with COMMAND's status. A node
# that is already up (`db status` exits 0: someone else's `make run` or test run) is used and left
# running. Otherwise `db start` runs first and `db stop` after; that stops only nodes this checkout's
# launcher started, so a Cassandra that merely answers on 127.0.0.1 is used and left running too.
# COMMAND must not contain a comma.
with_db = if $(PS) db status >/dev/null 2>&1; then started=; else $(PS) db start || exit; started=1; fi; \
	$(1); status=$$?; if [ -n "$$started" ]; then $(PS) db stop; fi; exit $$status

## lock: re-resolve requirements.lock from pyproject.toml (every extra; exact versions and hashes; keeps
## current pins that still fit, UPGRADE=1 moves everything to the newest allowed)
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q 'uv>=0.5'
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 --generate-hashes \
		--no-header --quiet $(if $(UPGRADE),--upgrade) -o requirements.lock

db-start: install
	$(PS) db start

db-stop: install
	$(PS) db stop

## run: start the local Cassandra if none answers, then the service on :8000
run: install
	$(PS) db start
	$(PS) serve --host 127.0.0.1 --port 8000

## test: the whole suite against a real Cassandra (started and stopped here if none is up)
test: install
	$(call with_db,$(BIN)/pytest -q)

test-unit: install
	$(BIN)/pytest -q tests/unit

## lint: ruff's rules and its formatting (`ruff format src tests scripts` applies the formatting)
lint: install
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

typecheck: install
	$(BIN)/mypy

## bench: benchmark against the local Cassandra (~20-30 min); BENCH_ARGS=--quick for < 3 min
bench: install
	$(PS) db start
	$(PS) bench $(BENCH_ARGS)

## fuzz: schemathesis from /openapi.json, 2,500 examples per operation (15,232 requests, ~3.5 min)
fuzz: install
	$(call with_db,PS_FUZZ_MAX_EXAMPLES=$${PS_FUZZ_MAX_EXAMPLES:-2500} $(BIN)/pytest -q -s tests/e2e/test_fuzz.py)

## faults: the fault and limit tests at the sizes of docs/reliability.md (~10 min)
faults: install
	$(call with_db,PS_FAULTS_SCALE=full $(BIN)/pytest -q -s -m faults tests/faults)

## demo: generate a month of data, load it through the API, show three queries
demo: install
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
