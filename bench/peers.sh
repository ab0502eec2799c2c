#!/usr/bin/env bash
# Installs the peer tools of the audit benchmark (kube-score, Polaris, kube-linter) from the Go
# module proxy at the versions pinned in bench/versions.env, plus hyperfine and GNU time from
# Debian if missing. Binaries are cached outside the repository, one directory per
# name and version:  ${PRODREADY_PEERS_CACHE:-~/.cache/prodready/peers}/<name>-<version>/bin/<name>
#
# Idempotent: a warm run only checks that the binaries are there (seconds). A peer that cannot
# be built is reported with the error and skipped; the exit code is then 1, and
# bench/audit-vs-peers.sh benchmarks whatever is installed.
#
# Usage: bench/peers.sh            install everything (prints NAME=PATH lines at the end)
#        bench/peers.sh --print    only print NAME=PATH for installed peers
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${PRODREADY_PEERS_CACHE:-$HOME/.cache/prodready/peers}"
mkdir -p "$cache"

export GOTOOLCHAIN=local CGO_ENABLED=0
# The checksum database does not know every pinned pseudo-version (it answers 404 for the
# Polaris one), so the peers' own modules skip it; their dependencies are still checked.
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}$POLARIS_MODULE,$KUBE_LINTER_SOURCE"
# Other builds share the machine: one package at a time, lowest priority. Override with PEERS_GOFLAGS.
export GOFLAGS="${PEERS_GOFLAGS:--p=1}"

failed=()

bin_path() { echo "$cache/$1-$2/bin/$1"; }

# install_peer NAME MODULE VERSION PKG [SOURCE_MODULE]
install_peer() {
    local name=$1 module=$2 version=$3 pkg=$4 source=${5:-}
    local dest="$cache/$name-$version"
    if [[ -x "$dest/bin/$name" ]]; then
        echo "peers: $name $version: cached at $dest" >&2
        return 0
    fi
    if [[ "$version" == TODO || -z "$version" ]]; then
        echo "peers: $name: no version pinned in versions.env; skipped" >&2
        failed+=("$name")
        return 1
    fi
    if ! command -v go >/dev/null; then
        echo "peers: $name: go is not installed; skipped" >&2
        failed+=("$name")
        return 1
    fi
    echo "peers: building $name $version ($pkg) ..." >&2
    local tmp log
    tmp="$(mktemp -d)"
    log="$tmp/build.log"
    mkdir -p "$tmp/bin"
    local ok=0
    if [[ -z "$source" ]]; then
        # The plain way first: go install pkg@version.
        if GOBIN="$tmp/bin" nice -n 19 go install -trimpath "$pkg@$version" >"$log" 2>&1; then
            ok=1
        else
            echo "peers: $name: go install refused ($(tail -n 1 "$log")); retrying in a wrapper module" >&2
        fi
    fi
    if [[ $ok == 0 ]]; then
        # A throwaway wrapper module: requires the peer (optionally substituted by its
        # repository path) and builds its main package with -mod=mod.
        local gover
        gover="$(go env GOVERSION)"
        gover="${gover#go}"
        mkdir -p "$tmp/wrap"
        {
            echo "module prodready.invalid/peer-$name"
            echo
            echo "go $gover"
            echo
            echo "require $module $version"
            if [[ -n "$source" ]]; then
                echo
                echo "replace $module => $source $version"
            fi
        } >"$tmp/wrap/go.mod"
        if (cd "$tmp/wrap" && GOFLAGS="$GOFLAGS -mod=mod" nice -n 19 go build -trimpath -o "$tmp/bin/$name" "$pkg") >>"$log" 2>&1; then
            ok=1
        fi
    fi
    if [[ $ok == 1 && -x "$tmp/bin/$name" ]]; then
        rm -rf "$dest"
        mkdir -p "$dest/bin"
        mv "$tmp/bin/$name" "$dest/bin/$name"
        printf '%s %s %s\n' "$module" "$version" "$pkg" >"$dest/VERSION"
        rm -rf "$tmp"
        echo "peers: $name $version: installed at $dest" >&2
        return 0
    fi
    echo "peers: $name $version: FAILED; last lines of the build log ($log):" >&2
    tail -n 15 "$log" | sed 's/^/    /' >&2
    failed+=("$name")
    return 1
}

print_paths() {
    local n v
    for pair in "kube-score:$KUBE_SCORE_VERSION" "polaris:$POLARIS_VERSION" "kube-linter:$KUBE_LINTER_VERSION"; do
        n=${pair%%:*}
        v=${pair#*:}
        [[ -x "$(bin_path "$n" "$v")" ]] && echo "$n=$(bin_path "$n" "$v")"
    done
    return 0
}

if [[ "${1:-}" == "--print" ]]; then
    print_paths
    exit 0
fi

# Debian tools: hyperfine for timing, GNU time for peak memory.
need_apt=()
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
[[ -x /usr/bin/time ]] || need_apt+=(time)
if ((${#need_apt[@]})); then
    echo "peers: installing ${need_apt[*]} from Debian" >&2
    if ! apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1
        apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1 || {
            echo "peers: could not install ${need_apt[*]}" >&2
            failed+=("${need_apt[@]}")
        }
    fi
fi

install_peer kube-score "$KUBE_SCORE_MODULE" "$KUBE_SCORE_VERSION" "$KUBE_SCORE_PKG"
install_peer polaris "$POLARIS_MODULE" "$POLARIS_VERSION" "$POLARIS_PKG"
install_peer kube-linter "$KUBE_LINTER_MODULE" "$KUBE_LINTER_VERSION" "$KUBE_LINTER_PKG" "$KUBE_LINTER_SOURCE"

print_paths
if ((${#failed[@]})); then
    echo "peers: not installed: ${failed[*]}" >&2
    exit 1
fi
