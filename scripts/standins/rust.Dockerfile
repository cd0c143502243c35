# Stand-in for the official rust:<version>-bookworm image (scripts/docker images): the build
# tools of its base (buildpack-deps:bookworm, the part a Cargo build uses) and the host's
# rustup toolchain where the official image keeps it, and the host's local CAs.
FROM debian:bookworm-slim
# the host's own certificate authorities, if it has any (trusted once ca-certificates installs)
COPY local-ca /usr/local/share/ca-certificates
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git build-essential \
      pkg-config libssl-dev zlib1g-dev cmake \
 && rm -rf /var/lib/apt/lists/*
ARG RUST_FULL_VERSION
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=${RUST_FULL_VERSION}
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN cd /usr/local/cargo/bin \
 && for p in cargo rustc rustdoc rust-gdb rust-lldb cargo-fmt rustfmt cargo-clippy clippy-driver; do ln -s rustup "$p"; done \
 && rustc --version && cargo --version
CMD ["bash"]
