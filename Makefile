# Gala developer entry points. Run `make help` for the list.
#
# Tools: a pinned uv in .tools/uv bootstraps one environment, .venv, from requirements.lock
# plus the repo's own packages installed editable. uv never downloads an interpreter: it
# uses python3.11 (or python3) from PATH.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

export UV_PYTHON_DOWNLOADS := never
export PYTEST_ARGS

UV_VERSION := 0.13.9
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_ENV := .tools/uv
UV := $(UV_ENV)/bin/uv
UV_STAMP := $(UV_ENV)/.installed-$(UV_VERSION)
VENV := .venv
VENV_PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.gala-synced

# The repo's own packages, in dependency order; each is installed only if it exists.
PACKAGES := $(patsubst %/pyproject.toml,%,$(wildcard shared/pyproject.toml \
	services/contacts/pyproject.toml services/pipeline/pyproject.toml \
	services/projects/pyproject.toml services/chat/pyproject.toml \
	services/billing/pyproject.toml gateway/pyproject.toml))
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PACKAGES))
LINT_PATHS := shared services gateway deploy

INFRA := $(PYTHON) deploy/local/infra.py

# Stripe's own API mock server (a Go program): billing's tests run the Stripe calls
# against it, and `make dev` serves checkout from it when no Stripe key is configured.
STRIPE_MOCK_VERSION := v0.203.0
STRIPE_MOCK := .tools/stripe-mock-$(STRIPE_MOCK_VERSION)/stripe-mock
export GALA_STRIPE_MOCK := $(abspath $(STRIPE_MOCK))

.PHONY: help venv tools lock infra-up infra-down infra-status infra-logs test dev lint fmt clean

help:
	@echo "make venv          create/refresh .venv (only when requirements.lock or a pyproject.toml changed)"
	@echo "make tools         build the pinned stripe-mock into .tools/ (needs go)"
	@echo "make lock          recompile requirements.lock from requirements.in"
	@echo "make infra-up      start local Kafka + MongoDB-wire store (idempotent)"
	@echo "make infra-down    stop what infra-up started; WIPE=1 also deletes data"
	@echo "make infra-status  what answers, and who started it"
	@echo "make infra-logs    tail the infra logs (ARGS='kafka -f')"
	@echo "make test          lint + pytest against local infra (PYTEST_ARGS='-k foo')"
	@echo "make dev           infra + every service with prefixed output; Ctrl-C stops all"
	@echo "make lint          ruff check + ruff format --check"
	@echo "make fmt           ruff format + ruff check --fix"
	@echo "make clean         remove .venv, .tools and tool caches (not infra data or downloads)"

$(UV_STAMP):
	rm -rf $(UV_ENV)
	$(PYTHON) -m venv $(UV_ENV)
	$(UV_ENV)/bin/pip install --quiet uv==$(UV_VERSION)
	touch $@

$(VENV_STAMP): requirements.lock $(PYPROJECTS) | $(UV_STAMP)
	@test -x $(VENV_PY) || $(UV) venv --python "$(PYTHON)" --no-python-downloads $(VENV)
	$(UV) pip sync --python $(VENV_PY) requirements.lock
	$(UV) pip install --python $(VENV_PY) --no-deps $(addprefix -e ,$(PACKAGES))
	touch $@

venv: $(VENV_STAMP)

$(STRIPE_MOCK):
	GOBIN=$(abspath $(dir $@)) go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

tools: $(STRIPE_MOCK)

lock: | $(UV_STAMP)
	$(UV) pip compile --python-version 3.11 --generate-hashes --no-header \
		requirements.in -o requirements.lock

infra-up:
	@$(INFRA) up

infra-down:
	@$(INFRA) down $(if $(WIPE),--wipe)

infra-status:
	@$(INFRA) status

infra-logs:
	@$(INFRA) logs $(ARGS)

test: venv tools
	deploy/local/test.sh

dev: venv tools
	$(PYTHON) deploy/local/dev.py

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

fmt: venv
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

clean:
	rm -rf $(VENV) $(UV_ENV) .pytest_cache .ruff_cache .mypy_cache
	find . -path ./deploy/local/.state -prune -o -path ./deploy/local/.cache -prune \
		-o -name __pycache__ -type d -prune -exec rm -rf {} +
