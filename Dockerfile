# Marquee's image: one node of the cluster (see docs/deployment.md).
#
# Stages, in the order the legacy builder needs (it builds every stage before the target):
#   runtime-base  Debian slim, libmariadb3, a non-root user, templates, assets, the bundled
#                 demo catalog, the entrypoint and the HEALTHCHECK
#   prebuilt      runtime-base + prebuilt/marquee, a binary built outside Docker (Debian
#                 bookworm, glibc 2.36): for machines whose build containers cannot reach
#                 crates.io; select it with `--target prebuilt` (MARQUEE_BUILD_TARGET=prebuilt)
#   build         cargo; the dependencies are compiled in a layer of their own, from
#                 Cargo.toml and Cargo.lock alone, so editing src/ does not rebuild them
#   runtime       runtime-base + the binary from `build` (the default target)
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUNTIME_IMAGE} AS runtime-base
LABEL org.opencontainers.image.title="marquee" \
      org.opencontainers.image.description="A node of the Marquee movie-ticket booking cluster"
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libmariadb3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 marquee \
    && useradd --no-log-init --uid 10001 --gid marquee --home-dir /app --no-create-home --shell /usr/sbin/nologin marquee
COPY docker/lib.sh /usr/local/lib/marquee/lib.sh
COPY docker/entrypoint.sh /usr/local/bin/marquee-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/marquee-healthcheck
COPY docker/secrets.sh /usr/local/bin/marquee-secrets
COPY docker/load-catalog.sh /usr/local/bin/marquee-load-catalog
WORKDIR /app
COPY templates /app/templates
COPY assets /app/assets
COPY data /app/data
ENV MARQUEE_BIND=0.0.0.0:8000 \
    MARQUEE_TEMPLATES=/app/templates \
    MARQUEE_ASSETS=/app/assets \
    DEMO_CATALOG_DIR=/app/data/flixster-la-2024-04
USER marquee
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["marquee-healthcheck"]
ENTRYPOINT ["marquee-entrypoint"]
CMD ["marquee", "serve"]

FROM runtime-base AS prebuilt
COPY prebuilt/marquee /usr/local/bin/marquee
# Fails the build if the binary needs a library this image lacks.
RUN ! ldd /usr/local/bin/marquee | grep 'not found'

FROM ${RUST_IMAGE} AS build
# The official rust image has these (buildpack-deps); install them if a base lacks them.
RUN if ! dpkg -s libmariadb-dev-compat pkg-config >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libmariadb-dev-compat pkg-config \
        && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Every target the manifest names gets an empty stand-in source, then the dependencies build.
RUN set -eu; \
    mkdir -p src; : > src/lib.rs; echo 'fn main() {}' > src/main.rs; \
    for p in $(sed -n 's/^path *= *"\(.*\)"/\1/p' Cargo.toml); do \
        [ -e "$p" ] || { mkdir -p "$(dirname "$p")"; echo 'fn main() {}' > "$p"; }; \
    done; \
    cargo build --release --locked --bin marquee; \
    rm -rf src target/release/.fingerprint/marquee-* target/release/deps/marquee-* target/release/deps/libmarquee-*
COPY src ./src
COPY migrations ./migrations
COPY diesel.toml ./
RUN cargo build --release --locked --bin marquee \
    && install -m 0755 target/release/marquee /usr/local/bin/marquee

FROM runtime-base AS runtime
COPY --from=build /usr/local/bin/marquee /usr/local/bin/marquee
