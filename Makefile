# The two commands of the README:  `make run`  and  `make test`.
# Both create .venv and install spendfuse with its dev extras on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' --config-settings editable_mode=strict
	touch $(STAMP)

install: $(STAMP)

## Run the service on embedded defaults: a local Kafka broker (Java 17), the worker, console alerts.
run: $(STAMP)
	$(BIN)/spendfuse run

## Run the whole suite: lint, layering contract, unit and integration tests on a real broker.
test: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps -e . --config-settings editable_mode=strict
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build .spendfuse .pytest_cache .ruff_cache
