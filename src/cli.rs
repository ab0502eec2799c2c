//! The command line: `audit`, `rules`, `explain`, `crd`, `run`.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::jiff::Timestamp;

use crate::api::{ProductionPolicySpec, Profile};
pub use crate::audit::config::FailOn;
use crate::audit::config::{self, PolicySource, Settings};
use crate::audit::{self, InputError, Loaded, output};
use crate::engine::CompiledPolicy;
use crate::rules::{self, CATALOG};

/// prodready: production readiness for Kubernetes workloads.
///
/// Checks Deployments, StatefulSets, DaemonSets, CronJobs, Jobs and Pods against
/// ProductionPolicy rules (probes, resources, pinned images, single-runner scheduled work,
/// metrics coverage, graceful shutdown, disruption budgets, secrets in literals…).
#[derive(Debug, Parser)]
#[command(
    name = "prodready",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit manifests (files, directories, `-` for stdin) against a policy; for CI.
    ///
    /// Exit code: 0 = no failure at or above --fail-on; 1 = failures; 2 = usage error, an
    /// input that could not be parsed or a cluster that could not be read (everything else is
    /// still audited and reported).
    ///
    /// Examples:
    ///   prodready audit examples/
    ///   helm template ./chart | prodready audit - -o sarif > prodready.sarif
    ///   prodready audit --policy config/samples/enforce/strict.yaml --fail-on medium k8s/
    ///   prodready audit --cluster --context prod -o json   (read-only live scan)
    ///   prodready audit --cluster --context eu --context us   (one report over two clusters)
    #[command(verbatim_doc_comment)]
    Audit(Box<AuditArgs>),
    /// List every rule: id, default state, severity, rubric item and summary.
    Rules {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = RulesFormat::Table)]
        output: RulesFormat,
    },
    /// Explain one rule: what it checks, why it matters, and an example fix.
    Explain {
        /// The rule id (see `prodready rules`).
        rule: String,
    },
    /// Print the ProductionPolicy CustomResourceDefinition (YAML) to stdout.
    Crd,
    /// Print the JSON Schema of the audit's config file, `.prodready.yaml`, to stdout (for
    /// editors: `# yaml-language-server: $schema=…`).
    ConfigSchema,
    /// Write the rule pages (`<id>.md` per rule and `README.md` as the index) into DIR.
    ///
    /// The pages are generated from the catalog, with each example run through the engine;
    /// the repository keeps them in docs/rules (`make rule-docs`).
    #[command(hide = true)]
    RuleDocs {
        /// The directory to write (created if missing), normally docs/rules.
        dir: PathBuf,
    },
    /// Run the operator: watch the cluster, evaluate every workload against every
    /// ProductionPolicy, write policy status and Events, serve health and metrics.
    ///
    /// Connects with --kubeconfig, else $KUBECONFIG / ~/.kube/config, else the in-cluster
    /// service account. Every flag has a PRODREADY_* environment variable.
    ///
    /// Example:
    ///   prodready run --kubeconfig ~/.kube/config --lease-namespace default --log-format text
    #[command(verbatim_doc_comment)]
    Run(Box<crate::run::RunArgs>),
}

/// Arguments of `prodready audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Files or directories to audit (`.yaml`, `.yml`, `.json`, recursively, honouring
    /// `.gitignore`); `-` reads stdin; none with --cluster. A directory holding `Chart.yaml` is rendered with
    /// `helm template`, one holding `kustomization.yaml` with `kubectl kustomize`. YAML that is
    /// not a Kubernetes object (values files, CI configs) is counted and skipped.
    #[arg(required_unless_present = "cluster", value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The config file (default: `.prodready.yaml` in the working directory or the nearest
    /// directory above it). Flags win over it.
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Do not read a config file.
    #[arg(long)]
    pub no_config: bool,

    /// Built-in profile to apply when no --policy is given [default: the config file's, else
    /// baseline; with --cluster: the cluster's ProductionPolicies, if any].
    #[arg(long, value_enum, conflicts_with = "policy")]
    pub profile: Option<ProfileArg>,

    /// ProductionPolicy file(s) to apply instead of a profile; every policy document in them
    /// is applied, as the operator would. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub policy: Vec<PathBuf>,

    /// Turn a rule on in every policy applied (repeatable, or comma-separated).
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub enable: Vec<String>,

    /// Turn a rule off in every policy applied (repeatable, or comma-separated).
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub disable: Vec<String>,

    /// Honour the workloads' `prodready.dev/exempt` annotations (reason required), reported
    /// as `exempt`.
    #[arg(long)]
    pub allow_annotation_exemptions: bool,

    /// Leave out paths matching this glob, relative to the working directory (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// A values file for every Helm chart audited (repeatable).
    #[arg(long, value_name = "FILE")]
    pub values: Vec<PathBuf>,

    /// A `--set` value for every Helm chart audited (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// The Helm release name [default: the chart directory's name].
    #[arg(long, value_name = "NAME")]
    pub release_name: Option<String>,

    /// The Helm release namespace [default: default].
    #[arg(long, value_name = "NAMESPACE")]
    pub release_namespace: Option<String>,

    /// API versions a chart sees in `.Capabilities.APIVersions` besides helm's own
    /// (repeatable; replaces the default: apiregistration.k8s.io/v1 and the monitoring CRDs).
    #[arg(long, value_name = "GROUP/VERSION")]
    pub api_versions: Vec<String>,

    /// The Kubernetes version a Helm chart is rendered for [default: v1.34.0].
    #[arg(long, value_name = "VERSION")]
    pub kube_version: Option<String>,

    /// The helm binary [default: `helm` on PATH].
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,

    /// The kustomize or kubectl binary [default: `kustomize`, else `kubectl`, on PATH].
    #[arg(long, value_name = "PATH")]
    pub kustomize: Option<PathBuf>,

    /// Report format.
    #[arg(short, long, value_enum, default_value_t = output::Format::Table)]
    pub output: output::Format,

    /// Exit 1 when a failure at or above this severity is found (`none`: never)
    /// [default: high, or the config file's].
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,

    /// Also list passing rules.
    #[arg(long)]
    pub show_passed: bool,

    /// In the table, list every input skipped, excluded or not judged, and every directory
    /// rendered.
    #[arg(short, long)]
    pub verbose: bool,

    /// Colour in the table: auto (only on a terminal, honouring NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,

    /// Evaluate as of this RFC 3339 instant instead of now (exemption expiry, enforceAfter).
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<Timestamp>,

    /// Files read and parsed, and workloads judged, at once (default: the available cores;
    /// 1 = one thread). The report is the same, byte for byte, for every value.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// `--cluster` and its flags (`crate::scan`): audit the live cluster instead of files.
    #[command(flatten)]
    pub live: crate::scan::ClusterArgs,
}

impl AuditArgs {
    /// `--jobs`, or the cores this process may use.
    pub fn jobs(&self) -> usize {
        self.jobs.map_or_else(
            || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            usize::from,
        )
    }

    /// The flags that share their meaning with the config file.
    pub fn flags(&self) -> config::Flags {
        config::Flags {
            config: self.config.clone(),
            no_config: self.no_config,
            profile: self.profile.map(ProfileArg::profile),
            policies: self.policy.clone(),
            enable: self.enable.clone(),
            disable: self.disable.clone(),
            allow_annotation_exemptions: self.allow_annotation_exemptions,
            exclude: self.exclude.clone(),
            fail_on: self.fail_on,
            values: self.values.clone(),
            set: self.set.clone(),
            release_name: self.release_name.clone(),
            release_namespace: self.release_namespace.clone(),
            api_versions: self.api_versions.clone(),
            kube_version: self.kube_version.clone(),
            helm: self.helm.clone(),
            kustomize: self.kustomize.clone(),
        }
    }
}

/// A built-in profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// The catalog defaults.
    Baseline,
    /// Every rule on.
    Strict,
}

impl ProfileArg {
    /// The profile.
    pub fn profile(self) -> Profile {
        match self {
            ProfileArg::Baseline => Profile::Baseline,
            ProfileArg::Strict => Profile::Strict,
        }
    }
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Only on a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Format of `prodready rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// A table.
    Table,
    /// JSON.
    Json,
    /// A Markdown table linking each rule's page (used for the README).
    Markdown,
}

/// The policies a run applies (the profile's, or every policy in the policy files), with
/// the config file's and the flags' rule settings, exemptions and annotation switch applied;
/// problems become input errors.
pub fn load_policies(settings: &Settings, errors: &mut Vec<InputError>) -> Vec<CompiledPolicy> {
    let compile = |name: &str, mut spec: ProductionPolicySpec| {
        settings
            .apply(&mut spec)
            .map_err(|message| message.to_string())?;
        CompiledPolicy::from_spec(name, spec, &crate::rules::CATALOG).map_err(|e| e.to_string())
    };
    let files = match &settings.policies {
        PolicySource::Profile(profile) => {
            let spec = ProductionPolicySpec {
                profile: Some(*profile),
                ..Default::default()
            };
            return match compile(profile.as_str(), spec) {
                Ok(p) => vec![p],
                Err(message) => {
                    errors.push(InputError {
                        file: settings
                            .file
                            .as_deref()
                            .map_or_else(|| "command line".into(), |f| f.display().to_string()),
                        document: None,
                        line: None,
                        message,
                    });
                    Vec::new()
                }
            };
        }
        PolicySource::Files(files) => files,
    };
    let loaded = Loaded::from_paths(files);
    errors.extend(loaded.errors);
    let mut policies = Vec::new();
    for (policy, source) in loaded.policies {
        let name = policy.metadata.name.clone().unwrap_or_default();
        let generation = policy.metadata.generation;
        match compile(&name, policy.spec) {
            Ok(mut p) => {
                p.generation = generation;
                policies.push(p);
            }
            Err(message) => errors.push(InputError {
                file: source.file,
                document: Some(source.document),
                line: Some(source.line),
                message,
            }),
        }
    }
    if policies.is_empty() && errors.is_empty() {
        errors.push(InputError {
            file: files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            document: None,
            line: None,
            message: "no ProductionPolicy (apiVersion prodready.dev/v1alpha1) found in the \
                      policy files; name files that hold ProductionPolicy documents"
                .into(),
        });
    }
    policies
}

/// Runs `prodready audit`; returns the exit code.
pub fn run_audit(args: &AuditArgs, out: &mut dyn Write) -> io::Result<i32> {
    run_audit_retaining(args, out).map(|(code, _)| code)
}

/// What an audit leaves behind: every parsed object and the report.
///
/// Freeing it takes one deallocation per object — for a large corpus about a tenth of the
/// whole run — so the `prodready` binary, which exits right after, does not drop it.
#[derive(Default)]
pub struct AuditRun {
    /// The inputs.
    pub loaded: Loaded,
    /// The report written.
    pub report: audit::Report,
}

/// [`run_audit`], handing back the inputs and report instead of dropping them.
/// With `--cluster` the inputs are read from the cluster (`crate::scan`) instead of paths.
pub fn run_audit_retaining(args: &AuditArgs, out: &mut dyn Write) -> io::Result<(i32, AuditRun)> {
    let cwd = std::env::current_dir()?;
    let settings = match config::resolve(&args.flags(), &cwd) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("prodready: {e}");
            return Ok((2, AuditRun::default()));
        }
    };
    let now = args.now.unwrap_or_else(Timestamp::now);
    let jobs = args.jobs();
    let reports = args
        .output
        .report_api()
        .map(|api| crate::reports::ReportOptions {
            api,
            include_passes: args.show_passed,
            cluster: None,
        });
    if args.live.cluster && crate::fleet::is_fleet(&args.live) {
        let report = match fleet_report(args, &settings, now, jobs, reports) {
            Ok(report) => report,
            Err(code) => return Ok((code, AuditRun::default())),
        };
        return finish(args, &settings, report, Loaded::default(), out);
    }
    let mut policy_errors = Vec::new();
    let (policies, mut loaded) = if args.live.cluster {
        match cluster_inputs(args, &settings, now, &mut policy_errors) {
            Ok(inputs) => inputs,
            Err(code) => return Ok((code, AuditRun::default())),
        }
    } else {
        let policies = load_policies(&settings, &mut policy_errors);
        (
            policies,
            Loaded::from_paths_with(&args.paths, jobs, &settings.load),
        )
    };
    loaded.errors.splice(0..0, policy_errors);
    let mut report = audit::audit_jobs(&loaded, &policies, now, args.show_passed, jobs, reports);
    if let Some(name) = args
        .live
        .cluster_name
        .as_deref()
        .filter(|_| args.live.cluster)
    {
        audit::clusters::name_cluster(&mut report, name);
    }
    finish(args, &settings, report, loaded, out)
}

/// Writes the report, says its errors on stderr (machine formats), and picks the exit code.
fn finish(
    args: &AuditArgs,
    settings: &Settings,
    report: audit::Report,
    loaded: Loaded,
    out: &mut dyn Write,
) -> io::Result<(i32, AuditRun)> {
    let jobs = args.jobs();
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    output::write_jobs(&report, args.output, color, args.verbose, jobs, out)?;
    if args.output != output::Format::Table && !report.errors.is_empty() {
        // Machine formats carry the errors in the document; say so on stderr too.
        for e in &report.errors {
            eprintln!("prodready: {}: {}", e.file, e.message);
        }
    }
    let code = report.exit_code(settings.fail_on.threshold());
    Ok((code, AuditRun { loaded, report }))
}

/// `prodready audit --cluster`: the policies (--policy/--profile when given, else the
/// cluster's) and the workloads and context read from the cluster (`crate::scan`); `Err` is
/// the exit code after a usage error or a failed scan, said on stderr.
fn cluster_inputs(
    args: &AuditArgs,
    settings: &Settings,
    now: Timestamp,
    policy_errors: &mut Vec<InputError>,
) -> Result<(Vec<CompiledPolicy>, Loaded), i32> {
    if let Some(path) = args.paths.first() {
        eprintln!(
            "prodready: --cluster audits the live cluster and takes no PATH (got {}); give either paths or --cluster",
            path.display()
        );
        return Err(2);
    }
    // --policy, --profile or the config file's policies; else the cluster's own, as they are.
    let explicit = settings
        .policies_chosen
        .then(|| load_policies(settings, policy_errors));
    if explicit.is_none() && settings.changes_policies() {
        eprintln!(
            "prodready: the cluster's ProductionPolicies are applied as they are: rule \
             switches, exemptions and allowAnnotationExemptions from flags or the config file \
             apply to --policy/--profile (or the config file's policies) only"
        );
    }
    match crate::scan::scan_blocking(&args.live, explicit, now, crate::scan::progress_wanted()) {
        Ok(scanned) => {
            eprintln!("prodready: {}", scanned.source.describe());
            Ok((scanned.policies, scanned.loaded))
        }
        Err(e) => {
            eprintln!("prodready: {e}");
            Err(2)
        }
    }
}

/// `prodready audit --cluster` over several contexts (`crate::fleet`): each cluster read
/// (several at once) and audited apart, with --policy/--profile when given, else its own
/// ProductionPolicies; one report naming the cluster on every finding. A cluster that cannot be
/// read is an input error of the report (the others are still audited); `Err` is the exit code
/// after a usage error, said on stderr.
fn fleet_report(
    args: &AuditArgs,
    settings: &Settings,
    now: Timestamp,
    jobs: usize,
    reports: Option<crate::reports::ReportOptions>,
) -> Result<audit::Report, i32> {
    if let Some(path) = args.paths.first() {
        eprintln!(
            "prodready: --cluster audits live clusters and takes no PATH (got {}); give either paths or --cluster",
            path.display()
        );
        return Err(2);
    }
    let contexts = crate::fleet::contexts(&args.live).map_err(|e| {
        eprintln!("prodready: {e}");
        2
    })?;
    let mut policy_errors = Vec::new();
    let explicit = settings
        .policies_chosen
        .then(|| load_policies(settings, &mut policy_errors));
    if explicit.is_none() && settings.changes_policies() {
        eprintln!(
            "prodready: each cluster's ProductionPolicies are applied as they are: rule \
             switches, exemptions and allowAnnotationExemptions from flags or the config file \
             apply to --policy/--profile (or the config file's policies) only"
        );
    }
    let scans = crate::fleet::scan_blocking(&args.live, &contexts, explicit.as_deref(), now)
        .map_err(|e| {
            eprintln!("prodready: {e}");
            2
        })?;
    let mut parts = Vec::with_capacity(scans.len() + 1);
    if !policy_errors.is_empty() {
        parts.push(audit::Report {
            version: 1,
            errors: policy_errors,
            ..audit::Report::default()
        });
    }
    for scan in scans {
        let cluster = scan.context;
        match scan.scanned {
            Ok(scanned) => {
                eprintln!(
                    "prodready: {cluster}: {} workloads; {}",
                    scanned.loaded.workloads.len(),
                    scanned.source.describe()
                );
                let mut report = audit::audit_jobs(
                    &scanned.loaded,
                    &scanned.policies,
                    now,
                    args.show_passed,
                    jobs,
                    reports,
                );
                audit::clusters::name_cluster(&mut report, &cluster);
                parts.push(report);
            }
            Err(e) => {
                // Said on stderr by `finish` for the machine formats, in the table otherwise.
                parts.push(audit::Report {
                    version: 1,
                    errors: vec![InputError {
                        file: format!("cluster:{cluster}"),
                        document: None,
                        line: None,
                        message: e.to_string(),
                    }],
                    ..audit::Report::default()
                });
            }
        }
    }
    Ok(audit::clusters::merge(parts))
}

/// Runs `prodready rules`.
pub fn run_rules(format: RulesFormat, out: &mut dyn Write) -> io::Result<()> {
    match format {
        RulesFormat::Json => {
            let rules: Vec<_> = CATALOG
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "summary": r.summary, "rubric": r.rubric,
                        "defaultEnabled": r.default_enabled, "severity": r.default_severity,
                        "rationale": r.rationale, "example": r.example,
                        "docs": rules::doc_url(r.id),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &rules).map_err(io::Error::other)?;
            writeln!(out)
        }
        RulesFormat::Markdown => {
            writeln!(out, "| id | checks | rubric | baseline | severity |")?;
            writeln!(out, "| --- | --- | --- | --- | --- |")?;
            for r in CATALOG {
                writeln!(
                    out,
                    "| [`{}`]({}) | {} | {} | {} | {} |",
                    r.id,
                    rules::doc_url(r.id),
                    r.summary,
                    r.rubric,
                    if r.default_enabled { "on" } else { "off" },
                    r.default_severity
                )?;
            }
            Ok(())
        }
        RulesFormat::Table => {
            let mut t = comfy_table::Table::new();
            t.load_style(comfy_table::presets::NOTHING)
                .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
                .set_width(120)
                .set_header(["RULE", "BASELINE", "SEVERITY", "RUBRIC", "CHECKS"]);
            for r in CATALOG {
                t.add_row([
                    r.id,
                    if r.default_enabled { "on" } else { "off" },
                    r.default_severity.as_str(),
                    r.rubric,
                    r.summary,
                ]);
            }
            writeln!(out, "{t}")?;
            writeln!(
                out,
                "\nThe strict profile turns every rule on. `prodready explain RULE` tells why each matters."
            )
        }
    }
}

/// Runs `prodready explain`; returns the exit code.
pub fn run_explain(id: &str, out: &mut dyn Write) -> io::Result<i32> {
    let Some(r) = rules::find(id) else {
        let ids: Vec<&str> = CATALOG.iter().map(|r| r.id).collect();
        eprintln!(
            "prodready: unknown rule `{id}`; known rules: {}",
            ids.join(", ")
        );
        return Ok(2);
    };
    writeln!(out, "{}: {}\n", r.id, r.summary)?;
    writeln!(
        out,
        "Default: {} in the baseline profile, severity {}. Rubric: {}.\n",
        if r.default_enabled { "on" } else { "off" },
        r.default_severity,
        r.rubric
    )?;
    writeln!(out, "Why it matters:\n  {}\n", r.rationale)?;
    writeln!(out, "Example fix:")?;
    for line in r.example.lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(
        out,
        "\nConfigure it in a ProductionPolicy under spec.rules.{} (enabled, severity, parameters).",
        rules::settings_key(r.id)
    )?;
    writeln!(out, "Read more: {}", rules::doc_url(r.id))?;
    Ok(0)
}
