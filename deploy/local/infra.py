#!/usr/bin/env python3
"""Local infrastructure for Gala: a single-node Kafka broker and a MongoDB-wire store.

Standard library only (Python 3.11+), so it runs before any virtualenv exists.

    infra.py up [--started-file PATH] [--timeout S]   start what is missing, print the env
    infra.py down [--wipe] [kafka|store ...]          stop what `up` started (keeps data)
    infra.py status                                   what answers, and who started it
    infra.py logs [kafka|store] [-n N] [-f]           tail the log files

`up` is idempotent: whatever already answers at GALA_KAFKA_BOOTSTRAP (default
127.0.0.1:9092) or GALA_MONGO_URL (default mongodb://127.0.0.1:27017) is used as it is
and never stopped by `down`. Otherwise `up` provisions (once, into the cache folder),
starts the service detached and waits until it really answers its wire protocol. Its
stdout is exactly two lines, GALA_KAFKA_BOOTSTRAP=... and GALA_MONGO_URL=...; progress
goes to stderr.

Kafka 3.9 (KRaft, broker+controller in one JVM) runs from its Maven Central jars,
fetched with `mvn`. The store is `mongod` when it is on PATH, otherwise FerretDB (SQLite
backend) built from source with `go`, with deploy/local/ferretdb/*.patch applied (the
cached binary's name carries a hash of the patches, so editing one triggers a rebuild).

Folders (both git-ignored): deploy/local/.cache (jars, FerretDB binary; survives
`down --wipe`) and deploy/local/.state (data, pid files, logs). Override them with
GALA_INFRA_CACHE_DIR and GALA_INFRA_STATE_DIR.

Stale or corrupt Kafka state (data formatted for another cluster id, a broker that dies
while starting): `infra.py down --wipe` (`make infra-down WIPE=1`) deletes the state
folder; the next `up` formats a fresh one.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
RELOAD4J_VERSION = "1.2.25"
SLF4J_VERSION = "1.7.36"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
MIN_JAVA = 17
MIN_GO = (1, 21)  # older Go cannot switch to the go1.24 toolchain that FerretDB asks for

HERE = Path(__file__).resolve().parent
FERRETDB_PATCHES = HERE / "ferretdb"  # *.patch, applied in name order with `patch -p1`
DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_MONGO = "mongodb://127.0.0.1:27017"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
STATE_MARKER = ".gala-infra-state"
COMPONENTS = ("kafka", "store")
WIPE_HINT = (
    "if its data is stale or corrupt, start over with "
    "`python3 deploy/local/infra.py down --wipe` (make infra-down WIPE=1)"
)

INSTALL_JAVA = "install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)"
INSTALL_MVN = "install Maven 3.6+ (Debian: apt-get install maven)"
INSTALL_PATCH = "install patch (Debian: apt-get install patch)"
INSTALL_GO = (
    "install Go 1.21+ to build FerretDB (it fetches the go1.24 toolchain through the Go "
    "module proxy; Debian bookworm's golang-go 1.19 is too old), or put a `mongod` on PATH"
)


class InfraError(Exception):
    """A failure with a message meant for the person at the terminal."""


class Probe(Enum):
    ABSENT = "nothing listening"
    OK = "answers"
    FOREIGN = "listening, but does not answer the expected protocol"


def log(message: str) -> None:
    print(f"infra: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    state: Path
    cache: Path
    kafka_bootstrap: str
    kafka_host: str
    kafka_port: int
    controller_port: int
    mongo_url: str
    mongo_host: str
    mongo_port: int


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    address = address.split(",")[0].strip()
    if "://" in address:
        address = address.split("://", 1)[1]
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host, int(port)


def load_settings() -> Settings:
    bootstrap = os.environ.get("GALA_KAFKA_BOOTSTRAP") or DEFAULT_KAFKA
    mongo_url = os.environ.get("GALA_MONGO_URL") or DEFAULT_MONGO
    kafka_host, kafka_port = split_host_port(bootstrap, 9092)
    parts = urlsplit(mongo_url)
    mongo_host, mongo_port = split_host_port(parts.netloc.rpartition("@")[2], 27017)
    controller = os.environ.get("GALA_KAFKA_CONTROLLER_PORT") or str(kafka_port + 1)
    return Settings(
        state=Path(os.environ.get("GALA_INFRA_STATE_DIR") or HERE / ".state").resolve(),
        cache=Path(os.environ.get("GALA_INFRA_CACHE_DIR") or HERE / ".cache").resolve(),
        kafka_bootstrap=bootstrap,
        kafka_host=kafka_host,
        kafka_port=kafka_port,
        controller_port=int(controller),
        mongo_url=mongo_url,
        mongo_host=mongo_host,
        mongo_port=mongo_port,
    )


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------------- wire probes


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed mid-message")
        chunks += chunk
    return bytes(chunks)


class WireReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def ok(self) -> bool:
        raise NotImplementedError


def round_trip(host: str, port: int, request: bytes, read: type[WireReader]) -> Probe:
    try:
        sock = socket.create_connection((host, port), timeout=2.0)
    except OSError:
        return Probe.ABSENT
    try:
        with sock:
            sock.settimeout(3.0)
            sock.sendall(request)
            return Probe.OK if read(sock).ok() else Probe.FOREIGN
    except (OSError, ValueError, struct.error):
        return Probe.FOREIGN


KAFKA_CORRELATION_ID = 0x6A1A


def kafka_api_versions_request() -> bytes:
    client_id = b"gala-infra"
    # ApiVersions (key 18) v0: header only, no body.
    body = struct.pack(">hhih", 18, 0, KAFKA_CORRELATION_ID, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


class KafkaApiVersionsReader(WireReader):
    def ok(self) -> bool:
        (size,) = struct.unpack(">i", recv_exact(self.sock, 4))
        if not 6 <= size <= 1 << 20:
            return False
        correlation_id, error_code = struct.unpack_from(">ih", recv_exact(self.sock, size))
        return correlation_id == KAFKA_CORRELATION_ID and error_code == 0


def kafka_probe(host: str, port: int) -> Probe:
    return round_trip(host, port, kafka_api_versions_request(), KafkaApiVersionsReader)


MONGO_REQUEST_ID = 0x6A1A
OP_MSG = 2013
BSON_FIXED_SIZES = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8}


def bson_document(fields: dict[str, int | str]) -> bytes:
    body = bytearray()
    for key, value in fields.items():
        name = key.encode() + b"\x00"
        if isinstance(value, int):
            body += b"\x10" + name + struct.pack("<i", value)
        else:
            text = value.encode() + b"\x00"
            body += b"\x02" + name + struct.pack("<i", len(text)) + text
    return struct.pack("<i", len(body) + 5) + bytes(body) + b"\x00"


def bson_ok(document: bytes) -> bool:
    """True if the top-level field `ok` of a BSON document is truthy."""
    pos, end = 4, len(document) - 1
    while pos < end:
        kind = document[pos]
        name_end = document.index(b"\x00", pos + 1)
        name, pos = document[pos + 1 : name_end], name_end + 1
        if name == b"ok":
            return bson_number(kind, document, pos) != 0
        if kind in BSON_FIXED_SIZES:
            pos += BSON_FIXED_SIZES[kind]
        elif kind in (0x02, 0x03, 0x04, 0x05):
            (length,) = struct.unpack_from("<i", document, pos)
            pos += length + (4 if kind == 0x02 else 0) + (5 if kind == 0x05 else 0)
        else:
            return False
    return False


def bson_number(kind: int, document: bytes, pos: int) -> float:
    formats = {0x01: "<d", 0x08: "<?", 0x10: "<i", 0x12: "<q"}
    if kind not in formats:
        return 0
    return float(struct.unpack_from(formats[kind], document, pos)[0])


def mongo_ping_request() -> bytes:
    payload = struct.pack("<I", 0) + b"\x00" + bson_document({"ping": 1, "$db": "admin"})
    return struct.pack("<iiii", 16 + len(payload), MONGO_REQUEST_ID, 0, OP_MSG) + payload


class MongoPingReader(WireReader):
    def ok(self) -> bool:
        length, _, response_to, op_code = struct.unpack("<iiii", recv_exact(self.sock, 16))
        if op_code != OP_MSG or response_to != MONGO_REQUEST_ID or not 21 < length < 1 << 24:
            return False
        rest = recv_exact(self.sock, length - 16)
        return rest[4] == 0 and bson_ok(rest[5:])


def mongo_probe(host: str, port: int) -> Probe:
    return round_trip(host, port, mongo_ping_request(), MongoPingReader)


# ------------------------------------------------------------------ process records


@dataclass
class Started:
    pid: int
    address: str
    argv: list[str]
    log_offset: int


def pid_file(state: Path, name: str) -> Path:
    return state / name / "pid.json"


def read_record(state: Path, name: str) -> Started | None:
    try:
        data = json.loads(pid_file(state, name).read_text())
        return Started(
            int(data["pid"]), str(data["address"]), list(data["argv"]), int(data["log_offset"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(state: Path, name: str, record: Started) -> None:
    path = pid_file(state, name)
    path.write_text(json.dumps(record.__dict__, indent=2) + "\n")


def forget_record(state: Path, name: str) -> None:
    pid_file(state, name).unlink(missing_ok=True)


def is_alive(record: Started) -> bool:
    """The recorded process still runs, with the same command line (no pid reuse)."""
    proc = Path("/proc") / str(record.pid)
    if proc.parent.is_dir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().split(b"\x00")[:-1]
        except OSError:
            return False
        state = stat.rpartition(")")[2].split()[0]
        return state not in ("Z", "X") and [a.decode() for a in cmdline] == record.argv
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_record(state: Path, name: str) -> Started | None:
    record = read_record(state, name)
    if record is not None and not is_alive(record):
        forget_record(state, name)
        return None
    return record


def stop_process(record: Started, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_alive(record):
                return
            time.sleep(0.2)
        if sig == signal.SIGTERM:
            log(f"pid {record.pid} ignored SIGTERM for {grace:.0f}s; sending SIGKILL")
    if is_alive(record):
        raise InfraError(f"could not stop pid {record.pid}")


def spawn(argv: list[str], cwd: Path, output: Path) -> subprocess.Popen[bytes]:
    with output.open("ab") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def run_tool(
    argv: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-40:]
        raise InfraError(f"{what} failed (exit {result.returncode}):\n" + "\n".join(output))
    return result.stdout


def require(tool: str, install: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise InfraError(f"`{tool}` not found: {install}")
    return path


# ------------------------------------------------------------------------ components


class Component:
    name: str = ""
    grace: float = 15.0
    start_timeout: float = 120.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state / self.name

    @property
    def host(self) -> str:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def address(self) -> str:
        return host_port(self.host, self.port)

    def probe(self) -> Probe:
        raise NotImplementedError

    def check_tools(self) -> list[str]:
        """Messages about missing tools needed to provision and start this component."""
        raise NotImplementedError

    def prepare(self) -> list[str]:
        """Provision (cached) and write config; return the command line to start."""
        raise NotImplementedError

    @property
    def output_log(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.home / "output.log"

    @property
    def main_log(self) -> Path:
        """The log that readiness markers are searched in."""
        return self.output_log

    def log_files(self) -> list[Path]:
        return [self.main_log]

    def started_marker_seen(self, offset: int) -> bool:
        del offset
        return True

    def outdated(self, record: Started) -> bool:
        """The running process was started from a build that is no longer current."""
        del record
        return False

    def log_tails(self) -> str:
        return "\n".join(f"--- {path} (tail)\n{tail(path)}" for path in self.log_files())


class Kafka(Component):
    name = "kafka"
    grace = 30.0
    start_timeout = 180.0
    started_pattern = re.compile(r"Kafka Server started|started \(kafka\.server\.KafkaRaftServer\)")

    @property
    def host(self) -> str:
        return self.settings.kafka_host

    @property
    def port(self) -> int:
        return self.settings.kafka_port

    @property
    def libs(self) -> Path:
        return self.settings.cache / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def output_log(self) -> Path:
        return self.home / "stdout.log"

    @property
    def main_log(self) -> Path:
        return self.home / "server.log"

    def log_files(self) -> list[Path]:
        return [self.main_log, self.output_log]

    def probe(self) -> Probe:
        return kafka_probe(self.host, self.port)

    def check_tools(self) -> list[str]:
        problems = []
        java = shutil.which("java")
        if java is None:
            problems.append(f"`java` not found: {INSTALL_JAVA}")
        elif (version := java_major(java)) < MIN_JAVA:
            problems.append(f"java {version} is too old: {INSTALL_JAVA}")
        if not (self.libs / ".complete").exists() and shutil.which("mvn") is None:
            problems.append(f"`mvn` not found: {INSTALL_MVN}")
        return problems

    def prepare(self) -> list[str]:
        self.fetch_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        log4j = self.home / "log4j.properties"
        config.write_text(self.server_properties())
        log4j.write_text(self.log4j_properties())
        java = require("java", INSTALL_JAVA)
        classpath = str(self.libs / "*")
        self.format_storage(java, classpath, config, log4j)
        return [
            java,
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(config),
        ]

    def fetch_jars(self) -> None:
        if (self.libs / ".complete").exists():
            return
        mvn = require("mvn", INSTALL_MVN)
        work = self.libs.parent
        work.mkdir(parents=True, exist_ok=True)
        (work / "pom.xml").write_text(KAFKA_POM)
        partial = work / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        log(f"fetching Kafka {KAFKA_VERSION} jars with Maven (once) ...")
        started = time.monotonic()
        run_tool(
            [
                mvn,
                "-B",
                "-ntp",
                "-f",
                str(work / "pom.xml"),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={partial}",
                "-DincludeScope=runtime",
            ],
            "fetching the Kafka jars with mvn",
            cwd=work,
        )
        shutil.rmtree(self.libs, ignore_errors=True)
        partial.rename(self.libs)
        (self.libs / ".complete").touch()
        count = len(list(self.libs.glob("*.jar")))
        log(f"fetched {count} jars in {time.monotonic() - started:.0f}s")

    def cluster_id(self) -> str:
        path = self.home / "cluster-id"
        formatted = self.formatted_cluster_id()
        if path.exists():
            stored = path.read_text().strip()
            if formatted is not None and formatted != stored:
                raise InfraError(
                    f"Kafka data in {self.data_dir} is formatted for cluster {formatted}, "
                    f"but {path} says {stored}; {WIPE_HINT}"
                )
            return stored
        value = formatted or new_cluster_id()
        path.write_text(value + "\n")
        return value

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def formatted_cluster_id(self) -> str | None:
        meta = self.data_dir / "meta.properties"
        if not meta.exists():
            return None
        for line in meta.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        raise InfraError(f"{meta} has no cluster.id; {WIPE_HINT}")

    def format_storage(self, java: str, classpath: str, config: Path, log4j: Path) -> None:
        cluster_id = self.cluster_id()
        if self.formatted_cluster_id() is not None:
            return
        log(f"formatting Kafka storage (cluster id {cluster_id}) ...")
        run_tool(
            [
                java,
                f"-Dlog4j.configuration=file:{log4j}",
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
            ],
            "formatting the Kafka storage",
        )

    def server_properties(self) -> str:
        host, port, cport = self.host, self.port, self.settings.controller_port
        listener_host = f"[{host}]" if ":" in host else host
        return KAFKA_SERVER_PROPERTIES.format(
            controller=f"{listener_host}:{cport}",
            broker=f"{listener_host}:{port}",
            data=self.data_dir,
        )

    def log4j_properties(self) -> str:
        return KAFKA_LOG4J.format(log=self.main_log)

    def started_marker_seen(self, offset: int) -> bool:
        try:
            with self.main_log.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(offset if handle.tell() >= offset else 0)
                text = handle.read().decode(errors="replace")
        except OSError:
            return False
        return self.started_pattern.search(text) is not None


class Store(Component):
    name = "store"
    grace = 15.0
    start_timeout = 90.0

    @property
    def host(self) -> str:
        return self.settings.mongo_host

    @property
    def port(self) -> int:
        return self.settings.mongo_port

    @property
    def ferretdb_binary(self) -> Path:
        """Cached build; its name changes with the patches, so editing one rebuilds."""
        patches = ferretdb_patches()
        if not patches:
            return self.settings.cache / f"ferretdb-{FERRETDB_VERSION}"
        digest = hashlib.sha256()
        for patch in patches:
            digest.update(patch.name.encode() + b"\x00" + patch.read_bytes())
        return self.settings.cache / f"ferretdb-{FERRETDB_VERSION}-{digest.hexdigest()[:12]}"

    def outdated(self, record: Started) -> bool:
        uses_ferretdb = shutil.which("mongod") is None
        return uses_ferretdb and record.argv[:1] != [str(self.ferretdb_binary)]

    def probe(self) -> Probe:
        return mongo_probe(self.host, self.port)

    def check_tools(self) -> list[str]:
        if shutil.which("mongod") is not None or self.ferretdb_binary.exists():
            return []
        problems = []
        if ferretdb_patches() and shutil.which("patch") is None:
            problems.append(f"`patch` not found: {INSTALL_PATCH}")
        go = shutil.which("go")
        if go is None:
            problems.append(f"`go` not found (and no `mongod` on PATH): {INSTALL_GO}")
        elif (version := go_version(go)) < MIN_GO:
            problems.append(f"go {'.'.join(map(str, version))} is too old: {INSTALL_GO}")
        return problems

    def prepare(self) -> list[str]:
        self.home.mkdir(parents=True, exist_ok=True)
        mongod = shutil.which("mongod")
        if mongod is not None:
            return self.mongod_command(mongod)
        return self.ferretdb_command(self.build_ferretdb())

    def mongod_command(self, mongod: str) -> list[str]:
        data = self.home / "mongod-data"
        data.mkdir(exist_ok=True)
        log("using mongod from PATH")
        return [
            mongod,
            "--dbpath",
            str(data),
            "--bind_ip",
            self.host,
            "--port",
            str(self.port),
            "--logpath",
            str(self.home / "mongod.log"),
            "--logappend",
        ]

    def log_files(self) -> list[Path]:
        extra = [self.home / "mongod.log"] if shutil.which("mongod") else []
        return [self.output_log, *extra]

    def ferretdb_command(self, binary: Path) -> list[str]:
        data = self.home / "ferretdb-data"
        data.mkdir(exist_ok=True)
        return [
            str(binary),
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/?_pragma=synchronous(normal)",
            f"--state-dir={self.home}",
            "--telemetry=disable",
            f"--listen-addr={self.address}",
            "--debug-addr=127.0.0.1:0",
            "--log-level=warn",
        ]

    def build_ferretdb(self) -> Path:
        binary = self.ferretdb_binary
        if binary.exists():
            return binary
        go = require("go", INSTALL_GO)
        self.settings.cache.mkdir(parents=True, exist_ok=True)
        log(f"building FerretDB {FERRETDB_VERSION} from source (once, 1-3 minutes) ...")
        started = time.monotonic()
        env = {**os.environ, "CGO_ENABLED": "0"}
        env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -buildvcs=false").strip()
        module = f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"
        info = json.loads(
            run_tool(
                [go, "mod", "download", "-json", module],
                f"go mod download {module}",
                cwd=self.settings.cache,
                env=env,
            )
        )
        with tempfile.TemporaryDirectory(prefix="ferretdb-build-", dir=self.settings.cache) as tmp:
            source = Path(tmp) / "src"
            shutil.copytree(info["Dir"], source, symlinks=True)
            make_writable(source)
            (source / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
            apply_patches(source)
            output = Path(tmp) / "ferretdb"
            run_tool(
                [go, "build", "-trimpath", "-o", str(output), "./cmd/ferretdb"],
                "building FerretDB",
                cwd=source,
                env=env,
            )
            os.replace(output, binary)
        log(f"built {binary.name} in {time.monotonic() - started:.0f}s")
        for old in self.settings.cache.glob("ferretdb-v*"):
            if old.is_file() and old != binary:
                old.unlink()  # a build for other patches; a running copy keeps its inode
        return binary


def ferretdb_patches() -> list[Path]:
    return sorted(FERRETDB_PATCHES.glob("*.patch"))


def apply_patches(source: Path) -> None:
    for patch in ferretdb_patches():
        log(f"applying {patch.relative_to(HERE)}")
        run_tool(
            [require("patch", INSTALL_PATCH), "-p1", "--forward", "--batch", "-i", str(patch)],
            f"applying {patch}",
            cwd=source,
        )


def make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)


def java_major(java: str) -> int:
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def go_version(go: str) -> tuple[int, int]:
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    match = re.match(r"go(\d+)\.(\d+)", result.stdout.strip())
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def new_cluster_id() -> str:
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not value.startswith("-"):
            return value


KAFKA_POM = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by deploy/local/infra.py: resolves the Kafka broker's runtime jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.gala</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>{RELOAD4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>{SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""

KAFKA_SERVER_PROPERTIES = """\
# Written by deploy/local/infra.py on every `up`; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{controller}
listeners=PLAINTEXT://{broker},CONTROLLER://{controller}
advertised.listeners=PLAINTEXT://{broker}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=72
"""

KAFKA_LOG4J = """\
# Written by deploy/local/infra.py on every `up`; edits are lost.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log=WARN
log4j.logger.kafka.cluster=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.org.apache.kafka.raft=WARN
log4j.logger.org.apache.kafka.image=WARN
log4j.logger.org.apache.kafka.metadata=WARN
log4j.logger.org.apache.kafka.controller=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
log4j.logger.kafka.server.metadata=WARN
log4j.logger.kafka.server.ReplicaFetcherManager=WARN
log4j.logger.kafka.server.ReplicaAlterLogDirsManager=WARN
log4j.logger.kafka.server.BrokerMetadataCheckpoint=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.kafka.utils.Log4jControllerRegistration$=WARN
log4j.logger.kafka.server.DelayedOperationPurgatory$ExpiredOperationReaper=WARN
log4j.logger.kafka.server.ClientQuotaManager$ThrottledChannelReaper=WARN
log4j.logger.kafka.server.NodeToControllerRequestThread=WARN
log4j.logger.org.apache.zookeeper=WARN
"""


def components(settings: Settings, names: list[str] | None = None) -> list[Component]:
    every: list[Component] = [Kafka(settings), Store(settings)]
    return [c for c in every if not names or c.name in names]


# -------------------------------------------------------------------------- commands


@contextlib.contextmanager
def state_lock(settings: Settings) -> Iterator[None]:
    ensure_state_dir(settings.state)
    with (settings.state / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_state_dir(state: Path) -> None:
    if state.exists() and any(state.iterdir()) and not (state / STATE_MARKER).exists():
        raise InfraError(
            f"{state} is not empty and was not created by infra.py; refusing to use it"
        )
    state.mkdir(parents=True, exist_ok=True)
    (state / STATE_MARKER).touch()


@dataclass
class Launch:
    component: Component
    record: Started
    process: subprocess.Popen[bytes] | None


def cmd_up(settings: Settings, started_file: Path | None, timeout: float | None) -> int:
    if started_file is not None:
        started_file.write_text("")
    with state_lock(settings):
        launches = plan_and_start(settings, started_file)
        for launch in launches:
            wait_ready(settings, launch, timeout or launch.component.start_timeout)
    print(f"GALA_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}")
    print(f"GALA_MONGO_URL={settings.mongo_url}")
    return 0


def plan_and_start(settings: Settings, started_file: Path | None) -> list[Launch]:
    """Decide per component: use what answers, wait for ours, or start it."""
    pending: list[Launch] = []
    to_start: list[Component] = []
    for component in components(settings):
        record = live_record(settings.state, component.name)
        if record is not None and record.address != component.address:
            raise InfraError(
                f"{component.name}: infra.py runs one at {record.address} (pid {record.pid}), "
                f"not at {component.address}; stop it first with "
                f"`python3 deploy/local/infra.py down {component.name}`"
            )
        probe = component.probe()
        if probe is Probe.OK:
            owner = (
                f"started by infra.py, pid {record.pid}" if record else "not started by infra.py"
            )
            log(f"{component.name}: already answers at {component.address} ({owner})")
            if record is not None and component.outdated(record):
                log(
                    f"{component.name}: warning: it runs an outdated build; restart it with "
                    f"`python3 deploy/local/infra.py down {component.name}` and `up`"
                )
        elif record is not None:
            log(f"{component.name}: ours (pid {record.pid}) is still starting; waiting")
            pending.append(Launch(component, record, None))
        elif probe is Probe.FOREIGN:
            raise InfraError(
                f"{component.name}: {component.address} is {probe.value}; free the port "
                "or point the environment at another address"
            )
        elif component.host not in LOCAL_HOSTS:
            raise InfraError(
                f"{component.name}: nothing answers at {component.address}, and infra.py "
                "only starts services on this machine (127.0.0.1 / localhost)"
            )
        else:
            to_start.append(component)
    problems = [p for c in to_start for p in c.check_tools()]
    if problems:
        raise InfraError("missing tools:\n  " + "\n  ".join(problems))
    started: list[str] = []
    for component in to_start:
        pending.append(start(settings, component))
        started.append(component.name)
        if started_file is not None:
            started_file.write_text(" ".join(started) + "\n")
    return pending


def start(settings: Settings, component: Component) -> Launch:
    argv = component.prepare()
    offset = component.main_log.stat().st_size if component.main_log.exists() else 0
    log(f"{component.name}: starting at {component.address} (logs: {component.home})")
    process = spawn(argv, component.home, component.output_log)
    record = Started(process.pid, component.address, argv, offset)
    write_record(settings.state, component.name, record)
    return Launch(component, record, process)


def wait_ready(settings: Settings, launch: Launch, timeout: float) -> None:
    component, began = launch.component, time.monotonic()
    deadline = began + timeout
    while True:
        code = launch.process.poll() if launch.process else None
        if code is not None or not is_alive(launch.record):
            forget_record(settings.state, component.name)
            status = f"exit code {code}" if code is not None else "it is gone"
            raise InfraError(
                f"{component.name} stopped while starting ({status}); {WIPE_HINT}\n"
                + component.log_tails()
            )
        ready = component.started_marker_seen(launch.record.log_offset)
        if ready and component.probe() is Probe.OK:
            log(f"{component.name}: ready at {component.address} ({time.monotonic() - began:.1f}s)")
            return
        if time.monotonic() > deadline:
            stop_process(launch.record, component.grace)
            forget_record(settings.state, component.name)
            raise InfraError(
                f"{component.name} did not become ready within {timeout:.0f}s "
                f"(stopped it); {WIPE_HINT}\n" + component.log_tails()
            )
        time.sleep(0.5)


def cmd_down(settings: Settings, names: list[str], wipe: bool) -> int:
    if not settings.state.exists():
        log("nothing to stop (no state folder)")
        return 0
    with state_lock(settings):
        for component in components(settings, names):
            record = live_record(settings.state, component.name)
            if record is None:
                log(f"{component.name}: not running under infra.py; nothing to stop")
                continue
            log(f"{component.name}: stopping pid {record.pid} ...")
            stop_process(record, component.grace)
            forget_record(settings.state, component.name)
            log(f"{component.name}: stopped")
        if wipe:
            wipe_state(settings, names)
    return 0


def wipe_state(settings: Settings, names: list[str]) -> None:
    if names:
        for name in names:
            shutil.rmtree(settings.state / name, ignore_errors=True)
            log(f"wiped {settings.state / name}")
        return
    for child in settings.state.iterdir():
        if child.name not in (".lock", STATE_MARKER):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    log(f"wiped {settings.state}")


def cmd_status(settings: Settings) -> int:
    all_ok = True
    for component in components(settings):
        probe = component.probe()
        record = live_record(settings.state, component.name)
        if record is not None:
            owner = f"started by infra.py (pid {record.pid})"
        else:
            owner = "not started by infra.py" if probe is not Probe.ABSENT else "-"
        all_ok = all_ok and probe is Probe.OK
        print(f"{component.name:6} {component.address:22} {probe.value:12} {owner}")
        print(f"{'':6} logs: {', '.join(str(p) for p in component.log_files())}")
    return 0 if all_ok else 3


def cmd_logs(settings: Settings, names: list[str], lines: int, follow: bool) -> int:
    files = [p for c in components(settings, names) for p in c.log_files()]
    for path in files:
        print(f"==> {path} <==\n{tail(path, lines)}\n", flush=True)
    if follow:
        follow_files(files)
    return 0


def follow_files(files: list[Path]) -> None:
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in files}
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            for path in files:
                offsets[path] = print_new(path, offsets[path], sys.stdout)
            time.sleep(0.5)


def print_new(path: Path, offset: int, out: IO[str]) -> int:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() < offset:
                offset = 0
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return offset
    if data:
        out.write(data.decode(errors="replace"))
        out.flush()
    return offset + len(data)


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Local Kafka + MongoDB-wire store for Gala (see the module docstring)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start what is missing; print the environment")
    up.add_argument("--started-file", type=Path, help="write the names of what this run started")
    up.add_argument("--timeout", type=float, help="seconds to wait for each service")
    down = sub.add_parser("down", help="stop what `up` started")
    down.add_argument("--wipe", action="store_true", help="also delete the state (data, logs)")
    down.add_argument("names", nargs="*", metavar="kafka|store")
    sub.add_parser("status", help="show what answers and who started it")
    logs = sub.add_parser("logs", help="tail the log files")
    logs.add_argument("names", nargs="*", metavar="kafka|store")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.add_argument("-f", "--follow", action="store_true")
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "names", [])) - set(COMPONENTS)
    if unknown:
        parser.error(f"unknown component(s) {', '.join(sorted(unknown))}; use kafka or store")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = load_settings()
    try:
        if args.command == "up":
            return cmd_up(settings, args.started_file, args.timeout)
        if args.command == "down":
            return cmd_down(settings, args.names, args.wipe)
        if args.command == "status":
            return cmd_status(settings)
        return cmd_logs(settings, args.names, args.lines, args.follow)
    except InfraError as error:
        print(f"infra: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
