# kvserver in a container.
#
#   docker build -t kvstore .
#   docker run -p 127.0.0.1:8080:8080 -e KV_ALLOW_UNAUTHENTICATED=true kvstore
#
# The README's "Docker" section explains running it with a token, and
# tests/docker/smoke.sh proves this file on a machine without a registry.

# ---- build: compile kvserver in release mode -------------------------------
FROM rust:1-bookworm AS build
LABEL org.opencontainers.image.title="kvstore-build"
WORKDIR /src
COPY . .
# No debug info and a stripped binary: the image ships kvserver alone.
ENV CARGO_PROFILE_RELEASE_DEBUG=none \
    CARGO_PROFILE_RELEASE_STRIP=symbols
# A vendor/ directory in the build context (made by `cargo vendor`) replaces
# crates.io, for builders that cannot reach the registry; without one, cargo
# downloads the crates as usual. Either way Cargo.lock is obeyed.
RUN set -eu; \
    if [ -d vendor ]; then \
        set -- --offline \
            --config 'source.crates-io.replace-with="vendored-sources"' \
            --config 'source.vendored-sources.directory="/src/vendor"'; \
    fi; \
    cargo build --release --locked -p kvserver "$@"; \
    install -D -m 0755 target/release/kvserver /out/kvserver

# ---- runtime: a slim Debian with one binary and one user --------------------
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="kvstore" \
      org.opencontainers.image.description="kvserver, the kvstore HTTP key-value service"
# A fixed uid, 10001, so a mounted auth file can be given to it (chown 10001)
# while staying unreadable by group and others, as kvserver requires.
RUN groupadd --gid 10001 kvstore \
 && useradd --uid 10001 --gid kvstore --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin kvstore \
 && install -d -o kvstore -g kvstore -m 0700 /data
COPY --from=build /out/kvserver /usr/local/bin/kvserver

# Listen on every interface of the container: binding a non-loopback address
# makes kvserver insist on --auth-file (KV_AUTH_FILE) or an explicit
# KV_ALLOW_UNAUTHENTICATED=true, so the image is never open by accident.
ENV KV_ADDR=0.0.0.0:8080 \
    KV_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER 10001:10001

# /healthz needs no token. The image has no curl, so bash speaks the HTTP:
# connect to the port of KV_ADDR on loopback and expect a 200 status line.
# Bash cannot speak TLS: with KV_TLS_CERT set, an accepted connection is
# all it checks (give TLS through KV_TLS_CERT/KV_TLS_KEY, not flags).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${KV_ADDR##*:} || exit 1; [ -n \"${KV_TLS_CERT:-}\" ] && exit 0; printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]

# kvserver handles SIGTERM itself (drains requests, flushes the log), so it
# runs as PID 1 directly. Arguments go to it: `docker run kvstore token create ...`.
ENTRYPOINT ["/usr/local/bin/kvserver"]
