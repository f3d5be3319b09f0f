# Sourced by bench.sh: benchmarks run on infrastructure of their own — a broker, store and
# data folder apart from `make dev`'s (9092, 27017) and `make test`'s (19092, 37017) — so
# that nothing else's load or data is in their figures. GALA_BENCH_KAFKA_BOOTSTRAP,
# GALA_BENCH_MONGO_URL and GALA_BENCH_INFRA_STATE_DIR point a run elsewhere (e.g. at a
# real MongoDB); the cache of downloads and builds is shared.
export GALA_KAFKA_BOOTSTRAP="${GALA_BENCH_KAFKA_BOOTSTRAP:-127.0.0.1:29092}"
export GALA_MONGO_URL="${GALA_BENCH_MONGO_URL:-mongodb://127.0.0.1:57017}"
export GALA_INFRA_STATE_DIR="${GALA_BENCH_INFRA_STATE_DIR:-deploy/local/.state-bench}"
