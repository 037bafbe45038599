# Prisma Glow — `make run` starts the product with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: run test fuzz venv dev-venv migrate seed worker lint lint-imports format bench system-deps clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || { python=$$(scripts/find-python) && echo "Creating $(VENV) with $$python" && "$$python" -m venv $(VENV); }
	@echo "Installing Prisma Glow and its dependencies into $(VENV) (the first time takes a minute or two)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed
dev-venv: $(VENV)/.installed-dev

migrate: venv
	@echo "Applying database migrations"
	@$(PY) manage.py migrate --noinput -v 0

seed: migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py seed_demo_evaluations

## Set up (venv, migrations, demo data) and start the web server and the background worker.
run: seed
	@scripts/run-dev "$(PY)" "$(HOST)" "$(PORT)"

worker: venv
	$(PY) manage.py db_worker

## The whole suite on PostgreSQL (throwaway cluster) and SQLite, then ruff and migration checks.
test: dev-venv
	@scripts/test "$(PY)"

## Deep schema fuzzing (docs/api.md): 50 random examples per operation in process, then the schemathesis
## CLI (every check, stateful phase) against gunicorn on a throwaway PostgreSQL. FUZZ_EXAMPLES, FUZZ_SEED.
fuzz: dev-venv
	@scripts/fuzz "$(PY)"

lint: dev-venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## The import contracts in pyproject.toml ([tool.importlinter]): the layers, checked.
lint-imports: dev-venv
	$(VENV)/bin/lint-imports

format: dev-venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: dev-venv
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## Debian packages the tests need (run as root): PostgreSQL server, Redis, Chromium.
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		postgresql-15 postgresql-contrib-15 redis-server chromium fonts-dejavu-core >/dev/null

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
