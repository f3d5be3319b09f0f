# syntax=docker/dockerfile:1
#
# The contrib collector with the local stack's config baked in, plus a static busybox
# so the container can probe its own health_check endpoint: the upstream image is
# built FROM scratch (no shell, no wget, no curl), which leaves a compose healthcheck
# nothing to run. Build context: deploy/docker.

ARG OTELCOL_VERSION=0.135.0
ARG BUSYBOX_VERSION=1.36.1

FROM busybox:${BUSYBOX_VERSION}-musl AS probe

FROM otel/opentelemetry-collector-contrib:${OTELCOL_VERSION}
# The musl busybox build is statically linked: it runs without any libc in the image.
COPY --from=probe /bin/busybox /probe/busybox
COPY otel-collector.yaml /etc/otelcol-contrib/config.yaml
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=5 \
    CMD ["/probe/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:13133/"]
