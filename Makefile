# The two commands of the README:  `make run`  and  `make test`.
# Both create .venv and install spendfuse with its dev extras on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean dashboard browser

# pip's and setuptools' chatter goes to $(VENV)/install.log; it is printed only if a step fails.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing spendfuse and its dev extras into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -q --upgrade pip > $(VENV)/install.log 2>&1 \
	  || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install -q -e '.[dev]' --config-settings editable_mode=strict \
	  >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(STAMP)

install: $(STAMP)

## The demo: a local Kafka broker (Java 17), the worker and its dashboard, simulated traffic with a
## runaway agent loop that gets caught and stopped. (`spendfuse run` is the service alone.)
run: $(STAMP)
	$(BIN)/spendfuse demo

## Run the whole suite: lint, format, layering contract, unit and integration tests on a real broker.
test: $(STAMP) dashboard browser
	@$(BIN)/python -m pip install -q --no-deps -e . --config-settings editable_mode=strict \
	  >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

## Build the dashboard's chart library (uPlot, from npm) into streams/web/static/vendor/.
dashboard:
	cd dashboard && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

## Debian's Chromium for the dashboard's browser test (Playwright drives /usr/bin/chromium).
browser:
	test -x /usr/bin/chromium || (apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build .spendfuse .pytest_cache .ruff_cache
