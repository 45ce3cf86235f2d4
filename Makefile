# One command per job; each target is a thin wrapper. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export JORNADA_DATABASE_URL ?= sqlite:///var/jornada.db

.PHONY: help run test lint fmt bench migrate lock clean

help:
	@echo "make run    - set up .venv, migrate var/jornada.db, seed the demo workspace, serve http://127.0.0.1:8000"
	@echo "make test   - the whole test suite (SQLite and a throwaway PostgreSQL cluster)"
	@echo "make lint   - ruff, ruff format --check, mypy --strict, import-linter layers"
	@echo "make fmt    - ruff format and autofix"
	@echo "make bench  - benchmarks in bench/, with their baselines"
	@echo "make migrate - apply migrations to JORNADA_DATABASE_URL"
	@echo "make lock   - refresh requirements.lock from the current .venv"

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/jornada demo
	$(BIN)/jornada serve

# the browser tests drive Debian's Chromium; installed here when missing (root, or sudo)
CHROMIUM ?= /usr/bin/chromium
export JORNADA_TEST_CHROMIUM := $(CHROMIUM)
APT := $(shell [ "$$(id -u)" = 0 ] || echo sudo) DEBIAN_FRONTEND=noninteractive apt-get

$(CHROMIUM):
	@echo "the browser tests need Chromium: installing Debian's chromium package"
	$(APT) install -y --no-install-recommends chromium || \
		{ $(APT) update && $(APT) install -y --no-install-recommends chromium; }

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -P bench/ingest.py
	$(BIN)/python -P bench/flows.py
	$(BIN)/python -P bench/segments.py
	$(BIN)/python -P bench/email.py

migrate: $(STAMP)
	$(BIN)/jornada db upgrade

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^jornada' > requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
