//! Commands as the docs write them, so tests run exactly what a reader would.

use anyhow::Context as _;

use crate::binaries::repo_root;

/// The lines of the first `sh` block after `anchor` (a heading or any text) in the repository
/// file `file`: `\` continuations joined, trimmed, blank lines and whole-line comments dropped
/// (a trailing ` # comment` is kept: bash drops it, word-splitting callers cut it).
pub fn doc_sh_block(file: &str, anchor: &str) -> anyhow::Result<Vec<String>> {
    let path = repo_root().join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let after = text
        .split_once(anchor)
        .with_context(|| format!("{file} has no {anchor:?}"))?
        .1;
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .with_context(|| format!("{file}: no sh block after {anchor:?}"))?
        .0;
    let lines: Vec<String> = block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!lines.is_empty(), "{file}: no commands after {anchor:?}");
    Ok(lines)
}
