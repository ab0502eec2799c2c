#!/usr/bin/env python3
"""Assemble prodready's container image as an OCI image layout, without a container engine.

One image per platform (linux/amd64, linux/arm64: one static binary each), gathered in one
OCI image index, so `docker pull` / the kubelet picks the node's architecture. The image is what the Dockerfile's runtime stage describes: `FROM scratch`, the static
`prodready` binary at `/prodready`, user 65532:65532, ENTRYPOINT ["/prodready"], CMD ["run"],
ports 8080 (admin) and 8443 (webhook). It is written as an OCI image layout directory
(`oci-layout`, `index.json`, `blobs/sha256/…`) that any OCI tool can push as it is, e.g.

    crane push dist/image REGISTRY/prodready:0.1.0
    skopeo copy oci:dist/image:0.1.0 docker://REGISTRY/prodready:0.1.0

Pushing copies the manifest bytes unchanged, so the digest printed here is the digest the
registry serves — the one `hack/package.sh` writes into the chart's `image.digest`.

The output is reproducible: the same binary, version, revision and creation time give the
same bytes and so the same digest (fixed tar metadata, gzip without a timestamp, canonical
JSON). The creation time defaults to $SOURCE_DATE_EPOCH.

Prints the image index digest (`sha256:…`, what a multi-arch reference is pulled by) on
stdout; errors go to stderr with exit code 1.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from datetime import datetime, timezone

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

USER = "65532:65532"
PORTS = ("8080/tcp", "8443/tcp")
SOURCE = "https://github.com/prodready/prodready"

# OCI architecture name -> (ELF e_machine, platform fields).
PLATFORMS = {
    "amd64": (0x3E, {"architecture": "amd64", "os": "linux"}),
    "arm64": (0xB7, {"architecture": "arm64", "os": "linux", "variant": "v8"}),
}


class ImageError(Exception):
    """A problem with the inputs, said so that the caller can fix it."""


def canonical(obj) -> bytes:
    """JSON with sorted keys and no insignificant whitespace: stable bytes, stable digests."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_static_elf(path: str, arch: str) -> None:
    """The runtime image has no libc: the binary must be a static ELF (no PT_INTERP) for
    the image's architecture."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise ImageError(f"{path} is not a 64-bit little-endian ELF executable")
        machine = int.from_bytes(head[18:20], "little")
        if machine != PLATFORMS[arch][0]:
            raise ImageError(
                f"{path} is not a linux/{arch} binary (ELF machine {machine:#x}, "
                f"expected {PLATFORMS[arch][0]:#x})"
            )
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type = int.from_bytes(table[i * phentsize : i * phentsize + 4], "little")
        if p_type == 3:  # PT_INTERP: needs a dynamic loader the image does not have
            raise ImageError(
                f"{path} is dynamically linked; build it static "
                "(`make release`: -C target-feature=+crt-static)"
            )


def layer(binary: str, mtime: int) -> tuple[bytes, str]:
    """The single layer: /prodready, root-owned, mode 0755. Returns (gzip bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("prodready")
        info.size = os.path.getsize(binary)
        info.mode = 0o755
        info.mtime = mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        with open(binary, "rb") as f:
            tar.addfile(info, f)
    tar_bytes = raw.getvalue()
    packed = io.BytesIO()
    # filename="" and mtime=0: no name or time in the gzip header.
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=6) as gz:
        gz.write(tar_bytes)
    return packed.getvalue(), digest_of(tar_bytes)


def image(binary: str, arch: str, labels: dict, stamp: str, created: datetime) -> list:
    """One platform's image: its blobs (layer, config, manifest), manifest last."""
    check_static_elf(binary, arch)
    layer_gz, diff_id = layer(binary, int(created.timestamp()))
    platform = PLATFORMS[arch][1]
    config = canonical(
        {
            "created": stamp,
            **platform,
            "config": {
                "User": USER,
                "ExposedPorts": {p: {} for p in PORTS},
                "Entrypoint": ["/prodready"],
                "Cmd": ["run"],
                "Labels": labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [
                {
                    "created": stamp,
                    "created_by": "COPY prodready /prodready # hack/oci-image.py",
                }
            ],
        }
    )
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [
                {"mediaType": LAYER, "digest": digest_of(layer_gz), "size": len(layer_gz)}
            ],
            "annotations": annotations(labels),
        }
    )
    return [layer_gz, config, manifest]


def annotations(labels: dict) -> dict:
    return {
        k: labels[k]
        for k in (
            "org.opencontainers.image.version",
            "org.opencontainers.image.revision",
            "org.opencontainers.image.created",
            "org.opencontainers.image.source",
        )
    }


def build(binaries: dict, version: str, revision: str, created: datetime, out: str) -> str:
    """`binaries` maps an architecture (amd64, arm64) to its static binary."""
    stamp = created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": "prodready",
        "org.opencontainers.image.description": (
            "Enforces production readiness of Kubernetes workloads"
        ),
        "org.opencontainers.image.source": SOURCE,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": stamp,
    }
    blobs_data = []
    entries = []
    for arch in sorted(binaries):  # amd64 first: stable bytes
        blobs = image(binaries[arch], arch, labels, stamp, created)
        blobs_data.extend(blobs)
        manifest = blobs[-1]
        entries.append(
            {
                "mediaType": MANIFEST,
                "digest": digest_of(manifest),
                "size": len(manifest),
                "platform": PLATFORMS[arch][1],
            }
        )
    # The multi-arch image: an image index, itself a blob, named by the layout's index.json.
    image_index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": entries,
            "annotations": annotations(labels),
        }
    )
    blobs_data.append(image_index)
    index_digest = digest_of(image_index)
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [
                {
                    "mediaType": INDEX,
                    "digest": index_digest,
                    "size": len(image_index),
                    "annotations": {"org.opencontainers.image.ref.name": version},
                }
            ],
        }
    )

    # Write into a sibling temp directory, then swap it in: never a half-written layout.
    parent = os.path.dirname(os.path.abspath(out)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".oci-image-", dir=parent)
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        blobs = os.path.join(tmp, "blobs", "sha256")
        os.makedirs(blobs)
        for data in blobs_data:
            with open(os.path.join(blobs, digest_of(data).split(":", 1)[1]), "wb") as f:
                f.write(data)
        with open(os.path.join(tmp, "index.json"), "wb") as f:
            f.write(index)
        with open(os.path.join(tmp, "oci-layout"), "wb") as f:
            f.write(canonical({"imageLayoutVersion": "1.0.0"}))
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return index_digest


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Write prodready's container image (FROM scratch + a static binary) "
        "as an OCI image layout and print its manifest digest.",
    )
    parser.add_argument(
        "--binary",
        required=True,
        action="append",
        metavar="[ARCH=]PATH",
        help="a static prodready binary and its architecture (amd64, arm64; default amd64); "
        "repeat for a multi-arch image",
    )
    parser.add_argument("--version", required=True, help="image version (tag), e.g. 0.1.0")
    parser.add_argument("--revision", required=True, help="source revision (git commit)")
    parser.add_argument(
        "--created",
        type=int,
        default=None,
        help="creation time, seconds since the epoch (default: $SOURCE_DATE_EPOCH)",
    )
    parser.add_argument("--out", required=True, help="the OCI layout directory to write")
    args = parser.parse_args()
    created = args.created
    if created is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        if not epoch.isdigit():
            print(
                "oci-image: pass --created or set SOURCE_DATE_EPOCH (e.g. the commit time: "
                "git log -1 --format=%ct)",
                file=sys.stderr,
            )
            return 1
        created = int(epoch)
    binaries = {}
    for spec in args.binary:
        arch, sep, path = spec.partition("=")
        if not sep:
            arch, path = "amd64", spec
        if arch not in PLATFORMS:
            print(f"oci-image: unknown architecture {arch!r} (known: {', '.join(PLATFORMS)})",
                  file=sys.stderr)
            return 1
        if arch in binaries:
            print(f"oci-image: two binaries for {arch}", file=sys.stderr)
            return 1
        binaries[arch] = path
    try:
        digest = build(
            binaries,
            args.version,
            args.revision,
            datetime.fromtimestamp(created, timezone.utc),
            args.out,
        )
    except (ImageError, OSError) as err:
        print(f"oci-image: {err}", file=sys.stderr)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
