#!/usr/bin/env bash
# Builds the e2e suites' binaries from Go modules and caches them per Kubernetes version outside
# the repository: kube-apiserver, kubectl, etcd, helm and crane for the bare control plane, and
# for the real single-node cluster (e2e/src/cluster) kubelet, kube-proxy, kube-controller-manager,
# kube-scheduler, containerd (+ its runc shim and ctr) and the suite's own test program
# (e2e/images/testapp), and promtool and prometheus for the alert rules' tests. The node's Debian packages (runc, the CNI plugins, iptables, conntrack,
# socat) are installed with apt-get when missing.
#
#   bash e2e/k8s-binaries.sh              build what is missing, then print PRODREADY_K8S_BIN=<dir>
#   bash e2e/k8s-binaries.sh --print-env  only print PRODREADY_K8S_BIN=<dir> (no build)
#
# Versions come from e2e/versions.env. The cache root is $PRODREADY_CACHE, else
# $XDG_CACHE_HOME/prodready, else ~/.cache/prodready; binaries land in <root>/k8s/<K8S_VERSION>/bin.
# Every binary has a stamp file (<name>.version) so a changed pin rebuilds only what changed.
# Progress goes to stderr; the only line on stdout is PRODREADY_K8S_BIN=<dir>.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${PRODREADY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prodready}"
base="$cache_root/k8s/$K8S_VERSION"
bin="$base/bin"

if [[ "${1:-}" == "--print-env" ]]; then
  echo "PRODREADY_K8S_BIN=$bin"
  exit 0
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--print-env]" >&2
  exit 2
fi

log() { echo "k8s-binaries: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Only a build needs Go; a warm cache works without it.
need_go() {
  command -v go >/dev/null 2>&1 ||
    die "'go' is not on PATH, and $1 must be built. Install Go >= 1.26 and re-run."
}

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false ${GOFLAGS:-}"
jobs_n="${PRODREADY_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"

mkdir -p "$bin" "$base/src"
# One build at a time per version directory (a Makefile and a developer may race).
exec 9>"$base/.lock"
flock 9

# up_to_date NAME VERSION: the binary exists and its stamp matches the pinned version.
up_to_date() { [[ -x "$bin/$1" && "$(cat "$bin/$1.version" 2>/dev/null)" == "$2" ]]; }

# go_build DIR OUT PKG [LDFLAGS]: builds PKG inside the wrapper module DIR into $bin/OUT.
# Retries once without the checksum database when it is unreachable.
go_build() {
  local dir="$1" out="$2" pkg="$3" ldflags="${4:-}" logf="$1/build-$2.log"
  log "building $out from $pkg (log: $logf)"
  local start=$SECONDS
  if ! (cd "$dir" && go build -p "$jobs_n" -trimpath -tags "${BUILD_TAGS:-}" -ldflags "-s -w $ldflags" -o "$bin/.$out.tmp" "$pkg") >"$logf" 2>&1; then
    if [[ -z "${GOSUMDB_RETRIED:-}" ]] && grep -qE 'verifying .*(dial|lookup|timeout|connection)|checksum database' "$logf"; then
      log "checksum database unreachable; retrying with GOSUMDB=off"
      export GOSUMDB=off GOSUMDB_RETRIED=1
      (cd "$dir" && go build -p "$jobs_n" -trimpath -tags "${BUILD_TAGS:-}" -ldflags "-s -w $ldflags" -o "$bin/.$out.tmp" "$pkg") >"$logf" 2>&1 || {
        tail -n 40 "$logf" >&2; die "building $out failed (full log: $logf)"; }
    else
      tail -n 40 "$logf" >&2
      die "building $out failed (full log: $logf)"
    fi
  fi
  mv -f "$bin/.$out.tmp" "$bin/$out"
  log "built $out in $((SECONDS - start))s"
}

# new_wrapper DIR MODULE VERSION: a throwaway module that only requires MODULE@VERSION.
new_wrapper() {
  local dir="$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  printf 'module prodready.invalid/%s\n\ngo 1.26\n\nrequire %s %s\n' "$(basename "$dir")" "$2" "$3" >"$dir/go.mod"
}

# The go.mod of MODULE@VERSION, fetched into the module cache.
gomod_of() {
  local json
  json="$(go mod download -json "$1@$2")" || die "go mod download $1@$2 failed"
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json" | sed -n 1p
}

# --- kube-apiserver, kubectl and the node's Kubernetes binaries -----------------------------
K8S_COMMANDS=(kube-apiserver kubectl kubelet kube-proxy kube-controller-manager kube-scheduler)
build_kubernetes() {
  local v="$K8S_VERSION" c missing=()
  for c in "${K8S_COMMANDS[@]}"; do up_to_date "$c" "$v" || missing+=("$c"); done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  need_go "${missing[0]}"
  [[ "$v" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "K8S_VERSION must look like v1.Y.Z, got $v"
  local minor="${BASH_REMATCH[1]}" staging="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
  local dir="$base/src/kubernetes" gomod
  gomod="$(gomod_of k8s.io/kubernetes "$v")"
  [[ -f "$gomod" ]] || die "no go.mod for k8s.io/kubernetes@$v"
  new_wrapper "$dir" k8s.io/kubernetes "$v"
  # Staging modules are required at v0.0.0 and replaced by ./staging paths in k/k; a wrapper
  # module must point each of them at its published tag instead.
  local mods
  mods="$(awk '/^[[:space:]]*k8s\.io\/[^[:space:]]+ v0\.0\.0([[:space:]]|$)/ { sub(/^require[[:space:]]+/, ""); print $1 }' "$gomod" | sort -u)"
  [[ -n "$mods" ]] || die "found no staging modules in $gomod"
  local m
  for m in $mods; do
    (cd "$dir" && go mod edit -replace "$m=$m@$staging")
  done
  log "kubernetes $v: $(wc -w <<<"$mods") staging modules replaced with $staging"
  # There is no git checkout: gitCommit carries the module's content hash instead.
  local date commit pkgs ld=""
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  commit="$(cd "$dir" && go mod download -json k8s.io/kubernetes@"$v" | sed -n 's/.*"Sum": "\(.*\)",\{0,1\}$/\1/p' | sed -n 1p)"
  for pkgs in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkgs.gitVersion=$v -X $pkgs.gitMajor=1 -X $pkgs.gitMinor=$minor"
    ld+=" -X $pkgs.gitTreeState=clean -X $pkgs.buildDate=$date -X $pkgs.gitCommit=module-${commit:-unknown}"
  done
  for c in "${missing[@]}"; do
    go_build "$dir" "$c" "k8s.io/kubernetes/cmd/$c" "$ld"
    echo "$v" >"$bin/$c.version"
  done
}

# --- etcd ------------------------------------------------------------------------------------
build_etcd() {
  local v="$ETCD_VERSION" dir="$base/src/etcd"
  if up_to_date etcd "$v"; then return; fi
  need_go etcd
  new_wrapper "$dir" go.etcd.io/etcd/server/v3 "$v"
  # etcd's sibling modules are replaced by ../paths in its own go.mod; a wrapper gets them
  # from the requirement graph at the same release, which is what a release tarball contains.
  go_build "$dir" etcd go.etcd.io/etcd/server/v3 \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=module-$v"
  echo "$v" >"$bin/etcd.version"
}

# --- helm ------------------------------------------------------------------------------------
build_helm() {
  local v="$HELM_VERSION" dir="$base/src/helm"
  if up_to_date helm "$v"; then return; fi
  need_go helm
  new_wrapper "$dir" helm.sh/helm/v3 "$v"
  go_build "$dir" helm helm.sh/helm/v3/cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  echo "$v" >"$bin/helm.version"
}

# --- crane -----------------------------------------------------------------------------------
# The OCI registry client (and throwaway registry) the packaging test pushes the image with.
build_crane() {
  local v="$CRANE_VERSION" dir="$base/src/crane"
  if up_to_date crane "$v"; then return; fi
  need_go crane
  new_wrapper "$dir" github.com/google/go-containerregistry "$v"
  go_build "$dir" crane github.com/google/go-containerregistry/cmd/crane
  echo "$v" >"$bin/crane.version"
}

# --- containerd v2 (daemon, runc shim, ctr) ---------------------------------------------
# The CRI runtime of the in-cluster suite's node. Built without the storage drivers this
# machine has no use for and without dynamic plugins, as static binaries (CGO_ENABLED=0).
# containerd picks its shim from PATH, so daemon and shim must come from the same build.
build_containerd() {
  local v="$CONTAINERD_VERSION" dir="$base/src/containerd" c
  local m=github.com/containerd/containerd/v2
  if up_to_date containerd "$v" && up_to_date containerd-shim-runc-v2 "$v" && up_to_date ctr "$v"; then
    return
  fi
  need_go containerd
  new_wrapper "$dir" "$m" "$v"
  for c in containerd containerd-shim-runc-v2 ctr; do
    BUILD_TAGS="no_btrfs no_devmapper no_zfs no_aufs no_dynamic_plugins" \
      go_build "$dir" "$c" "$m/cmd/$c" "-X $m/version.Version=$v -X $m/version.Revision=module-$v"
    echo "$v" >"$bin/$c.version"
  done
}

# --- the suite's test program ---------------------------------------------------------------
# e2e/images/testapp: pause (the pod sandbox), serve, lease (client-go leader election) and job.
# Its stamp is the hash of its sources, so an edit rebuilds it.
build_testapp() {
  local src="$here/images/testapp" dir="$base/src/testapp" stamp
  stamp="testapp-$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
  if up_to_date testapp "$stamp"; then return; fi
  need_go testapp
  rm -rf "$dir" && mkdir -p "$dir" && cp "$src/go.mod" "$src/go.sum" "$src/main.go" "$dir/"
  go_build "$dir" testapp .
  echo "$stamp" >"$bin/testapp.version"
}

# --- promtool and prometheus ----------------------------------------------------------------
# promtool checks and unit-tests the shipped alert rules (tests/alerts.rs); prometheus scrapes
# the operator in the e2e suite (e2e/tests/prometheus.rs). Both from one wrapper module, built
# with remove_all_sd (the tests use static targets only: the cloud service discoveries are most
# of the build) and without builtinassets (no web UI is needed, only the API).
# The module's v0.3XX.Y is the release 3.XX.Y; the version ldflags say so.
build_prometheus() {
  local v="$PROMETHEUS_VERSION" dir="$base/src/prometheus" c
  local m=github.com/prometheus/prometheus
  if up_to_date promtool "$v" && up_to_date prometheus "$v"; then return; fi
  need_go prometheus
  [[ "$v" =~ ^v0\.3([0-9]{2})\.([0-9]+)$ ]] || die "PROMETHEUS_VERSION must look like v0.3YY.Z, got $v"
  local release="3.$((10#${BASH_REMATCH[1]})).${BASH_REMATCH[2]}" pv=github.com/prometheus/common/version
  new_wrapper "$dir" "$m" "$v"
  for c in promtool prometheus; do
    if up_to_date "$c" "$v"; then continue; fi
    BUILD_TAGS="remove_all_sd" go_build "$dir" "$c" "$m/cmd/$c" \
      "-X $pv.Version=$release -X $pv.Revision=module-$v -X $pv.Branch=module"
    echo "$v" >"$bin/$c.version"
  done
}

# --- the node's Debian packages ------------------------------------------------------------
# runc, the CNI plugins (bridge, host-local, loopback, portmap), iptables for kube-proxy,
# conntrack, socat (the API server relay between the cluster's network namespace and
# 127.0.0.1). Installed only when missing; needs root, as the in-cluster suite does.
ensure_debian_packages() {
  local want=(runc:/usr/sbin/runc containernetworking-plugins:/usr/lib/cni/bridge
    iptables:/usr/sbin/iptables conntrack:/usr/sbin/conntrack socat:/usr/bin/socat
    iproute2:/usr/sbin/ip util-linux:/usr/bin/nsenter) w missing=()
  for w in "${want[@]}"; do [[ -x "${w#*:}" ]] || missing+=("${w%%:*}"); done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  [[ $EUID -eq 0 ]] || die "the in-cluster suite needs Debian packages ${missing[*]}: run 'sudo apt-get install ${missing[*]}'"
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
  log "installing Debian packages: ${missing[*]}"
  # make test runs this script beside another apt user (make -j): one apt at a time.
  flock /tmp/prodready-apt.lock sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"' apt "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed"
}

total=$SECONDS
# --- Prometheus Operator CRDs (ServiceMonitor, PodMonitor) ------------------------------
# Not a binary: the e2e tests read the real CRDs from the module cache
# (example/prometheus-operator-crd/ of the module), as Go operator suites feed envtest.
fetch_prometheus_operator() {
  local v="$PROMETHEUS_OPERATOR_VERSION" m=github.com/prometheus-operator/prometheus-operator
  local modcache="${GOMODCACHE:-${GOPATH:-$HOME/go}/pkg/mod}"
  if command -v go >/dev/null 2>&1; then modcache="$(go env GOMODCACHE)"; fi
  if [[ -d "$modcache/$m@$v/example/prometheus-operator-crd" ]]; then return; fi
  need_go "the Prometheus Operator CRDs ($m@$v)"
  log "downloading $m@$v into the Go module cache"
  (cd "$base/src" && go mod download -json "$m@$v" >/dev/null) ||
    (cd "$base/src" && GOSUMDB=off go mod download -json "$m@$v" >/dev/null) ||
    die "cannot download $m@$v"
}

# --- OpenReports CRDs (openreports.io) and the PolicyReport CRD (wgpolicyk8s.io) ----------
# Read from the module cache too: config/crd/ of github.com/openreports/reports-api and
# config/crds/policyreport/ of github.com/kyverno/kyverno.
fetch_module_dir() {
  local m="$1" v="$2" dir="$3"
  local modcache="${GOMODCACHE:-${GOPATH:-$HOME/go}/pkg/mod}"
  if command -v go >/dev/null 2>&1; then modcache="$(go env GOMODCACHE)"; fi
  if [[ -d "$modcache/$m@$v/$dir" ]]; then return; fi
  need_go "$m@$v"
  log "downloading $m@$v into the Go module cache"
  (cd "$base/src" && go mod download -json "$m@$v" >/dev/null) ||
    (cd "$base/src" && GOSUMDB=off go mod download -json "$m@$v" >/dev/null) ||
    die "cannot download $m@$v"
}

build_kubernetes
build_etcd
build_helm
build_crane
build_containerd
build_testapp
build_prometheus
ensure_debian_packages
fetch_prometheus_operator
fetch_module_dir github.com/openreports/reports-api "$OPENREPORTS_VERSION" config/crd
fetch_module_dir github.com/kyverno/kyverno "$KYVERNO_VERSION" config/crds/policyreport

for b in "${K8S_COMMANDS[@]}" etcd helm crane containerd containerd-shim-runc-v2 ctr testapp promtool prometheus; do
  [[ -x "$bin/$b" ]] || die "missing $bin/$b after build"
done
"$bin/kube-apiserver" --version >&2
"$bin/etcd" --version | sed -n 1p >&2
"$bin/helm" version --short >&2
echo "crane $("$bin/crane" version)" >&2
"$bin/kubelet" --version >&2
"$bin/containerd" --version >&2
"$bin/prometheus" --version 2>&1 | sed -n 1p >&2
log "binaries are in $bin ($((SECONDS - total))s)"
echo "PRODREADY_K8S_BIN=$bin"
