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
	services/billing/pyproject.toml services/partners/pyproject.toml gateway/pyproject.toml))
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PACKAGES))
LINT_PATHS := shared services gateway deploy

INFRA := $(PYTHON) deploy/local/infra.py

# Stripe's own API mock server (a Go program): billing's tests run the Stripe calls
# against it, and `make dev` serves checkout from it when no Stripe key is configured.
STRIPE_MOCK_VERSION := v0.203.0
STRIPE_MOCK := .tools/stripe-mock-$(STRIPE_MOCK_VERSION)/stripe-mock
export GALA_STRIPE_MOCK := $(abspath $(STRIPE_MOCK))

# Checks in other ecosystems: the AsyncAPI project's own parser (tools/asyncapi) and the
# Node.js webhook receiver example (examples/webhook-receiver-node), each `npm ci` from its
# lock (versions and hashes) only when the lock changed; Debian's Chromium for the docs
# page's screenshot (never a browser download).
NODE_PROJECTS := tools/asyncapi examples/webhook-receiver-node
NODE_STAMPS := $(addsuffix /node_modules/.gala-installed,$(NODE_PROJECTS))
CHROMIUM := /usr/bin/chromium

# Offline checks of deploy/k8s (deploy/k8s/validate.py): kustomize built from its Go
# module like stripe-mock, KEDA's CRD manifests from KEDA's Go module (it ships them), and
# a tools environment with kubernetes-validate (PyPI; it ships the Kubernetes JSON schemas).
KUSTOMIZE_VERSION := v5.7.1
KUSTOMIZE := .tools/kustomize-$(KUSTOMIZE_VERSION)/kustomize
KEDA_VERSION := v2.21.0
KEDA_CRDS := .tools/keda-crds-$(KEDA_VERSION)
KEDA_CRDS_STAMP := $(KEDA_CRDS)/.copied
K8S_VALIDATE := .tools/k8s-validate
K8S_VALIDATE_STAMP := $(K8S_VALIDATE)/.installed
export GALA_KUSTOMIZE := $(abspath $(KUSTOMIZE))
export GALA_KEDA_CRDS := $(abspath $(KEDA_CRDS))
export GALA_K8S_VALIDATE_PYTHON := $(abspath $(K8S_VALIDATE))/bin/python
# promtool checks deploy/observability's alert rules: Debian's prometheus package ships it
# (only the .deb is fetched and unpacked, nothing is installed; a Go build of it takes
# minutes and gigabytes).
PROMTOOL := .tools/promtool/promtool
export GALA_PROMTOOL := $(abspath $(PROMTOOL))

.PHONY: help venv tools deploy-tools node-tools chromium bench-tools contracts lock infra-up infra-down infra-status infra-logs test bench dev lint fmt clean

help:
	@echo "make venv          create/refresh .venv (only when requirements.lock or a pyproject.toml changed)"
	@echo "make tools         build the pinned stripe-mock into .tools/ (needs go)"
	@echo "make node-tools    npm ci tools/asyncapi and the Node.js webhook receiver example (when a lock changed)"
	@echo "make chromium      apt-get install Debian's chromium when /usr/bin/chromium is missing (root)"
	@echo "make bench-tools   apt-get install Debian's wrk (the HTTP benchmark's load) when it is missing (root)"
	@echo "make deploy-tools  kustomize, KEDA's CRDs, kubernetes-validate, promtool into .tools/ (deploy checks)"
	@echo "make contracts     regenerate the published event contract (JSON Schemas, AsyncAPI)"
	@echo "make lock          recompile requirements.lock from requirements.in"
	@echo "make bench         run every benchmark (own infra) and write docs/benchmarks.md; BENCH=words picks"
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

%/node_modules/.gala-installed: %/package-lock.json %/package.json
	cd $* && npm ci --no-audit --no-fund --omit-lockfile-registry-resolved
	touch $@

node-tools: $(NODE_STAMPS)

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "chromium is missing: run 'sudo apt-get install -y chromium' (Debian's)" >&2; exit 1; \
		fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

# wrk drives gateway/benchmarks/http_path.py's load (without it, a slower Python load
# generator does, and the figures say so).
bench-tools:
	@if ! command -v wrk >/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "wrk is missing: run 'sudo apt-get install -y wrk' (Debian's)" >&2; exit 1; \
		fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; \
	fi

$(KUSTOMIZE):
	GOBIN=$(abspath $(dir $@)) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

$(KEDA_CRDS_STAMP):
	rm -rf $(KEDA_CRDS) && mkdir -p $(KEDA_CRDS)
	dir=$$(go mod download -json github.com/kedacore/keda/v2@$(KEDA_VERSION) \
		| $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') && \
		cp "$$dir"/config/crd/bases/*.yaml $(KEDA_CRDS)/ && chmod u+w $(KEDA_CRDS)/*.yaml
	touch $@

$(K8S_VALIDATE_STAMP): deploy/k8s/validate-requirements.txt | $(UV_STAMP)
	rm -rf $(K8S_VALIDATE)
	$(UV) venv --python "$(PYTHON)" --no-python-downloads $(K8S_VALIDATE)
	$(UV) pip sync --python $(K8S_VALIDATE)/bin/python deploy/k8s/validate-requirements.txt
	touch $@

$(PROMTOOL):
	rm -rf $(dir $@) && mkdir -p $(dir $@)deb
	cd $(dir $@)deb && if ! apt-get download prometheus; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "apt-get download prometheus failed: run 'sudo apt-get update' first" >&2; exit 1; \
		fi; \
		apt-get update && apt-get download prometheus; \
	fi
	dpkg-deb -x $(dir $@)deb/prometheus_*.deb $(dir $@)deb/root
	cp $(dir $@)deb/root/usr/bin/promtool $@ && rm -rf $(dir $@)deb
	$@ --version

deploy-tools: $(KUSTOMIZE) $(KEDA_CRDS_STAMP) $(K8S_VALIDATE_STAMP) $(PROMTOOL)

contracts: venv
	$(VENV_PY) -m gala.contracts.publish

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

test: venv tools node-tools chromium deploy-tools
	deploy/local/test.sh

# Every benchmark, one at a time, on infrastructure of its own; writes docs/benchmarks.md.
# Not part of CI (figures are not tests); BENCH="board import" runs a subset.
bench: venv bench-tools
	deploy/local/bench.sh

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
