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

started_file=$(mktemp "${TMPDIR:-/tmp}/gala-infra-started.XXXXXX")

cleanup() {
    local rc=$?
    local started
    started=$(cat "$started_file" 2>/dev/null || true)
    rm -f "$started_file"
    if [[ -n "${started// /}" ]]; then
        echo "test.sh: stopping what this run started: $started" >&2
        # shellcheck disable=SC2086  # word splitting wanted: one argument per component
        "${infra[@]}" down $started || echo "test.sh: infra down failed" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=deploy/local/test-env.sh
source deploy/local/test-env.sh
env_lines=$("${infra[@]}" up --started-file "$started_file")
while IFS= read -r line; do
    case $line in
        GALA_KAFKA_BOOTSTRAP=* | GALA_MONGO_URL=*) export "${line?}" ;;
    esac
done <<<"$env_lines"
echo "test.sh: GALA_KAFKA_BOOTSTRAP=$GALA_KAFKA_BOOTSTRAP GALA_MONGO_URL=$GALA_MONGO_URL" >&2

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

# shellcheck disable=SC2086  # PYTEST_ARGS is a space-separated argument list
.venv/bin/python -m pytest ${PYTEST_ARGS:-}
