# Two commands on a fresh machine: `make run` serves the API, `make test` tests it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test bench lint format migrate deploy-local clean

run: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.dev node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest --cov --cov-report=term-missing:skip-covered

# The API under load (BENCHMARKS.md): wrk from Debian, installed when missing.
# BENCH_ARGS: e.g. "--seconds 30 --backends sqlite"; see python -m bench.run -h.
bench: $(VENV)/.dev
	@command -v wrk >/dev/null || { echo "installing wrk (apt-get)"; \
	  apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(VENV)/.runtime
	$(FLASK) db upgrade

# nginx (TLS) in front of two gunicorn instances on 127.0.0.1: deploy/README.md.
deploy-local: $(VENV)/.runtime
	$(BIN)/python -m deploy.local

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# newman, which runs the Postman collection in the tests.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .coverage artifacts
