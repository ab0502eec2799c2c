//! Container images for the in-cluster suite, made without a container engine: a minimal tar
//! writer, single-binary OCI images (the pod sandbox and the test program), and the OCI
//! archive of an image layout directory (the release image `hack/package.sh` writes), ready
//! for `ctr images import`.

use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// A ustar archive built in memory (the images here hold one static binary each).
#[derive(Default)]
pub(crate) struct Tar {
    buf: Vec<u8>,
}

impl Tar {
    /// Appends a regular file.
    pub(crate) fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> anyhow::Result<()> {
        self.header(path, mode, data.len() as u64, b'0')?;
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.resize(self.buf.len() + pad, 0);
        Ok(())
    }

    /// Appends a directory entry.
    pub(crate) fn dir(&mut self, path: &str) -> anyhow::Result<()> {
        let path = if path.ends_with('/') {
            path.to_string()
        } else {
            format!("{path}/")
        };
        self.header(&path, 0o755, 0, b'5')
    }

    /// The archive with its two terminating zero blocks.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.resize(self.buf.len() + 1024, 0);
        self.buf
    }

    fn header(&mut self, path: &str, mode: u32, size: u64, kind: u8) -> anyhow::Result<()> {
        anyhow::ensure!(path.len() < 100, "tar path too long: {path}");
        let mut h = [0u8; 512];
        h[..path.len()].copy_from_slice(path.as_bytes());
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0); // uid
        octal(&mut h[116..124], 0); // gid
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], 0); // mtime: fixed, so images are reproducible
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let field = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(field.as_bytes());
        self.buf.extend_from_slice(&h);
        Ok(())
    }
}

/// Writes `value` as zero-padded octal with a trailing NUL into `field`.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

fn sha256(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// An OCI archive (a tar of an image layout) of an image that holds `binary` at `/NAME` and
/// runs `entrypoint`, named `reference` (e.g. `localhost/prodready-e2e/testapp:1`).
pub(crate) fn single_binary_image(
    binary: &Path,
    reference: &str,
    entrypoint: &[&str],
) -> anyhow::Result<Vec<u8>> {
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .context("the binary has no file name")?;
    let mut layer = Tar::default();
    layer.file(name, 0o755, &data)?;
    let layer = layer.finish();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "User": "65532:65532"},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": LAYER, "digest": sha256(&layer), "size": layer.len()}],
    }))?;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": sha256(&manifest),
            "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": reference.rsplit(':').next().unwrap_or("latest"),
            },
        }],
    }))?;
    let mut archive = Tar::default();
    archive.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    archive.file("index.json", 0o644, &index)?;
    archive.dir("blobs")?;
    archive.dir("blobs/sha256")?;
    for blob in [&layer, &config, &manifest] {
        let hex = sha256(blob);
        let hex = hex.trim_start_matches("sha256:");
        archive.file(&format!("blobs/sha256/{hex}"), 0o644, blob)?;
    }
    Ok(archive.finish())
}

/// The OCI archive of the image layout directory `dir` (every file, paths relative to it).
pub(crate) fn layout_archive(dir: &Path) -> anyhow::Result<Vec<u8>> {
    fn walk(tar: &mut Tar, root: &Path, dir: &Path) -> anyhow::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)?
                .to_str()
                .context("non-UTF-8 path in the image layout")?
                .to_string();
            if entry.file_type()?.is_dir() {
                tar.dir(&rel)?;
                walk(tar, root, &path)?;
            } else {
                let data =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                tar.file(&rel, 0o644, &data)?;
            }
        }
        Ok(())
    }
    let mut tar = Tar::default();
    walk(&mut tar, dir, dir)?;
    Ok(tar.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_carry_a_valid_checksum_and_size() {
        let mut tar = Tar::default();
        tar.file("a.txt", 0o644, b"hello").unwrap();
        let bytes = tar.finish();
        assert_eq!(bytes.len(), 512 + 512 + 1024);
        let header = &bytes[..512];
        let stored = std::str::from_utf8(&header[148..154]).unwrap();
        let mut copy = header.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u64 = copy.iter().map(|b| u64::from(*b)).sum();
        assert_eq!(u64::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(
            std::str::from_utf8(&header[124..135]).unwrap(),
            "00000000005"
        );
        assert_eq!(&bytes[512..517], b"hello");
    }
}
