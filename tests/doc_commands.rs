//! Every command in README.md and docs/ is run by a test as written, or excepted here with its
//! reason.
//!
//! A command block (```sh) belongs to the first anchor before it that a test reads it by:
//! the test names the file and the anchor as literals (`doc_sh_block("docs/install.md",
//! "## Upgrade")`, `sh_block(…)`, `commands_in(…)`, `install_md_block(…)`), and this test
//! checks that the named test file really holds both strings and that the anchor leads to
//! this block. Lines of a run block that its test does not run are listed with the reason.
//! A block no test runs must be excepted as a whole, with the reason; the list stays short.
//! ```console blocks are transcripts (a command and what it printed), not instructions.

use std::path::{Path, PathBuf};

/// A block a test runs: the doc, the anchor the test passes, the test file, and the lines of
/// the block it does not run (a prefix of the line is enough), each with why.
struct Run {
    doc: &'static str,
    anchor: &'static str,
    test: &'static str,
    not_run: &'static [(&'static str, &'static str)],
}

const NO_KUBELET: &str =
    "needs pods that become ready; e2e/tests/cluster.rs runs it on a real node";

const RUN: &[Run] = &[
    Run {
        doc: "README.md",
        anchor: "**1. Install the operator**",
        test: "e2e/tests/cluster.rs",
        not_run: &[],
    },
    Run {
        doc: "README.md",
        anchor: "**2. Your first policy.**",
        test: "e2e/tests/cluster.rs",
        not_run: &[],
    },
    Run {
        doc: "README.md",
        anchor: "**3. The audit in CI.**",
        test: "tests/audit_repository.rs",
        not_run: &[(
            "cargo install --locked --path .",
            "installs the binary the test already runs, built by cargo test",
        )],
    },
    Run {
        doc: "README.md",
        anchor: "## The audit command (CI)",
        test: "tests/audit_repository.rs",
        not_run: &[],
    },
    Run {
        doc: "README.md",
        anchor: "## In the cluster: `prodready run`",
        test: "e2e/tests/operator.rs",
        not_run: &[(
            "kubectl get productionpolicies",
            "the test reads the same status through the API and waits for it",
        )],
    },
    Run {
        doc: "README.md",
        anchor: "## Contributing",
        test: "tests/doc_commands.rs",
        not_run: &[(
            "cargo run --release --locked",
            "a second release build (minutes); `prodready audit examples/` is run by tests/audit_repository.rs",
        )],
    },
    Run {
        doc: "docs/operator.md",
        anchor: "# Running the operator: `prodready run`",
        test: "e2e/tests/operator.rs",
        not_run: &[
            (
                "curl -s localhost:8080",
                "the test moves the admin port (parallel suites) and reads /health/ready and /metrics there",
            ),
            (
                "kubectl get productionpolicies",
                "the test reads the same status through the API",
            ),
            (
                "kubectl describe productionpolicy baseline",
                "the test reads the same status through the API",
            ),
        ],
    },
    Run {
        doc: "docs/audit.md",
        anchor: "## Inputs",
        test: "tests/audit_repository.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/audit-cluster.md",
        anchor: "## RBAC: read-only",
        test: "e2e/tests/audit_cluster.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/many-clusters.md",
        anchor: "## A fleet audit from a laptop or CI",
        test: "e2e/tests/fleet.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/reports.md",
        anchor: "## In CI: `prodready audit -o openreports`",
        test: "tests/doc_commands.rs",
        not_run: &[(
            "kubectl apply -f reports.yaml",
            "needs a cluster with the reports CRDs; e2e/tests/reports.rs applies reports the same way",
        )],
    },
    Run {
        doc: "docs/install.md",
        anchor: "## From a release (no checkout)",
        test: "e2e/tests/packaging.rs",
        not_run: &[("kubectl -n prodready-system rollout status", NO_KUBELET)],
    },
    Run {
        doc: "docs/install.md",
        anchor: "The CLI, for CI and laptops",
        test: "e2e/tests/packaging.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/install.md",
        anchor: "## Helm from the source tree",
        test: "e2e/tests/packaging.rs",
        not_run: &[("kubectl -n prodready-system rollout status", NO_KUBELET)],
    },
    Run {
        doc: "docs/install.md",
        anchor: "## Upgrade",
        test: "e2e/tests/packaging.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/install.md",
        anchor: "## Uninstall",
        test: "e2e/tests/cluster.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/install.md",
        anchor: "Check that nothing is left",
        test: "e2e/tests/cluster.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/install.md",
        anchor: "delete them by hand:",
        test: "e2e/tests/packaging.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/install.md",
        anchor: "## kustomize",
        test: "e2e/tests/cluster.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/alerts.md",
        anchor: "# Alerts and runbooks",
        test: "e2e/tests/packaging.rs",
        not_run: &[],
    },
    Run {
        doc: "docs/install.md",
        anchor: "Publish the image first, then the chart",
        test: "e2e/tests/packaging.rs",
        not_run: &[],
    },
];

/// Blocks no test runs as written, with the reason. Keep this short.
const EXCEPTED: &[(&str, &str, &str)] = &[
    (
        "docs/install.md",
        "\n## The image\n",
        "`docker build` needs a Docker engine, which CI does not have; hadolint checks the \
         Dockerfile (make lint-dockerfile) and `make package` builds the released image",
    ),
    (
        "docs/install.md",
        "\n## Releasing: the image, the chart and the CLI\n",
        "`make package` is what e2e/tests/packaging.rs and cluster.rs run through hack/package.sh \
         after `make test` built its prerequisites (release, release-arm64, e2e-binaries)",
    ),
    (
        "docs/install.md",
        "## Dog-fooding",
        "e2e/tests/packaging.rs renders the released chart with the same flags and audits it with \
         the released binary (the_released_image_audits_the_released_chart_strict_with_zero_failures); \
         the pipe itself is not run",
    ),
    (
        "docs/install.md",
        "Upgrade once with `--take-ownership`",
        "from a registry; e2e/tests/packaging.rs \
         (upgrading_from_a_chart_with_crds_dir_takes_the_crd_over_with_take_ownership) runs the same \
         `helm upgrade --take-ownership` with the chart from the source tree",
    ),
    (
        "docs/admission.md",
        "### cert-manager or mounted files",
        "flags of a mounted-certificate deployment; e2e/tests/webhook.rs runs the operator with \
         certificate files, through its own paths",
    ),
    (
        "docs/admission.md",
        "Measured with the load client",
        "a benchmark of minutes (bench/webhook-load.sh); its figures are quoted from bench/RESULTS.md",
    ),
    (
        "docs/audit-cluster.md",
        "# Auditing a live cluster",
        "examples of flags against the reader's contexts (prod, ci.kubeconfig); e2e/tests/audit_cluster.rs \
         runs `audit --cluster` against a real API server with each flag",
    ),
    (
        "docs/operator.md",
        "To see where memory goes",
        "a heaptrack session of a developer; no assertion to make",
    ),
    (
        "docs/reports.md",
        "## Turning it on",
        "needs the reports-api CRD files from the reader's checkout; e2e/tests/reports.rs installs \
         the same CRDs",
    ),
    (
        "docs/reports.md",
        "## A walk-through",
        "a walk through a live cluster with the operator running; e2e/tests/reports.rs checks the \
         same reports, names and labels",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command block: the doc, the byte offset where it starts, its command lines (comments
/// and blank lines dropped, continuation lines joined).
#[derive(Debug)]
struct Block {
    doc: String,
    at: usize,
    line: usize,
    commands: Vec<String>,
}

fn docs() -> Vec<String> {
    let mut out = vec!["README.md".to_owned()];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read docs/") {
            let path = entry.expect("a docs entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(relative(&path));
            }
        }
    }
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(doc: &str) -> String {
    std::fs::read_to_string(root().join(doc)).unwrap_or_else(|e| panic!("read {doc}: {e}"))
}

/// Every ```sh/```bash/```shell block of a doc.
fn blocks(doc: &str) -> Vec<Block> {
    let text = read(doc);
    let mut out = Vec::new();
    let mut offset = 0;
    let mut open: Option<(usize, usize, String)> = None;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if let Some((at, first, body)) = open.as_mut() {
            if trimmed.trim_start().starts_with("```") {
                out.push(Block {
                    doc: doc.to_owned(),
                    at: *at,
                    line: *first,
                    commands: commands(body),
                });
                open = None;
            } else {
                body.push_str(line);
            }
        } else if matches!(trimmed.trim_start(), "```sh" | "```bash" | "```shell") {
            open = Some((offset, n + 1, String::new()));
        } else if trimmed.trim_start().starts_with("```") {
            // Another fence: skip to its end so its content is not mistaken for a block.
            open = None;
        }
        offset += line.len();
    }
    out
}

fn commands(body: &str) -> Vec<String> {
    body.replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The block a test reading (doc, anchor) gets: the first block after the anchor.
fn block_after(doc: &str, anchor: &str, all: &[Block]) -> Option<usize> {
    let text = read(doc);
    let at = text.find(anchor)?;
    all.iter().position(|b| b.doc == doc && b.at > at)
}

#[test]
fn every_documented_command_is_run_by_a_test_or_excepted_with_a_reason() {
    let all: Vec<Block> = docs().iter().flat_map(|d| blocks(d)).collect();
    assert!(all.len() >= 25, "only {} blocks found: {all:?}", all.len());
    let mut covered = vec![None::<&str>; all.len()];
    let mut problems = Vec::new();
    for run in RUN {
        let source = read(run.test);
        for needle in [run.doc, run.anchor] {
            if !source.contains(needle) {
                problems.push(format!(
                    "{} does not name {needle:?}: it does not read {}'s block after {:?}",
                    run.test, run.doc, run.anchor
                ));
            }
        }
        let Some(i) = block_after(run.doc, run.anchor, &all) else {
            problems.push(format!("{} has no block after {:?}", run.doc, run.anchor));
            continue;
        };
        covered[i] = Some(run.test);
        for (prefix, _) in run.not_run {
            if !all[i].commands.iter().any(|c| c.starts_with(prefix)) {
                problems.push(format!(
                    "{}:{}: no line starts with {prefix:?} any more; drop it from not_run",
                    run.doc, all[i].line
                ));
            }
        }
    }
    for (doc, anchor, reason) in EXCEPTED {
        assert!(!reason.is_empty());
        match block_after(doc, anchor, &all) {
            Some(i) if covered[i].is_none() => covered[i] = Some("excepted"),
            Some(i) => problems.push(format!(
                "{doc}:{}: excepted and also run by {:?}",
                all[i].line, covered[i]
            )),
            None => problems.push(format!("{doc} has no block after {anchor:?}")),
        }
    }
    for (block, by) in all.iter().zip(&covered) {
        if by.is_none() {
            problems.push(format!(
                "{}:{}: no test runs this block ({:?}); run it in a test as written, or except it \
                 in tests/doc_commands.rs with the reason",
                block.doc, block.line, block.commands
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        EXCEPTED.len() <= 10,
        "the exceptions grow ({}): run the new block in a test as written instead",
        EXCEPTED.len()
    );
}

/// README's contributor commands: `make test` is exactly what CI runs (`.ci/run`), and the
/// main job is the Makefile's `audit-examples`.
#[test]
fn the_readme_test_command_is_what_ci_runs() {
    let readme = read("README.md");
    let anchor = "## Contributing";
    let all = blocks("README.md");
    let i = block_after("README.md", anchor, &all).expect("README's contributing block");
    let commands: Vec<&str> = all[i]
        .commands
        .iter()
        .map(|c| c.split(" #").next().unwrap_or(c).trim())
        .collect();
    assert!(readme.contains(anchor));
    assert_eq!(
        commands,
        [
            "cargo run --release --locked -- audit examples/",
            "make test"
        ]
    );
    let ci = read(".ci/run");
    let last = ci
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .expect(".ci/run has a command");
    assert_eq!(
        last.trim(),
        "make test",
        ".ci/run must run README's test command"
    );
    let makefile = read("Makefile");
    assert!(
        makefile.contains(&format!("audit-examples:\n\t{}", commands[0])),
        "make audit-examples is README's main job"
    );
}

/// docs/reports.md's offline block, run as written from a directory whose `k8s/` holds the
/// bundled examples: each writes a YAML stream of reports, one per workload.
#[test]
fn the_offline_reports_commands_run_as_written() {
    let anchor = "## In CI: `prodready audit -o openreports`";
    let all = blocks("docs/reports.md");
    let i = block_after("docs/reports.md", anchor, &all).expect("reports.md's offline block");
    let dir = tempfile::tempdir().expect("temp dir");
    let k8s = dir.path().join("k8s");
    std::fs::create_dir(&k8s).expect("k8s/");
    for entry in std::fs::read_dir(root().join("examples")).expect("examples/") {
        let path = entry.expect("an example").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, k8s.join(path.file_name().expect("a name"))).expect("copy");
        }
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_prodready"));
    let bin = exe.parent().expect("the binary's directory");
    let mut ran = 0;
    for line in &all[i].commands {
        let command = line.split(" # ").next().unwrap_or(line).trim();
        if command.starts_with("kubectl ") {
            continue;
        }
        let out = std::process::Command::new("bash")
            .args(["-c", command])
            .current_dir(dir.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .expect("bash runs");
        // Findings are the command working: exit 1 (the examples hold a violating app).
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "`{command}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reports = std::fs::read_to_string(dir.path().join("reports.yaml")).expect("reports");
        assert!(
            reports.matches("\nkind: ").count() + usize::from(reports.starts_with("kind: ")) >= 4,
            "`{command}` wrote fewer reports than workloads:\n{reports}"
        );
        ran += 1;
    }
    assert_eq!(ran, 3, "{:?}", all[i].commands);
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(doc: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in read(doc).lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// Every relative link of README.md, CONTRIBUTING.md and docs/ names a file that exists, and
/// every `#anchor` a heading of its page (the contents lines are built from them).
#[test]
fn every_relative_link_and_anchor_resolves() {
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").expect("link pattern");
    let mut docs = docs();
    docs.push("CONTRIBUTING.md".to_owned());
    let mut broken = Vec::new();
    for doc in &docs {
        let text = read(doc);
        let dir = Path::new(doc).parent().unwrap_or(Path::new(""));
        for c in link.captures_iter(&text) {
            let target = &c[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                doc.clone()
            } else {
                relative(&root().join(dir).join(path))
            };
            let resolved = root().join(dir).join(path);
            if !path.is_empty() && !resolved.exists() {
                broken.push(format!("{doc}: {target} (no such file)"));
                continue;
            }
            if !anchor.is_empty()
                && file.ends_with(".md")
                && !anchors(&file).iter().any(|a| a == anchor)
            {
                broken.push(format!("{doc}: {target} (no such heading)"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Every ProductionPolicy a page shows in a ```yaml block is one `prodready audit --policy`
/// accepts: the schema's fields, the CEL rules' checks, the engine's (exit 2 would say it is
/// invalid, with why).
#[test]
fn every_documented_policy_is_valid() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_prodready"));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut docs = docs();
    docs.push("CONTRIBUTING.md".to_owned());
    let mut checked = 0;
    for doc in &docs {
        let text = read(doc);
        let mut rest = text.as_str();
        while let Some((_, after)) = rest.split_once("```yaml\n") {
            let (block, next) = after.split_once("```").expect("a closed yaml block");
            rest = next;
            if !block.contains("kind: ProductionPolicy") {
                continue;
            }
            let file = dir.path().join(format!("policy-{checked}.yaml"));
            std::fs::write(&file, block).expect("write the policy");
            let out = std::process::Command::new(&exe)
                .arg("audit")
                .arg("--policy")
                .arg(&file)
                .arg(root().join("examples/compliant-app.yaml"))
                .output()
                .expect("prodready runs");
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{doc}: the policy is refused:\n{block}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} policies in the docs");
}
