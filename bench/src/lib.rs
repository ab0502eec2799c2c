//! Benchmark support: writes the deterministic corpus of [`prodready::corpus`] to disk in the
//! two layouts the audit benchmark feeds every tool — one multi-document file, and a directory
//! with one file per workload — and counts what it wrote, so each tool's output can be checked
//! against the truth.

pub mod operator;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use prodready::corpus::Spec;

/// Where the two layouts of a corpus live under an output directory.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The single multi-document file: `<out>/corpus.yaml`.
    pub file: PathBuf,
    /// The directory of files: `<out>/files/<namespace>/<name>.yaml`.
    pub dir: PathBuf,
    /// The counts, as JSON: `<out>/counts.json`.
    pub counts: PathBuf,
}

impl Layout {
    /// The layout under `out`.
    pub fn new(out: &Path) -> Self {
        Layout {
            file: out.join("corpus.yaml"),
            dir: out.join("files"),
            counts: out.join("counts.json"),
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Workloads (Deployments, StatefulSets, CronJobs).
    pub workloads: usize,
    /// YAML documents in all, workloads and companions.
    pub documents: usize,
    /// Documents by kind.
    pub by_kind: BTreeMap<String, usize>,
    /// Bytes of the single file (the directory holds the same bytes, split).
    pub bytes: u64,
    /// Files in the directory layout.
    pub files: usize,
    /// Namespaces used (at most the spec's).
    pub namespaces: usize,
}

impl Stats {
    /// The counts as a JSON object (written to `counts.json`).
    pub fn to_json(&self, spec: &Spec) -> serde_json::Value {
        serde_json::json!({
            "seed": spec.seed,
            "namespaces": self.namespaces,
            "workloads": self.workloads,
            "documents": self.documents,
            "byKind": self.by_kind,
            "bytes": self.bytes,
            "files": self.files,
        })
    }
}

fn kind_of(doc: &str) -> &str {
    doc.lines()
        .find_map(|l| l.strip_prefix("kind: "))
        .unwrap_or("?")
        .trim()
}

/// Writes the corpus of `spec` under `out` in both layouts (replacing earlier output there)
/// and returns the counts. The single file is byte-identical to [`prodready::corpus::to_yaml`].
pub fn write_corpus(spec: Spec, out: &Path) -> io::Result<Stats> {
    let layout = Layout::new(out);
    fs::create_dir_all(out)?;
    if layout.dir.exists() {
        fs::remove_dir_all(&layout.dir)?;
    }
    fs::create_dir_all(&layout.dir)?;
    let mut single = BufWriter::with_capacity(1 << 20, File::create(&layout.file)?);
    let mut stats = Stats::default();
    let mut made = std::collections::HashSet::new();
    let mut buf = String::with_capacity(8192);
    for g in prodready::corpus::generate(spec) {
        buf.clear();
        for d in &g.documents {
            buf.push_str("---\n");
            buf.push_str(d);
            *stats.by_kind.entry(kind_of(d).to_owned()).or_default() += 1;
        }
        single.write_all(buf.as_bytes())?;
        stats.bytes += buf.len() as u64;
        stats.workloads += 1;
        stats.documents += g.documents.len();
        let ns_dir = layout.dir.join(&g.namespace);
        if made.insert(g.namespace.clone()) {
            fs::create_dir_all(&ns_dir)?;
        }
        fs::write(ns_dir.join(format!("{}.yaml", g.name)), buf.as_bytes())?;
        stats.files += 1;
    }
    single.flush()?;
    stats.namespaces = made.len();
    fs::write(&layout.counts, format!("{:#}\n", stats.to_json(&spec)))?;
    Ok(stats)
}
