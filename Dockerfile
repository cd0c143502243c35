# gladly-kafka in two stages: the builder compiles the release binary (the rdkafka crate
# builds librdkafka from source, so it needs cmake and the OpenSSL, curl and zlib headers);
# the runtime image holds the binary and the shared libraries it links, nothing else, and
# runs as an unprivileged user.
#
#   docker build -t gladly-kafka .
#   docker run --rm gladly-kafka --help
#   docker run --rm -e GLADLY_KAFKA__GLADLY__TOKEN=... -v $PWD/config/example.toml:/etc/gladly-kafka/config.toml:ro \
#     -e GLADLY_KAFKA_CONFIG=/etc/gladly-kafka/config.toml -p 9464:9464 gladly-kafka run
#
# No `# syntax=` line: the engine's built-in Dockerfile frontend (BuildKit) takes the cache mounts
# below, and a syntax line would pull a frontend image first. tests/deploy.rs checks this file as
# text; tests/docker/ builds and runs it (scripts/docker build, docs/docker.md).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev libcurl4-openssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY schemas ./schemas
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin gladly-kafka \
 && install -D -m 0755 target/release/gladly-kafka /out/gladly-kafka

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libcurl4 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gladly \
 && useradd --system --uid 10001 --gid gladly --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin gladly
COPY --from=builder /out/gladly-kafka /usr/local/bin/gladly-kafka
# /metrics and /health/* must be reachable from outside the container
ENV GLADLY_KAFKA__OBSERVE__LISTEN=0.0.0.0:9464
EXPOSE 9464
USER 10001:10001
ENTRYPOINT ["gladly-kafka"]
CMD ["run"]
