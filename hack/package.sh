#!/usr/bin/env bash
# The release step: prodready's multi-arch container image, its Helm chart (the chart's
# default `image.digest` stamped with the image's digest, so the chart as published passes
# `prodready audit --profile strict` with literally default values), the CLI as tarballs and
# a krew plugin manifest.
#
#   bash hack/package.sh [--binary PATH] [--arm64-binary PATH] [--out DIR]   (or: make package)
#
#   --binary        the static linux/amd64 release binary (default: what `make release`
#                   builds, target/x86_64-unknown-linux-gnu/release/prodready)
#   --arm64-binary  the static linux/arm64 one (default: what `make release-arm64` builds,
#                   target/aarch64-unknown-linux-gnu/release/prodready)
#   --out           where to write (default: dist/)
#
# Writes:
#   DIR/image/                 the image as an OCI image layout (hack/oci-image.py), tag VERSION:
#                              one OCI image index with linux/amd64 and linux/arm64
#   DIR/prodready-VERSION.tgz  the chart: version and appVersion VERSION, image.digest stamped
#   DIR/prodready-VERSION-linux-ARCH.tar.gz   the CLI: prodready-VERSION-linux-ARCH/{prodready,
#                              LICENSE,README.md}, for amd64 and arm64
#   DIR/krew/prodready.yaml    the krew plugin manifest (`kubectl prodready audit`), with the
#                              tarballs' checksums
#   DIR/SHA256SUMS             checksums of the tarballs, the chart archive and index.json
# and prints the image digest and the commands that publish both (the digest does not change
# on push: the manifests are copied byte for byte).
#
# Needs python3, strip and readelf (binutils), aarch64-linux-gnu-strip (Debian
# binutils-aarch64-linux-gnu), qemu-aarch64-static on a non-arm64 host, and helm (helm from $HELM, else from the e2e binary cache that
# `bash e2e/k8s-binaries.sh` fills, else from PATH). The image's creation time is the commit
# time of HEAD ($SOURCE_DATE_EPOCH overrides), so the same commit and binary give the same
# digest.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="$root/target/x86_64-unknown-linux-gnu/release/prodready"
arm64_binary="$root/target/aarch64-unknown-linux-gnu/release/prodready"
out="$root/dist"

die() { echo "package: ERROR: $*" >&2; exit 1; }
log() { echo "package: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --arm64-binary) arm64_binary="${2:?--arm64-binary needs a path}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ -x "$binary" ]] || die "no binary at $binary: run \`make release\` first (or pass --binary)"
[[ -x "$arm64_binary" ]] ||
  die "no linux/arm64 binary at $arm64_binary: run \`make release-arm64\` first (or pass --arm64-binary)"

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
# The arm64 binary is stripped by the cross binutils (aarch64-linux-gnu-strip), else by a
# multi-arch strip; it cannot run here, so its version is read from its bytes.
for arch in amd64 arm64; do
  if [[ "$arch" == amd64 ]]; then src="$binary"; strip_tool=strip; else
    src="$arm64_binary"; strip_tool="$(command -v aarch64-linux-gnu-strip || echo strip)"; fi
  if readelf -l "$src" | grep -q 'INTERP'; then
    die "$src is dynamically linked, and the image has no libc: build it static with \`make release\` / \`make release-arm64\`"
  fi
  mkdir -p "$work/$arch" && "$strip_tool" --strip-debug -o "$work/$arch/prodready" "$src" ||
    die "$strip_tool failed on $src"
done
readelf -h "$work/arm64/prodready" | grep -q 'AArch64' || die "$arm64_binary is not an arm64 binary"
# Its version, run under user-mode emulation (Debian: qemu-user-static) on a non-arm64 host.
arm64_run=()
[[ "$(uname -m)" == aarch64 ]] || arm64_run=("$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)")
if [[ "$(uname -m)" == aarch64 || -n "${arm64_run[0]}" ]]; then
  arm64_version="$("${arm64_run[@]}" "$work/arm64/prodready" --version | awk '{print $2}')"
  [[ "$arm64_version" == "$version" ]] ||
    die "$arm64_binary is version '$arm64_version' but Cargo.toml says $version: rebuild it (make release-arm64)"
else
  die "cannot run the arm64 binary to check its version: install qemu-user-static (apt-get install qemu-user-static)"
fi
digest="$(python3 "$root/hack/oci-image.py" --binary "amd64=$work/amd64/prodready" \
  --binary "arm64=$work/arm64/prodready" --version "$version" \
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

log "chart $version: $chart (image.digest = $digest)"

# The CLI: one tarball per architecture, reproducible (sorted names, fixed owner and mtime,
# gzip without a name or time), the same stripped binaries as the image.
tarballs=()
for arch in amd64 arm64; do
  name="prodready-$version-linux-$arch"
  mkdir -p "$work/tar/$name"
  cp "$work/$arch/prodready" "$work/tar/$name/prodready"
  chmod 0755 "$work/tar/$name/prodready"
  cp "$root/LICENSE" "$root/README.md" "$work/tar/$name/"
  chmod 0644 "$work/tar/$name/LICENSE" "$work/tar/$name/README.md"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$work/tar" -cf - "$name" | gzip -n -9 >"$out/$name.tar.gz"
  tarballs+=("$name.tar.gz")
done
log "CLI: ${tarballs[*]}"

# The krew plugin manifest: `kubectl prodready …` runs the tarball's binary under the name
# kubectl-prodready (krew links it so); the checksums are the tarballs'.
sha() { sha256sum "$out/$1" | awk '{print $1}'; }
mkdir -p "$out/krew"
sed -e "s/@VERSION@/$version/g" -e "s/@SHA256_AMD64@/$(sha "prodready-$version-linux-amd64.tar.gz")/" \
  -e "s/@SHA256_ARM64@/$(sha "prodready-$version-linux-arm64.tar.gz")/" \
  "$root/hack/krew-prodready.yaml" >"$out/krew/prodready.yaml"
! grep -q '@[A-Z0-9_]*@' "$out/krew/prodready.yaml" || die "krew manifest: a placeholder is left"

(cd "$out" && sha256sum "${tarballs[@]}" "prodready-$version.tgz" image/index.json >SHA256SUMS)
cat >&2 <<NEXT
package: publish (the image first; its digest does not change on push):
  crane push $out/image REGISTRY/prodready:$version
  helm push $chart oci://REGISTRY/charts
  and attach ${tarballs[*]} SHA256SUMS to the release; krew/prodready.yaml goes to a krew index
NEXT
echo "$digest"
