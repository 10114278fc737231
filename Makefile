# Two commands set everything up: `make demo` and `make test` (both create .venv when missing).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gfbench complexity

test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check gfbench tests benchmarks
	$(BIN)/mypy gfbench

lint: $(STAMP)
	$(BIN)/ruff check gfbench tests benchmarks
	$(BIN)/mypy gfbench

clean:
	rm -rf $(VENV) build *.egg-info
