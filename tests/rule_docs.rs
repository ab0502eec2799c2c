//! The committed rule pages (docs/rules/) must be exactly what the catalog generates.

use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn committed_rule_pages_match_generated() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(prodready::rule_pages::DIR);
    let pages = match prodready::rule_pages::pages() {
        Ok(p) => p,
        Err(e) => panic!("the rule pages cannot be generated: {e}"),
    };
    let fix = format!(
        "regenerate them with `make rule-docs` (`cargo run -- {}`)",
        prodready::rule_pages::COMMAND.trim_start_matches("prodready ")
    );
    let mut stale = Vec::new();
    for (name, text) in &pages {
        let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if committed != *text {
            stale.push(name.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "pages in docs/rules/ differ from the catalog ({}): {fix}",
        stale.join(", ")
    );
    let generated: BTreeSet<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    let extra: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !generated.contains(n.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "docs/rules/ holds pages of no rule ({}): delete them, then {fix}",
        extra.join(", ")
    );
}

#[test]
fn every_rule_has_a_page_linked_from_the_index() {
    let index = prodready::rule_pages::index();
    for rule in prodready::rules::CATALOG {
        assert!(
            index.contains(&format!("[`{0}`]({0}.md)", rule.id)),
            "{}",
            rule.id
        );
    }
}

/// `prodready rules -o json` links every rule's page, and the page exists.
#[test]
fn the_json_catalog_links_each_rules_page() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["rules", "-o", "json"])
        .output()
        .expect("prodready runs");
    assert!(out.status.success());
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rules = rules.as_array().expect("an array");
    assert_eq!(rules.len(), prodready::rules::CATALOG.len());
    for r in rules {
        let id = r["id"].as_str().expect("id");
        let url = r["docs"].as_str().expect("docs");
        assert!(url.ends_with(&format!("/docs/rules/{id}.md")), "{url}");
        let page = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/rules")
            .join(format!("{id}.md"));
        assert!(page.is_file(), "{} is missing", page.display());
    }
}
