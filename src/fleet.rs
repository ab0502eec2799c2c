//! `prodready audit --cluster --context a --context b …` (or `--all-contexts`): several clusters
//! read into one report. Each context is read by [`crate::scan::scan`], the single-cluster path,
//! at most [`MAX_CONCURRENT`] at a time on one runtime; each cluster is then audited apart (its
//! own workloads, context and policies) and named on every finding
//! ([`crate::audit::clusters`]). A cluster that cannot be read does not stop the others: its
//! error, which names the context, becomes an input error of the report (exit code 2).

use futures::StreamExt as _;
use k8s_openapi::jiff::Timestamp;

use crate::engine::CompiledPolicy;
use crate::scan::{ClusterArgs, ScanError, Scanned};

/// Clusters read at once: enough to hide one slow API server behind the others, few enough
/// that a laptop with fifty contexts does not open fifty sets of watches at once.
pub const MAX_CONCURRENT: usize = 4;

/// Why the clusters to read cannot be named.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// `--all-contexts` with a kubeconfig that has none.
    #[error(
        "--all-contexts found no context in the kubeconfig {kubeconfig}; add contexts to it (kubectl config get-contexts lists them) or name clusters with --context"
    )]
    NoContexts {
        /// The kubeconfig read.
        kubeconfig: String,
    },
    /// `--cluster-name` with several clusters.
    #[error(
        "--cluster-name names one cluster, but {contexts} contexts were given; leave it out (each cluster is then named by its context) or audit one context"
    )]
    NameForMany {
        /// How many contexts.
        contexts: usize,
    },
    /// The kubeconfig could not be read.
    #[error(transparent)]
    Scan(#[from] ScanError),
}

/// Whether these flags ask for a fleet audit (more than one cluster, or every context).
pub fn is_fleet(args: &ClusterArgs) -> bool {
    args.all_contexts || args.context.len() > 1
}

/// The contexts to read, in the order given (each once), or every context of the kubeconfig
/// in its order for `--all-contexts`.
pub fn contexts(args: &ClusterArgs) -> Result<Vec<String>, FleetError> {
    let mut names: Vec<String> = if args.all_contexts {
        let kubeconfig = crate::scan::read_kubeconfig(args, true)?;
        kubeconfig
            .map(|kc| kc.contexts.into_iter().map(|c| c.name).collect())
            .unwrap_or_default()
    } else {
        args.context.clone()
    };
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    if names.is_empty() {
        return Err(FleetError::NoContexts {
            kubeconfig: crate::scan::kubeconfig_name(args),
        });
    }
    if args.cluster_name.is_some() && names.len() > 1 {
        return Err(FleetError::NameForMany {
            contexts: names.len(),
        });
    }
    Ok(names)
}

/// One cluster's scan: its context name and what was read, or why not.
#[derive(Debug)]
pub struct ClusterScan {
    /// The kubeconfig context.
    pub context: String,
    /// What the scan read.
    pub scanned: Result<Scanned, ScanError>,
}

/// Reads every context, [`MAX_CONCURRENT`] at a time, on a runtime of its own; the results in
/// the order of `contexts`. `explicit`: the policies of --policy/--profile, applied in every
/// cluster (else each cluster's own).
pub fn scan_blocking(
    args: &ClusterArgs,
    contexts: &[String],
    explicit: Option<&[CompiledPolicy]>,
    now: Timestamp,
) -> Result<Vec<ClusterScan>, ScanError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ScanError::Runtime)?;
    Ok(runtime.block_on(scan(args, contexts, explicit, now)))
}

/// [`scan_blocking`] on the caller's runtime. No progress line: several would interleave.
pub async fn scan(
    args: &ClusterArgs,
    contexts: &[String],
    explicit: Option<&[CompiledPolicy]>,
    now: Timestamp,
) -> Vec<ClusterScan> {
    futures::stream::iter(contexts)
        .map(|context| async move {
            let scanned = crate::scan::scan(
                args,
                Some(context),
                explicit.map(<[CompiledPolicy]>::to_vec),
                now,
                false,
            )
            .await;
            ClusterScan {
                context: context.clone(),
                scanned,
            }
        })
        .buffered(MAX_CONCURRENT)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        live: ClusterArgs,
    }

    fn args(argv: &[&str]) -> ClusterArgs {
        let argv = std::iter::once("t").chain(argv.iter().copied());
        Flags::try_parse_from(argv)
            .map(|f| f.live)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn contexts_are_taken_once_in_order_and_a_name_fits_one_cluster_only() {
        let a = args(&[
            "--cluster",
            "--context",
            "b",
            "--context",
            "a",
            "--context",
            "b",
        ]);
        assert!(is_fleet(&a));
        assert_eq!(
            contexts(&a).ok(),
            Some(vec!["b".to_owned(), "a".to_owned()])
        );
        let one = args(&["--cluster", "--context", "a", "--cluster-name", "eu-1"]);
        assert!(!is_fleet(&one));
        assert_eq!(contexts(&one).ok(), Some(vec!["a".to_owned()]));
        let many = args(&[
            "--cluster",
            "--context",
            "a",
            "--context",
            "b",
            "--cluster-name",
            "x",
        ]);
        let e = contexts(&many)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("--cluster-name names one cluster, but 2 contexts"),
            "{e}"
        );
    }

    #[test]
    fn every_context_of_the_kubeconfig_in_its_order() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("config");
        let text = "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts:\n  - {name: prod, context: {cluster: p, user: u}}\n  - {name: dev, context: {cluster: d, user: u}}\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let all = args(&[
            "--cluster",
            "--all-contexts",
            "--kubeconfig",
            &path.display().to_string(),
        ]);
        assert!(is_fleet(&all));
        assert_eq!(
            contexts(&all).ok(),
            Some(vec!["prod".to_owned(), "dev".to_owned()])
        );
        std::fs::write(&path, "apiVersion: v1\nkind: Config\ncontexts: []\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let e = contexts(&all)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("--all-contexts found no context in the kubeconfig"),
            "{e}"
        );
    }
}
