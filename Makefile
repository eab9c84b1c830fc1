# Two commands for a newcomer: `make run` (the main job) and `make test` (the whole suite, with lint and
# types). Both create .venv and install the project into it on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/router validate routes.yaml
	$(BIN)/router serve --policy routes.yaml

test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict router

bench: $(STAMP)
	$(BIN)/python bench/resolve.py
	$(BIN)/python bench/client.py
	$(BIN)/python bench/async_http.py
	$(BIN)/python bench/gateway/run.py
	$(BIN)/python bench/health.py
	$(BIN)/python bench/faults.py

schema: $(STAMP)
	$(BIN)/router schema > schemas/routes.schema.json
	$(BIN)/router schema --openapi > schemas/openapi.json
	$(BIN)/router schema --scenario > schemas/scenario.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
