# Sourced by test.sh: a test run has infrastructure of its own — its own broker, store and
# data folder — apart from what `make dev` runs on the default addresses (9092, 27017), so
# that `make test` passes while `make dev` runs: tests never see the running system's
# events, and its consumers never take theirs. GALA_TEST_KAFKA_BOOTSTRAP,
# GALA_TEST_MONGO_URL and GALA_TEST_INFRA_STATE_DIR point a test run elsewhere (e.g. at
# infrastructure someone else started); the cache of downloads and builds is shared.
export GALA_KAFKA_BOOTSTRAP="${GALA_TEST_KAFKA_BOOTSTRAP:-127.0.0.1:19092}"
export GALA_MONGO_URL="${GALA_TEST_MONGO_URL:-mongodb://127.0.0.1:37017}"
export GALA_INFRA_STATE_DIR="${GALA_TEST_INFRA_STATE_DIR:-deploy/local/.state-test}"
