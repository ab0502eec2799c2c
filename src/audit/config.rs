//! `.prodready.yaml`: how a repository configures its audit, found the way linters find theirs
//! (from the working directory upward), and the flags that win over it.
//!
//! The policy part reuses the ProductionPolicy schema — `rules` is `spec.rules`, `exemptions`
//! is `spec.exemptions`, `policies` names the very ProductionPolicy files the cluster applies —
//! so one definition serves CI and the cluster. What only the CLI needs (path excludes, chart
//! values and render settings, the failure threshold) sits beside it. Unknown keys are errors
//! naming the closest valid key, as the API server refuses a policy's unknown fields.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::load::{Excludes, LoadOptions};
use super::render::RenderOptions;
use crate::api::{Exemption, Profile, RulesSpec, Severity};

/// The file names looked for, in each directory from the working directory up.
pub const FILE_NAMES: &[&str] = &[".prodready.yaml", ".prodready.yml"];

/// Where the config file's JSON Schema is published (the yaml-language-server modeline).
pub const SCHEMA_URL: &str =
    "https://raw.githubusercontent.com/prodready/prodready/main/docs/prodready-config.schema.json";

/// The committed copy of the schema, relative to the repository root.
pub const SCHEMA_PATH: &str = "docs/prodready-config.schema.json";

/// `.prodready.yaml`: the audit's configuration. Every key is optional; command-line flags win
/// over it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "prodready audit configuration (.prodready.yaml)")]
pub struct Config {
    /// The built-in profile to audit against when no `policies` are named: `baseline` (the
    /// catalog defaults) or `strict` (every rule on). `--profile` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,

    /// ProductionPolicy files (YAML, relative to this file) to audit against instead of a
    /// profile: the same files the cluster applies. Every policy document in them is applied,
    /// as the operator would. `--policy` wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,

    /// Rule settings applied on top of every policy (or the profile), with the schema of a
    /// ProductionPolicy's `spec.rules`: `enabled`, `severity` and each rule's parameters, per
    /// rule. `--enable` and `--disable` win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesSpec>,

    /// Exemptions added to every policy, with the schema of a ProductionPolicy's
    /// `spec.exemptions` (rules, namespaces, names, selector, containers, a required reason,
    /// an optional expiry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<Exemption>,

    /// Honour the workloads' own `prodready.dev/exempt` annotations (with the required
    /// `prodready.dev/exempt-reason`, optional `prodready.dev/exempt-until`): inline ignores.
    /// Findings they exempt are reported as `exempt`, never dropped.
    /// `--allow-annotation-exemptions` also turns this on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_annotation_exemptions: Option<bool>,

    /// Paths not to audit, as globs relative to this file's directory (`tests/fixtures/**`,
    /// `legacy`); a pattern without `/` matches at any depth, and a directory excludes
    /// everything below it. Excluded paths are listed in the report. `--exclude` adds more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,

    /// The lowest severity of a failure that makes `audit` exit 1: `critical`, `high`,
    /// `medium`, `low` or `none`. `--fail-on` wins. Default `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<FailOn>,

    /// How Helm charts (directories holding `Chart.yaml`) are rendered.
    #[serde(default)]
    pub chart: ChartSettings,

    /// The helm binary (default: `helm` on PATH). `--helm` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<String>,

    /// The kustomize or kubectl binary for kustomizations (default: `kustomize`, else
    /// `kubectl`, on PATH). `--kustomize` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<String>,
}

/// How charts are rendered with `helm template`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartSettings {
    /// Values files for every chart (`--values`), relative to this file. `--values` adds
    /// more after them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// `--set` values (`key=value`) for every chart. `--set` adds more after them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    /// The release name (default: the chart directory's name). `--release-name` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// The release namespace (default `default`). `--release-namespace` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The API versions the chart sees in `.Capabilities.APIVersions` besides helm's own
    /// (default: `apiregistration.k8s.io/v1` and `monitoring.coreos.com/v1`, also with the
    /// ServiceMonitor and PodMonitor kinds, so charts render their ServiceMonitors).
    /// `--api-versions` replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_versions: Option<Vec<String>>,
    /// The Kubernetes version the chart is rendered for (`.Capabilities.KubeVersion`,
    /// `kubeVersion` constraints; default `v1.34.0`). `--kube-version` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_version: Option<String>,
}

/// The failure threshold of `audit`'s exit code.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Critical failures only.
    Critical,
    /// High or critical.
    High,
    /// Medium and above.
    Medium,
    /// Any failure.
    Low,
    /// Never fail on findings (input errors still exit 2).
    None,
}

impl FailOn {
    /// The lowest failing severity, or `None` for never.
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::None => None,
        }
    }
}

/// What the command line says about the same settings (each `None`/empty when not given).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--no-config`.
    pub no_config: bool,
    /// `--profile`.
    pub profile: Option<Profile>,
    /// `--policy FILE…`.
    pub policies: Vec<PathBuf>,
    /// `--enable RULE…`.
    pub enable: Vec<String>,
    /// `--disable RULE…`.
    pub disable: Vec<String>,
    /// `--allow-annotation-exemptions`.
    pub allow_annotation_exemptions: bool,
    /// `--exclude GLOB…`.
    pub exclude: Vec<String>,
    /// `--fail-on`.
    pub fail_on: Option<FailOn>,
    /// `--values FILE…`.
    pub values: Vec<PathBuf>,
    /// `--set K=V…`.
    pub set: Vec<String>,
    /// `--release-name`.
    pub release_name: Option<String>,
    /// `--release-namespace`.
    pub release_namespace: Option<String>,
    /// `--api-versions` (given at least once: replaces the file's and the default list).
    pub api_versions: Vec<String>,
    /// `--kube-version`.
    pub kube_version: Option<String>,
    /// `--helm`.
    pub helm: Option<PathBuf>,
    /// `--kustomize`.
    pub kustomize: Option<PathBuf>,
}

/// Where the policies come from.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicySource {
    /// A built-in profile.
    Profile(Profile),
    /// ProductionPolicy files.
    Files(Vec<PathBuf>),
}

/// Everything an audit run needs, resolved: flags over the config file over the defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// Where the policies come from.
    pub policies: PolicySource,
    /// Whether `policies` was chosen by a flag or the config file (a live scan otherwise
    /// audits against the cluster's own policies).
    pub policies_chosen: bool,
    /// Rule settings merged into every policy's `spec.rules` (a JSON object keyed by the
    /// camelCase rule name), config file first, then `--enable`/`--disable`.
    pub rules: Map<String, Value>,
    /// Exemptions added to every policy.
    pub exemptions: Vec<Exemption>,
    /// Whether workloads' exemption annotations are honoured under every policy.
    pub allow_annotation_exemptions: bool,
    /// The failure threshold.
    pub fail_on: FailOn,
    /// Excludes and render settings.
    pub load: LoadOptions,
}

/// A config file or flag that cannot be used: a sentence naming the file and what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The config file (or `command line`).
    pub file: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// The config file for a run started in `cwd`: the first `.prodready.yaml` (or `.yml`) in
/// `cwd` or a directory above it.
pub fn find(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors()
        .flat_map(|dir| FILE_NAMES.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The config file's JSON Schema (for editors, and for strict reading).
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}

/// The schema as committed under [`SCHEMA_PATH`].
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads and checks a config file.
pub fn read(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let err = |message: String| ConfigError {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read the config file: {e}")))?;
    parse(&text).map_err(err)
}

/// Parses config text; the error is a sentence.
pub fn parse(text: &str) -> Result<Config, String> {
    let value: Value = match serde_norway::from_str(text) {
        Ok(Value::Null) => return Ok(Config::default()),
        Ok(v) => v,
        Err(e) => return Err(format!("invalid YAML: {e}")),
    };
    if !value.is_object() {
        return Err(
            "the config file must be a mapping of settings (see the schema at \
                    docs/prodready-config.schema.json)"
                .into(),
        );
    }
    let unknown = super::strict::unknown_fields(&value, &schema());
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        return Err(format!(
            "{} (see docs/prodready-config.schema.json)",
            list.join("; ")
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!("`{path}`: {}", e.inner())
    })
}

/// A rule id given on the command line, checked against the catalog.
fn rule_id(id: &str, flag: &str) -> Result<String, ConfigError> {
    if crate::rules::find(id).is_some() {
        return Ok(crate::rules::settings_key(id));
    }
    let hint = crate::text::closest(id, crate::rules::CATALOG.iter().map(|r| r.id))
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default();
    Err(ConfigError {
        file: "command line".into(),
        message: format!("{flag} {id}: no such rule{hint} (`prodready rules` lists them)"),
    })
}

/// Resolves the settings of a run in `cwd`: the config file (`--config`, else found upward
/// unless `--no-config`), then the flags over it.
pub fn resolve(flags: &Flags, cwd: &Path) -> Result<Settings, ConfigError> {
    let file = if flags.no_config {
        None
    } else {
        flags.config.clone().or_else(|| find(cwd))
    };
    let config = match &file {
        Some(f) => read(f)?,
        None => Config::default(),
    };
    // The file's relative paths are relative to its directory.
    let base = file
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf);
    let at_base = |p: &str| base.join(p);
    let file_name = file
        .as_deref()
        .map_or_else(|| "command line".to_owned(), |f| f.display().to_string());
    let config_error = |message: String| ConfigError {
        file: file_name.clone(),
        message,
    };

    let (policies, policies_chosen) = if !flags.policies.is_empty() {
        (PolicySource::Files(flags.policies.clone()), true)
    } else if let Some(p) = flags.profile {
        (PolicySource::Profile(p), true)
    } else if !config.policies.is_empty() {
        (
            PolicySource::Files(config.policies.iter().map(|p| at_base(p)).collect()),
            true,
        )
    } else if let Some(p) = config.profile {
        (PolicySource::Profile(p), true)
    } else {
        (PolicySource::Profile(Profile::Baseline), false)
    };

    let mut rules = match &config.rules {
        Some(r) => match serde_json::to_value(r) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    for (ids, enabled, flag) in [
        (&flags.enable, true, "--enable"),
        (&flags.disable, false, "--disable"),
    ] {
        for id in ids {
            let key = rule_id(id, flag)?;
            overlay(&mut rules, key, &serde_json::json!({ "enabled": enabled }));
        }
    }

    let mut excludes = Excludes::default();
    excludes.add(&base, &config.exclude).map_err(config_error)?;
    excludes
        .add(cwd, &flags.exclude)
        .map_err(|message| ConfigError {
            file: "command line".into(),
            message,
        })?;

    let chart = &config.chart;
    let defaults = RenderOptions::default();
    let render = RenderOptions {
        helm: flags
            .helm
            .clone()
            .or_else(|| config.helm.as_deref().map(&at_base)),
        kustomize: flags
            .kustomize
            .clone()
            .or_else(|| config.kustomize.as_deref().map(&at_base)),
        values: chart
            .values
            .iter()
            .map(|v| at_base(v))
            .chain(flags.values.iter().map(|v| cwd.join(v)))
            .collect(),
        set: chart.set.iter().chain(&flags.set).cloned().collect(),
        release_name: flags
            .release_name
            .clone()
            .or_else(|| chart.release_name.clone()),
        namespace: flags
            .release_namespace
            .clone()
            .or_else(|| chart.namespace.clone())
            .unwrap_or(defaults.namespace),
        api_versions: if flags.api_versions.is_empty() {
            chart.api_versions.clone().unwrap_or(defaults.api_versions)
        } else {
            flags.api_versions.clone()
        },
        kube_version: flags
            .kube_version
            .clone()
            .or_else(|| chart.kube_version.clone())
            .unwrap_or(defaults.kube_version),
        timeout: defaults.timeout,
    };

    Ok(Settings {
        file,
        policies,
        policies_chosen,
        rules,
        exemptions: config.exemptions,
        allow_annotation_exemptions: flags.allow_annotation_exemptions
            || config.allow_annotation_exemptions.unwrap_or(false),
        fail_on: flags.fail_on.or(config.fail_on).unwrap_or(FailOn::High),
        load: LoadOptions { excludes, render },
    })
}

/// Sets one rule's settings in a `spec.rules` object, field by field over what it has.
fn overlay(rules: &mut Map<String, Value>, key: String, over: &Value) {
    let entry = rules
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    match (entry, over) {
        (Value::Object(have), Value::Object(over)) => {
            for (k, v) in over {
                have.insert(k.clone(), v.clone());
            }
        }
        (entry, over) => *entry = over.clone(),
    }
}

impl Settings {
    /// Whether these settings change the policies they are applied to (rule settings,
    /// exemptions, annotation exemptions).
    pub fn changes_policies(&self) -> bool {
        !self.rules.is_empty() || !self.exemptions.is_empty() || self.allow_annotation_exemptions
    }

    /// A policy spec with these settings applied: rule settings merged field by field over
    /// the policy's own, exemptions appended, annotation exemptions allowed when asked.
    pub fn apply(&self, spec: &mut crate::api::ProductionPolicySpec) -> Result<(), String> {
        if !self.rules.is_empty() {
            let mut rules = match serde_json::to_value(&spec.rules) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for (key, settings) in &self.rules {
                overlay(&mut rules, key.clone(), settings);
            }
            spec.rules = serde_json::from_value::<RulesSpec>(Value::Object(rules))
                .map_err(|e| format!("the rule settings cannot be applied: {e}"))?;
        }
        spec.exemptions.extend(self.exemptions.iter().cloned());
        spec.allow_annotation_exemptions |= self.allow_annotation_exemptions;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_the_closest_valid_one() {
        let e =
            parse("exlude: [a]\nchart: {value: [v.yaml]}\nrules: {replicasHA: {enabled: false}}\n")
                .unwrap_err();
        assert!(
            e.contains("unknown field `exlude`; did you mean `exclude`?"),
            "{e}"
        );
        assert!(
            e.contains("unknown field `chart.value`; did you mean `values`?"),
            "{e}"
        );
        assert!(
            e.contains("unknown field `rules.replicasHA`; did you mean `replicasHa`?"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_names_its_path() {
        let e = parse("failOn: sometimes\n").unwrap_err();
        assert!(e.starts_with("`failOn`:"), "{e}");
        let e = parse("exclude: 3\n").unwrap_err();
        assert!(e.starts_with("`exclude`:"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("prodready-config-{}", std::process::id()));
        let sub = dir.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            dir.join(".prodready.yaml"),
            "profile: strict\nfailOn: medium\nrules: {replicasHa: {minReplicas: 3}}\nchart: {namespace: shop, values: [v.yaml]}\n",
        )
        .unwrap();
        let s = resolve(&Flags::default(), &sub).unwrap();
        assert_eq!(
            s.file.as_deref(),
            Some(dir.join(".prodready.yaml").as_path())
        );
        assert_eq!(s.policies, PolicySource::Profile(Profile::Strict));
        assert_eq!(s.fail_on, FailOn::Medium);
        assert_eq!(s.load.render.namespace, "shop");
        assert_eq!(s.load.render.values, [dir.join("v.yaml")]);
        let flags = Flags {
            profile: Some(Profile::Baseline),
            fail_on: Some(FailOn::Low),
            disable: vec!["replicas-ha".into()],
            ..Flags::default()
        };
        let s = resolve(&flags, &sub).unwrap();
        assert_eq!(s.policies, PolicySource::Profile(Profile::Baseline));
        assert_eq!(s.fail_on, FailOn::Low);
        assert_eq!(
            Value::Object(s.rules.clone()),
            serde_json::json!({"replicasHa": {"minReplicas": 3, "enabled": false}})
        );
        let mut spec = crate::api::ProductionPolicySpec::default();
        s.apply(&mut spec).unwrap();
        let r = spec.rules.replicas_ha.unwrap();
        assert_eq!((r.enabled, r.min_replicas), (Some(false), Some(3)));
        let s = resolve(
            &Flags {
                no_config: true,
                ..Flags::default()
            },
            &sub,
        )
        .unwrap();
        assert!(s.file.is_none() && !s.policies_chosen);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_unknown_rule_flag_names_the_closest() {
        let flags = Flags {
            enable: vec!["replicas-HA".into()],
            no_config: true,
            ..Flags::default()
        };
        let e = resolve(&flags, Path::new("/")).unwrap_err();
        assert!(e.message.contains("did you mean `replicas-ha`?"), "{e}");
    }
}
