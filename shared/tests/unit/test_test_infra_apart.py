"""A test run has infrastructure of its own, apart from what `make dev` runs, so that
`make test` passes while `make dev` runs (tests never see the running system's events,
nor does it take theirs); so has a benchmark run (`make bench`), apart from both."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def infra_module():  # deploy/local/infra.py, which `make dev` and `make test` both run
    spec = importlib.util.spec_from_file_location("gala_infra", REPO / "deploy/local/infra.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def env_of_a_test_run(**given: str) -> dict[str, str]:
    return env_of("deploy/local/test-env.sh", **given)


def env_of(env_script: str, **given: str) -> dict[str, str]:
    script = (
        f'source {env_script}; echo "$GALA_KAFKA_BOOTSTRAP|$GALA_MONGO_URL|$GALA_INFRA_STATE_DIR"'
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env={"PATH": "/usr/bin:/bin", **given},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    kafka, mongo, state = done.stdout.strip().split("|")
    return {"kafka": kafka, "mongo": mongo, "state": state}


def test_a_test_run_uses_its_own_broker_store_and_data():
    infra = infra_module()
    test = env_of_a_test_run()
    assert test["kafka"] != infra.DEFAULT_KAFKA
    assert test["mongo"] != infra.DEFAULT_MONGO
    assert (REPO / test["state"]).resolve() != (REPO / "deploy/local/.state").resolve()
    # and every port differs from what `make dev` uses (Kafka's controller is port + 1)
    dev_ports = {9092, 9093, 27017}
    kafka_port = int(test["kafka"].rsplit(":", 1)[1])
    mongo_port = int(test["mongo"].rsplit(":", 1)[1])
    assert not {kafka_port, kafka_port + 1, mongo_port} & dev_ports


def test_a_test_run_can_be_pointed_elsewhere():
    test = env_of_a_test_run(
        GALA_TEST_KAFKA_BOOTSTRAP="10.0.0.5:9092",
        GALA_TEST_MONGO_URL="mongodb://db.example:27017",
        GALA_TEST_INFRA_STATE_DIR="/tmp/elsewhere",
    )
    assert test == {
        "kafka": "10.0.0.5:9092",
        "mongo": "mongodb://db.example:27017",
        "state": "/tmp/elsewhere",
    }


def test_a_benchmark_run_is_apart_from_both_dev_and_tests():
    infra = infra_module()
    bench, test = env_of("deploy/local/bench-env.sh"), env_of_a_test_run()
    ports = {"kafka": infra.DEFAULT_KAFKA, "mongo": infra.DEFAULT_MONGO}
    used = set()
    for run in (ports, test):
        kafka_port = int(run["kafka"].rsplit(":", 1)[1])
        used |= {kafka_port, kafka_port + 1, int(run["mongo"].rsplit(":", 1)[1])}
    kafka_port = int(bench["kafka"].rsplit(":", 1)[1])
    assert not {kafka_port, kafka_port + 1, int(bench["mongo"].rsplit(":", 1)[1])} & used
    states = {(REPO / s).resolve() for s in ("deploy/local/.state", test["state"])}
    assert (REPO / bench["state"]).resolve() not in states


def test_make_bench_runs_every_benchmark_script_there_is():
    listed = set()
    in_list = False
    for line in (REPO / "deploy/local/bench.sh").read_text().splitlines():
        if line.startswith("BENCHMARKS=("):
            in_list = True
        elif in_list and line.strip() == ")":
            break
        elif in_list:
            listed.add(line.strip())
    scripts = {
        str(path.relative_to(REPO))
        for pattern in ("*/benchmarks/*.py", "services/*/benchmarks/*.py")
        for path in REPO.glob(pattern)
    } | {"deploy/local/ferretdb/pushdown_benchmark.py"}
    assert listed == scripts
    assert all((REPO / script).is_file() for script in listed)
