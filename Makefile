# Conveniences around the README's two commands (which need only Python >= 3.11 and pip).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup benchmark test bench lint docs

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[dev,ray,fast,tensorboard,export,docs]"

benchmark: setup
	$(BIN)/python run_benchmark.py --methods stars,baseline --missing all

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m pytest tests/benchmarks -p no:randomly --benchmark-enable -m benchmark

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
