# prodready developer entry points. `make test` is exactly what CI runs (.ci/run).
.PHONY: test lint unit e2e-binaries audit-examples crd bench

# The whole suite: formatting, lints, unit + integration tests, and the end-to-end tests
# against a real kube-apiserver + etcd (built from source on first use, cached after).
test: lint e2e-binaries
	cargo test --workspace --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

e2e-binaries:
	bash e2e/k8s-binaries.sh

# The main job: audit the bundled examples with the built-in baseline policy.
audit-examples:
	cargo run --release --locked -- audit examples/

# Regenerate the committed CRD from the Rust types.
crd:
	cargo run --locked -- crd > crds/productionpolicies.prodready.dev.yaml

bench:
	cargo bench --bench engine
