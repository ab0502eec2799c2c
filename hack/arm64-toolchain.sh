#!/usr/bin/env bash
# Installs what `make release-arm64` needs when it is missing, so a fresh machine builds the
# linux/arm64 binary with no step by hand: rustup's aarch64 std, Debian's cross gcc and
# glibc (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross: ring's C code and the static link)
# and qemu-user-static (the packaging tests run the arm64 binary under it).
# Installing Debian packages needs root; without it the script says what to install.
set -euo pipefail

target=aarch64-unknown-linux-gnu
log() { echo "arm64-toolchain: $*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  log "adding the $target std with rustup"
  rustup target add "$target" >&2 || { log "ERROR: 'rustup target add $target' failed"; exit 1; }
fi

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
[[ -e /usr/aarch64-linux-gnu/lib/libc.a ]] || missing+=(libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $EUID -ne 0 ]]; then
    log "ERROR: missing Debian packages ${missing[*]}: run 'sudo apt-get install ${missing[*]}'"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  # make test runs this script beside another apt user (make -j): one apt at a time.
  flock /tmp/prodready-apt.lock sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"' apt "${missing[@]}" >&2 ||
    { log "ERROR: apt-get install ${missing[*]} failed"; exit 1; }
fi
