# Two commands do all the set-up: `make demo` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck layers unit bench clean

$(STAMP): pyproject.toml testbed/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./testbed
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/blindgate-testbed demo

test: lint typecheck layers unit

lint: $(STAMP)
	$(BIN)/ruff check src testbed tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The import layering of pyproject.toml's [tool.importlinter] contracts.
layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .ruff_cache
