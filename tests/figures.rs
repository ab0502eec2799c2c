//! One source for every headline figure: bench/RESULTS.md, where the benchmarks write them.
//!
//! README.md, CONTRIBUTING.md and the pages under docs/ quote a figure between markers,
//! `<!-- figure:ID -->VALUE<!-- /figure -->`; this test reads each figure out of the section
//! its benchmark writes (`<!-- NAME:begin -->` … `<!-- NAME:end -->`) and fails when a quote
//! differs, names an unknown figure, or a figure cannot be found any more. Goal words ("met",
//! "MISSED by …") are figures too: the benchmark computes them, the docs quote them.
//!
//! After a benchmark rewrote its section, `make figures` (`PRODREADY_UPDATE=1 cargo test
//! --test figures`) rewrites every quote.

use std::path::{Path, PathBuf};

use regex::Regex;

/// A figure: the RESULTS.md section its benchmark writes, the line in it that carries the
/// figure (the first one that starts with `line`), and a pattern whose first group is it.
struct Figure {
    id: &'static str,
    section: &'static str,
    line: &'static str,
    pattern: &'static str,
}

const FIGURES: &[Figure] = &[
    Figure {
        id: "audit-one-core",
        section: "audit-vs-peers",
        line: "- **One core (issue 2):**",
        pattern: r"\*\* ([\d,]+ workloads/s) end to end",
    },
    Figure {
        id: "audit-one-core-goal",
        section: "audit-vs-peers",
        line: "- **One core (issue 2):**",
        pattern: r"goal (≥ [\d,]+/s: [^.]*(?:\.\d+×)?)",
    },
    Figure {
        id: "vs-kube-score",
        section: "audit-vs-peers",
        line: "- **kube-score:**",
        pattern: r"prodready is ([\d.]+×) faster on the single file",
    },
    Figure {
        id: "vs-kube-score-dir",
        section: "audit-vs-peers",
        line: "- **kube-score:**",
        pattern: r"and ([\d.]+×) on the directory",
    },
    Figure {
        id: "vs-kube-linter",
        section: "audit-vs-peers",
        line: "- **kube-linter:**",
        pattern: r"prodready is ([\d.]+×) faster on the single file",
    },
    Figure {
        id: "vs-kube-linter-dir",
        section: "audit-vs-peers",
        line: "- **kube-linter:**",
        pattern: r"and ([\d.]+×) on the directory",
    },
    Figure {
        id: "vs-polaris",
        section: "audit-vs-peers",
        line: "- **polaris:**",
        pattern: r"at least ([\d,]+×) \(file\)",
    },
    Figure {
        id: "webhook-p99",
        section: "webhook-load",
        line: "| fixed rate 200 req/s for 60s (4 connections), from scheduled instant",
        pattern: r"\| [\d.]+ ms \| ([\d.]+ ms) \|",
    },
    Figure {
        id: "webhook-p99-write",
        section: "webhook-load",
        line: "| fixed rate 200 req/s for 60s (4 connections), from request write",
        pattern: r"\| [\d.]+ ms \| ([\d.]+ ms) \|",
    },
    Figure {
        id: "webhook-saturation",
        section: "webhook-load",
        line: "| saturation, 8 connections",
        pattern: r"^\| [^|]+\| [\d,]+ \| ([\d,]+) \|",
    },
    Figure {
        id: "webhook-review-cpu",
        section: "webhook-load",
        line: "| in-process decode+review+encode",
        pattern: r"\| [\d,]+ \| ([\d.]+ ms) \|",
    },
    Figure {
        id: "cold-start-12k",
        section: "operator-cold-start",
        line: "| process start → status exactly right",
        pattern: r"\*\*([\d.]+ s)\*\*",
    },
    Figure {
        id: "cold-start-12k-goal",
        section: "operator-cold-start",
        line: "| process start → status exactly right",
        pattern: r"\| (met|\*\*MISSED\*\*[^|]*) \|$",
    },
    Figure {
        id: "rss-12k-idle",
        section: "operator-cold-start",
        line: "| VmRSS after convergence",
        pattern: r"\*\*([\d.]+ MiB)\*\*",
    },
    Figure {
        id: "idle-requests",
        section: "operator-cold-start",
        line: "| API requests while idle",
        pattern: r"\*\*([\d.]+/s)\*\*",
    },
    Figure {
        id: "policy-edit",
        section: "operator-policy-edit",
        line: "| PATCH response",
        pattern: r"\*\*([\d.]+ s)\*\*",
    },
    Figure {
        id: "policy-edit-goal",
        section: "operator-policy-edit",
        line: "| PATCH response",
        pattern: r"\| (met|\*\*MISSED\*\*[^|]*) \|$",
    },
    Figure {
        id: "churn-lag-max",
        section: "operator-churn",
        line: "| lag p50 / p99 / max",
        pattern: r"\*\*([\d.]+ s)\*\*",
    },
    Figure {
        id: "churn-goal",
        section: "operator-churn",
        line: "| lag p50 / p99 / max",
        pattern: r"\| (met|\*\*MISSED\*\*[^|]*) \|$",
    },
    Figure {
        id: "memory-base",
        section: "operator-memory",
        line: "| 0 |",
        pattern: r"\| [\d.]+ s \| ([\d.]+ MiB) \|",
    },
    Figure {
        id: "memory-12k",
        section: "operator-memory",
        line: "| 12,000 |",
        pattern: r"\| [\d.]+ s \| ([\d.]+ MiB) \|",
    },
    Figure {
        id: "memory-per-workload-12k",
        section: "operator-memory",
        line: "| 12,000 |",
        pattern: r"([\d.]+ KiB) \|",
    },
    Figure {
        id: "reports-exact",
        section: "operator-reports",
        line: "| process start → every report exactly",
        pattern: r"\*\*([\d.]+ s)\*\*",
    },
    Figure {
        id: "reports-idle-requests",
        section: "operator-reports",
        line: "| API requests while idle",
        pattern: r"\*\*([\d.]+/s)\*\*",
    },
    Figure {
        id: "reports-size",
        section: "operator-reports",
        line: "| report JSON as served",
        pattern: r"\*\*([\d.]+ MB)\*\*",
    },
    Figure {
        id: "reports-rss",
        section: "operator-reports",
        line: "| operator VmRSS after the idle window",
        pattern: r"\*\*([\d.]+ MiB)\*\*",
    },
    Figure {
        id: "memory-10k",
        section: "operator-large",
        line: "| 10,000 |",
        pattern: r"\| [\d.]+ s \| ([\d.]+ MiB) \|",
    },
    Figure {
        id: "memory-100k",
        section: "operator-large",
        line: "| 100,000 |",
        pattern: r"\| [\d.]+ s \| ([\d.]+ MiB) \|",
    },
    Figure {
        id: "memory-per-workload-100k",
        section: "operator-large",
        line: "| 100,000 |",
        pattern: r"([\d.]+ KiB) \|$",
    },
    Figure {
        id: "cold-start-100k",
        section: "operator-large",
        line: "| process start → status exactly right",
        pattern: r"\*\*([\d.]+ s)\*\*",
    },
    Figure {
        id: "cold-start-100k-goal",
        section: "operator-large",
        line: "| process start → status exactly right",
        pattern: r"\| (met|\*\*MISSED\*\*[^|]*) \|$",
    },
    Figure {
        id: "audit-cluster-vs-floor",
        section: "audit-cluster",
        line: "| scan / LIST floor",
        pattern: r"\*\*([\d.]+×)\*\* the paged LIST floor",
    },
    Figure {
        id: "audit-cluster-goal",
        section: "audit-cluster",
        line: "| scan / LIST floor",
        pattern: r"the paged LIST floor: (met|\*\*MISSED\*\*)",
    },
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every figure's value as bench/RESULTS.md states it, or why it cannot be found.
fn sources() -> Vec<(&'static str, Result<String, String>)> {
    let results =
        std::fs::read_to_string(root().join("bench/RESULTS.md")).expect("bench/RESULTS.md");
    FIGURES
        .iter()
        .map(|f| (f.id, value_of(&results, f)))
        .collect()
}

fn value_of(results: &str, f: &Figure) -> Result<String, String> {
    let begin = format!("<!-- {}:begin -->", f.section);
    let end = format!("<!-- {}:end -->", f.section);
    let section = results
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(s, _)| s)
        .ok_or_else(|| format!("bench/RESULTS.md has no section {begin} … {end}"))?;
    let line = section
        .lines()
        .find(|l| l.starts_with(f.line))
        .ok_or_else(|| format!("section {} has no line starting {:?}", f.section, f.line))?;
    let re = Regex::new(f.pattern).map_err(|e| format!("pattern {:?}: {e}", f.pattern))?;
    re.captures(line)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim().replace("**", ""))
        .ok_or_else(|| format!("{:?} does not match the line {line:?}", f.pattern))
}

/// The files that may quote figures.
fn quoting_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read docs/") {
            let path = entry.expect("docs entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn quote() -> Regex {
    Regex::new(r"<!-- figure:([a-z0-9-]+) -->(.*?)<!-- /figure -->").expect("quote pattern")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_headline_figure_is_found_in_bench_results() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter_map(|(id, v)| v.err().map(|e| format!("{id}: {e}")))
        .collect();
    assert!(
        missing.is_empty(),
        "figures bench/RESULTS.md no longer states (a benchmark changed its wording: fix the \
         pattern in tests/figures.rs):\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_quoted_figure_equals_bench_results() {
    let sources = sources();
    let update = std::env::var_os("PRODREADY_UPDATE").is_some();
    let re = quote();
    let mut wrong = Vec::new();
    let mut quoted = 0;
    for file in quoting_files() {
        let text = std::fs::read_to_string(&file).expect("read a doc");
        let mut problems = Vec::new();
        let rewritten = re.replace_all(&text, |c: &regex::Captures<'_>| {
            let (id, shown) = (&c[1], &c[2]);
            quoted += 1;
            match sources.iter().find(|(i, _)| *i == id) {
                Some((_, Ok(value))) => {
                    if shown != value {
                        problems.push(format!(
                            "{}: figure {id} says {shown:?}, bench/RESULTS.md says {value:?}",
                            relative(&file)
                        ));
                    }
                    format!("<!-- figure:{id} -->{value}<!-- /figure -->")
                }
                Some((_, Err(e))) => {
                    problems.push(format!("{}: figure {id}: {e}", relative(&file)));
                    c[0].to_string()
                }
                None => {
                    problems.push(format!(
                        "{}: figure {id} is not one tests/figures.rs knows",
                        relative(&file)
                    ));
                    c[0].to_string()
                }
            }
        });
        if update && rewritten != text {
            std::fs::write(&file, rewritten.as_bytes()).expect("rewrite a doc");
            problems.retain(|p| !p.contains("bench/RESULTS.md says"));
        }
        wrong.extend(problems);
    }
    assert!(
        wrong.is_empty(),
        "{}\nRun `make figures` to quote bench/RESULTS.md again.",
        wrong.join("\n")
    );
    assert!(
        quoted >= 10,
        "only {quoted} quoted figures: the markers are gone?"
    );
}

/// The checker itself: a changed number is caught, a pattern that no longer matches is named.
#[test]
fn a_changed_figure_is_caught() {
    let f = &FIGURES[0];
    let results = std::fs::read_to_string(root().join("bench/RESULTS.md")).expect("RESULTS");
    let value = value_of(&results, f).expect("the first figure");
    let changed = results.replacen(&value, "1 workloads/s", 1);
    assert_eq!(
        value_of(&changed, f).as_deref(),
        Ok("1 workloads/s"),
        "the figure is read from the file, not remembered"
    );
    let reworded = results.replace(f.line, "- **Something else:**");
    assert!(value_of(&reworded, f).is_err());
}
