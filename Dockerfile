# prodready's image: `prodready run` (the operator and its admission webhook) by default,
# `prodready audit` etc. with other arguments.
#
# Runtime: distroless/cc (glibc, CA roots, no shell), the user `nonroot` (65532). The binary
# is the ordinary x86_64-unknown-linux-gnu release build — the same `cargo build --release
# --locked --bin prodready` that CI runs (`make release`) — so no musl C toolchain is needed
# for ring. Base images are pinned by digest; bump both together with the Rust toolchain.
#
#   docker build -t ghcr.io/prodready/prodready:0.1.0 .

# --- build ---------------------------------------------------------------------------------
FROM docker.io/library/rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
WORKDIR /src

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
    && cargo build --release --locked --bin prodready \
    && rm -rf src target/release/prodready* target/release/deps/prodready-* \
         target/release/deps/libprodready-* target/release/.fingerprint/prodready-*

# 2. The real sources.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin prodready \
    && install -D -m 0755 target/release/prodready /out/prodready

# --- runtime -------------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f

LABEL org.opencontainers.image.title="prodready" \
      org.opencontainers.image.description="Enforces production readiness of Kubernetes workloads" \
      org.opencontainers.image.source="https://github.com/prodready/prodready" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /out/prodready /prodready
# nonroot:nonroot in distroless; numeric so runAsNonRoot can verify it.
USER 65532:65532
# Admin (health, metrics) and webhook ports.
EXPOSE 8080 8443
ENTRYPOINT ["/prodready"]
CMD ["run"]
