# Two commands do all the set-up: `make demo` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck layers unit bench clean browser

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

unit: $(STAMP) browser
	$(BIN)/pytest -q

# The console's browser test drives Debian's chromium through chromium-driver (never a downloaded
# browser). Installed here on first use when running as root; otherwise the test skips, saying so.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	else echo "not root: chromium and chromium-driver not installed; the console's browser test will skip"; fi

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .ruff_cache
