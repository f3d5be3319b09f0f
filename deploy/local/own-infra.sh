# Sourced by test.sh and bench.sh: a run on infrastructure of its own. `own_infra ENV NAME`
# sources ENV (which names the addresses and the data folder), starts Kafka and the store
# only when nothing answers there, exports GALA_KAFKA_BOOTSTRAP and GALA_MONGO_URL, and on
# exit stops only what this run started (and removes the files in OWN_INFRA_TEMP_FILES).
# The caller defines `infra`, the infra.py command line.

own_infra() {
    local env_script=$1
    OWN_INFRA_NAME=$2
    OWN_INFRA_STARTED=$(mktemp "${TMPDIR:-/tmp}/gala-infra-started.XXXXXX")
    trap _own_infra_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # shellcheck source=/dev/null
    source "$env_script"
    local env_lines line
    env_lines=$("${infra[@]}" up --started-file "$OWN_INFRA_STARTED")
    while IFS= read -r line; do
        case $line in
            GALA_KAFKA_BOOTSTRAP=* | GALA_MONGO_URL=*) export "${line?}" ;;
        esac
    done <<<"$env_lines"
    echo "$OWN_INFRA_NAME: GALA_KAFKA_BOOTSTRAP=$GALA_KAFKA_BOOTSTRAP GALA_MONGO_URL=$GALA_MONGO_URL" >&2
}

_own_infra_cleanup() {
    local rc=$?
    local started
    started=$(cat "$OWN_INFRA_STARTED" 2>/dev/null || true)
    # shellcheck disable=SC2086  # a space-separated list of files
    rm -f "$OWN_INFRA_STARTED" ${OWN_INFRA_TEMP_FILES:-}
    if [[ -n "${started// /}" ]]; then
        echo "$OWN_INFRA_NAME: stopping what this run started: $started" >&2
        # shellcheck disable=SC2086  # word splitting wanted: one argument per component
        "${infra[@]}" down $started || echo "$OWN_INFRA_NAME: infra down failed" >&2
    fi
    exit "$rc"
}
