#!/usr/bin/env bash
# Lint, type-check and run the test suite against local infrastructure (called by `make test`).
#
# Runs on infrastructure of its own (test-env.sh: 127.0.0.1:19092, mongodb://127.0.0.1:37017,
# deploy/local/.state-test), apart from `make dev`'s; starts Kafka and the store only when
# nothing answers there, and on exit stops only what this run started.
# Extra pytest arguments: PYTEST_ARGS="-k foo -x".
# Exits with pytest's exit code (5 means no tests were collected).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
infra=("$python" deploy/local/infra.py)

# shellcheck source=deploy/local/own-infra.sh
source deploy/local/own-infra.sh
own_infra deploy/local/test-env.sh test.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

# shellcheck disable=SC2086  # PYTEST_ARGS is a space-separated argument list
.venv/bin/python -m pytest ${PYTEST_ARGS:-}
