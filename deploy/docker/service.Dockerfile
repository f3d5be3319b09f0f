# syntax=docker/dockerfile:1
#
# One image recipe for every Gala service and the gateway. Build from the repo root:
#
#   docker build -f deploy/docker/service.Dockerfile \
#       --build-arg SERVICE=contacts --build-arg PACKAGE_DIR=services/contacts \
#       -t gala/contacts .
#
# SERVICE is the Python package run as `python -m $SERVICE`; PACKAGE_DIR is the folder
# holding its pyproject.toml (services/<name>, or gateway). The container runs
# `python -m $SERVICE --role all` unless given other arguments, e.g. `--role worker`.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: resolve nothing, install exactly requirements.lock, then our packages ------
FROM ${PYTHON_IMAGE} AS build

ARG SERVICE
ARG PACKAGE_DIR
ARG UV_VERSION=0.13.9
RUN test -n "${SERVICE}" && test -n "${PACKAGE_DIR}" \
    || { echo "build args SERVICE and PACKAGE_DIR are required" >&2; exit 1; }

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

# uv lives in its own virtual environment: `uv pip sync --system` makes the system
# environment match the lock exactly, uninstalling whatever the lock does not list
# (pip included), so uv must not be installed into the environment it syncs.
RUN python -m venv /opt/uv && /opt/uv/bin/pip install "uv==${UV_VERSION}"

WORKDIR /src

# Third-party dependencies first, from the hash-pinned lock only: this layer is reused
# until requirements.lock changes.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv pip sync --system --require-hashes requirements.lock

# Then the kernel and the one package this image runs (no dependency resolution: the
# lock above already holds every third-party package they need), and check that
# `python -m $SERVICE` will find its package.
COPY shared ./shared
COPY ${PACKAGE_DIR} ./${PACKAGE_DIR}
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv pip install --system --no-deps ./shared "./${PACKAGE_DIR}" \
    && python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)" \
        "${SERVICE}"

# --- runtime: the same base with the populated interpreter, no build tools, non-root ----
FROM ${PYTHON_IMAGE} AS runtime

ARG SERVICE
ENV GALA_SERVICE=${SERVICE} \
    GALA_HOST=0.0.0.0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# /usr/local holds the interpreter and its site-packages; the build stage started from
# the same base image, so this only adds what was installed there.
COPY --from=build /usr/local /usr/local

RUN groupadd --system --gid 10001 gala \
    && useradd --system --uid 10001 --gid gala --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gala

USER 10001:10001

# The shell only expands $GALA_SERVICE and execs, so python itself is PID 1 and gets
# the SIGTERM on stop. Arguments (compose `command`, Kubernetes `args`) replace CMD.
ENTRYPOINT ["/bin/sh", "-c", "exec python -m \"$GALA_SERVICE\" \"$@\"", "--"]
CMD ["--role", "all"]
