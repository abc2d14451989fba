# Two commands on a fresh machine: `make run` serves the API, `make test` tests it.
# `make check` is the fast tier for the inner loop: lint and the unit tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test check bench lint format migrate openapi swagger-ui deploy-local system-packages clean

run: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# Everything: lint, the unit tests and the end-to-end tests (tests/e2e: gunicorn,
# nginx, chromium, newman, load and faults), with branch coverage. The unit tier
# runs on both cores (as make check does); the end-to-end tier, whose tests
# start servers and time their work, one test at a time after it.
test: $(VENV)/.dev node_modules/.installed system-packages lint
	$(BIN)/pytest -m "not e2e" -n 2 --dist worksteal --cov --cov-report=
	$(BIN)/pytest -m e2e --cov --cov-append --cov-report=term-missing:skip-covered

# Lint and the unit tier on both cores, in a few minutes: no server is started.
check: $(VENV)/.dev lint
	$(BIN)/pytest -m "not e2e" -n 2 --dist worksteal -q

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The API under load (BENCHMARKS.md): wrk from Debian, installed when missing.
# BENCH_ARGS: e.g. "--seconds 30 --backends sqlite"; see python -m bench.run -h.
bench: $(VENV)/.dev
	@command -v wrk >/dev/null || { echo "installing wrk (apt-get)"; \
	  apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

migrate: $(VENV)/.runtime
	$(FLASK) db upgrade

# docs/openapi.json: the OpenAPI document as served, kept for review.
openapi: $(VENV)/.runtime
	APP_CONFIG=testing $(FLASK) openapi-snapshot docs/openapi.json

# api/static/swagger-ui/: the files /api/docs loads (flask-smorest's page asks for
# these three), with their licences, copied from swagger-ui-dist as package.json
# pins it; committed, so `make run` serves them with no npm and no CDN. To upgrade:
# set the new exact version in package.json, `npm install`, `make swagger-ui`.
SWAGGER_UI := api/static/swagger-ui
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt \
	swagger-ui-standalone-preset.js swagger-ui-standalone-preset.js.LICENSE.txt \
	swagger-ui.css LICENSE NOTICE
swagger-ui: node_modules/.installed
	rm -rf $(SWAGGER_UI)
	mkdir -p $(SWAGGER_UI)
	cd node_modules/swagger-ui-dist && cp $(SWAGGER_UI_FILES) $(CURDIR)/$(SWAGGER_UI)/
	node -p 'require("./node_modules/swagger-ui-dist/package.json").version' > $(SWAGGER_UI)/VERSION

# nginx (TLS) in front of two gunicorn instances on 127.0.0.1: deploy/README.md.
deploy-local: $(VENV)/.runtime
	$(BIN)/python -m deploy.local

# Debian packages the full test run uses, installed when missing: ssh-keygen
# (tutorial-style key pairs), chromium (browser tests; Playwright drives it and
# downloads no browser) and nginx (tests/e2e/test_deploy.py; Debian puts it in /usr/sbin).
system-packages:
	@missing=""; \
	command -v ssh-keygen >/dev/null || missing="$$missing openssh-client"; \
	PATH="$$PATH:/usr/sbin" command -v nginx >/dev/null || missing="$$missing nginx-light"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (apt-get)"; \
	  apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# newman, which runs the Postman collection in the tests; swagger-ui-dist (make swagger-ui).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .coverage artifacts
