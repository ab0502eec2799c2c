#!/usr/bin/env bash
# The release step: prodready's container image and its Helm chart, the chart's default
# `image.digest` stamped with the image's digest, so the chart as published passes
# `prodready audit --profile strict` with literally default values.
#
#   bash hack/package.sh [--binary PATH] [--out DIR]      (or: make package)
#
#   --binary  the static release binary (default: what `make release` builds,
#             target/x86_64-unknown-linux-gnu/release/prodready)
#   --out     where to write (default: dist/)
#
# Writes:
#   DIR/image/                 the image as an OCI image layout (hack/oci-image.py), tag VERSION
#   DIR/prodready-VERSION.tgz  the chart: version and appVersion VERSION, image.digest stamped
#   DIR/SHA256SUMS             checksums of the chart archive and the image's index.json
# and prints the image digest and the commands that publish both (the digest does not change
# on push: the manifest is copied byte for byte).
#
# Needs python3, strip and readelf (binutils) and helm (helm from $HELM, else from the e2e binary cache that
# `bash e2e/k8s-binaries.sh` fills, else from PATH). The image's creation time is the commit
# time of HEAD ($SOURCE_DATE_EPOCH overrides), so the same commit and binary give the same
# digest.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="$root/target/x86_64-unknown-linux-gnu/release/prodready"
out="$root/dist"

die() { echo "package: ERROR: $*" >&2; exit 1; }
log() { echo "package: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ -x "$binary" ]] || die "no binary at $binary: run \`make release\` first (or pass --binary)"

helm="${HELM:-}"
if [[ -z "$helm" ]]; then
  k8s_bin="$(bash "$root/e2e/k8s-binaries.sh" --print-env | sed -n 's/^PRODREADY_K8S_BIN=//p')"
  if [[ -x "$k8s_bin/helm" ]]; then helm="$k8s_bin/helm"; else helm="$(command -v helm || true)"; fi
fi
[[ -n "$helm" && -x "$helm" ]] || die "helm not found: run \`bash e2e/k8s-binaries.sh\`, or set HELM"

# One version everywhere: Cargo.toml, the binary, the chart's appVersion.
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | sed -n 1p)"
[[ -n "$version" ]] || die "no version in Cargo.toml"
bin_version="$("$binary" --version | awk '{print $2}')"
[[ "$bin_version" == "$version" ]] ||
  die "$binary is version '$bin_version' but Cargo.toml says $version: rebuild it (make release)"
app_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/prodready/Chart.yaml")"
[[ "$app_version" == "$version" ]] ||
  die "charts/prodready/Chart.yaml has appVersion '$app_version' but Cargo.toml says $version"

revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH="$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)"
fi
export SOURCE_DATE_EPOCH

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The image ships the binary without its debug line tables (123 → 33 MB; symbols stay, so
# backtraces still name functions), as the Dockerfile's build stage does.
command -v strip >/dev/null 2>&1 && command -v readelf >/dev/null 2>&1 ||
  die "strip and readelf (binutils) not found"
if readelf -l "$binary" | grep -q 'INTERP'; then
  die "$binary is dynamically linked, and the image has no libc: build it static with \`make release\`"
fi
mkdir -p "$work/bin" && strip --strip-debug -o "$work/bin/prodready" "$binary" || die "strip failed on $binary"
digest="$(python3 "$root/hack/oci-image.py" --binary "$work/bin/prodready" --version "$version" \
  --revision "$revision" --out "$out/image")" || die "building the image failed"
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || die "unexpected digest '$digest'"
log "image $version: $digest (OCI layout in $out/image)"

# The chart, copied and stamped: image.digest is the one default a release must write.
cp -R "$root/charts/prodready" "$work/prodready"
values="$work/prodready/values.yaml"
# Exactly one `  digest: ""` line, inside the top-level `image:` block.
count="$(awk '/^[^ #]/ { block = $1 } block == "image:" && /^  digest: ""$/ { n++ } END { print n + 0 }' "$values")"
[[ "$count" == 1 ]] || die "values.yaml: expected one empty image.digest, found $count"
awk -v d="$digest" '/^[^ #]/ { block = $1 } block == "image:" && /^  digest: ""$/ { print "  digest: \"" d "\""; next } { print }' \
  "$values" >"$values.new"
mv "$values.new" "$values"
sed -i "s/^version: .*/version: $version/; s/^appVersion: .*/appVersion: \"$version\"/" \
  "$work/prodready/Chart.yaml"

"$helm" lint --strict "$work/prodready" >/dev/null || die "helm lint failed on the stamped chart"
rm -f "$out/prodready-$version.tgz"
"$helm" package "$work/prodready" --destination "$out" >/dev/null || die "helm package failed"
chart="$out/prodready-$version.tgz"
stamped="$("$helm" show values "$chart" | sed -n 's/^  digest: "\(.*\)"$/\1/p')"
[[ "$stamped" == "$digest" ]] || die "the packaged chart's image.digest is '$stamped', not $digest"

(cd "$out" && sha256sum "prodready-$version.tgz" image/index.json >SHA256SUMS)
log "chart $version: $chart (image.digest = $digest)"
cat >&2 <<NEXT
package: publish both (the image first; its digest does not change on push):
  crane push $out/image REGISTRY/prodready:$version
  helm push $chart oci://REGISTRY/charts
NEXT
echo "$digest"
