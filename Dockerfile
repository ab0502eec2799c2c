# prodready's image: `prodready run` (the operator and its admission webhook) by default,
# `prodready audit` etc. with other arguments.
#
# Runtime: `scratch` and one static binary — no libc, no shell, no package to patch — run as
# 65532:65532. The binary is the x86_64-unknown-linux-gnu release build linked statically
# (`-C target-feature=+crt-static`): the same command CI runs (`make release`), so no musl C
# toolchain is needed for ring. It needs no CA bundle: in a cluster it trusts the service
# account's CA, and the webhook serves its own certificate. The build image is pinned by
# digest; bump it together with the Rust toolchain.
#
#   docker build -t ghcr.io/prodready/prodready:0.1.0 .
#
# Releases assemble the same runtime image without a container engine, reproducibly, from
# the binary `make release` builds: `make package` (hack/package.sh, hack/oci-image.py).

# --- build ---------------------------------------------------------------------------------
FROM docker.io/library/rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
WORKDIR /src
# Static linking for the target only (build scripts and proc-macros stay dynamic).
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"

# 1. Dependencies only, in their own layer: the manifests and empty targets for every
#    workspace member, so this layer is rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
COPY e2e/Cargo.toml e2e/
COPY bench/Cargo.toml bench/
RUN mkdir -p src benches e2e/src/bin bench/src/bin \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs e2e/src/lib.rs bench/src/lib.rs \
    && for f in benches/engine.rs benches/webhook_load.rs e2e/src/bin/control-plane.rs \
         e2e/src/bin/prodready-operator.rs bench/src/bin/gen-corpus.rs; do \
         echo 'fn main() {}' > "$f"; done \
    && cargo build --release --locked --target x86_64-unknown-linux-gnu --bin prodready \
    && rm -rf src target/x86_64-unknown-linux-gnu/release/prodready* \
         target/x86_64-unknown-linux-gnu/release/deps/prodready-* \
         target/x86_64-unknown-linux-gnu/release/deps/libprodready-* \
         target/x86_64-unknown-linux-gnu/release/.fingerprint/prodready-*

# 2. The real sources.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --target x86_64-unknown-linux-gnu --bin prodready \
    && mkdir -p /out \
    && strip --strip-debug -o /out/prodready target/x86_64-unknown-linux-gnu/release/prodready

# --- runtime -------------------------------------------------------------------------------
FROM scratch

LABEL org.opencontainers.image.title="prodready" \
      org.opencontainers.image.description="Enforces production readiness of Kubernetes workloads" \
      org.opencontainers.image.source="https://github.com/prodready/prodready" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /out/prodready /prodready
# Numeric, so the kubelet's runAsNonRoot check can verify it without an /etc/passwd.
USER 65532:65532
# Admin (health, metrics) and webhook ports.
EXPOSE 8080 8443
ENTRYPOINT ["/prodready"]
CMD ["run"]
