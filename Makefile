# The two commands a new machine needs: `make demo` and `make test`.
# uv comes from PyPI when missing; everything else comes from uv.lock.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen
STACK ?= dev

.PHONY: setup demo test lint typecheck unit bench

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --all-packages --compile-bytecode --quiet

demo: setup
	$(RUN) coldreach plan --stack $(STACK)

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) pyright

typecheck: setup
	$(RUN) pyright

unit: setup
	$(RUN) pytest

test: lint unit

bench: setup
	$(RUN) python benchmarks/plan_wall_time.py
