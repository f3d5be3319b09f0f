#!/usr/bin/env bash
# Runs every benchmark, one at a time, and writes docs/benchmarks.md (called by `make bench`).
#
# Runs on infrastructure of its own (bench-env.sh: 127.0.0.1:29092,
# mongodb://127.0.0.1:57017, deploy/local/.state-bench); starts Kafka and the store only when
# nothing answers there, and on exit stops only what this run started. Each benchmark
# measures Gala beside a baseline in the same run and appends its figures to
# docs/benchmarks.jsonl (gala.benchmarking); the Markdown is rendered from that file.
# BENCH="board_10k import_100k" runs only the scripts whose names contain those words
# (their earlier figures are replaced, the others kept). A benchmark that fails is named
# at the end and the exit code is 1; the others still run. Never run two at once: the
# figures of one would carry the other's load.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
infra=("$python" deploy/local/infra.py)

# In the order they run: the HTTP path first, the long socket runs last.
BENCHMARKS=(
    gateway/benchmarks/http_path.py
    services/contacts/benchmarks/list_100k.py
    deploy/local/ferretdb/pushdown_benchmark.py
    services/pipeline/benchmarks/board_10k.py
    services/contacts/benchmarks/import_100k.py
    shared/benchmarks/consumer_throughput.py
    services/projects/benchmarks/won_to_project.py
    shared/benchmarks/consumer_pause.py
    services/partners/benchmarks/webhooks.py
    services/chat/benchmarks/sockets_fanout.py
)
RESULTS=docs/benchmarks.jsonl
OUT=docs/benchmarks.md

run_file=$(mktemp "${TMPDIR:-/tmp}/gala-bench-results.XXXXXX")
OWN_INFRA_TEMP_FILES=$run_file
# shellcheck source=deploy/local/own-infra.sh
source deploy/local/own-infra.sh
own_infra deploy/local/bench-env.sh bench.sh
export GALA_DEV_MODE=true  # throwaway runs: made-up secrets

selected=()
for script in "${BENCHMARKS[@]}"; do
    if [[ -z "${BENCH:-}" ]]; then
        selected+=("$script")
        continue
    fi
    for word in $BENCH; do
        if [[ $script == *"$word"* ]]; then
            selected+=("$script")
            break
        fi
    done
done
if [[ ${#selected[@]} -eq 0 ]]; then
    echo "bench.sh: no benchmark matches BENCH=$BENCH" >&2
    exit 2
fi

failed=()
for script in "${selected[@]}"; do
    echo "bench.sh: === $script" >&2
    : >"$run_file"
    if ! GALA_BENCH_RESULTS="$run_file" .venv/bin/python "$script"; then
        failed+=("$script")
        continue  # its earlier figures stay
    fi
    # after each benchmark, so that an interrupted run keeps what it measured
    .venv/bin/python -m gala.benchmarking merge "$RESULTS" "$run_file" "$script"
    .venv/bin/python -m gala.benchmarking render "$RESULTS" "$OUT"
    echo "bench.sh: wrote $OUT" >&2
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "bench.sh: failed: ${failed[*]}" >&2
    exit 1
fi
