//! Reading manifests: files, directories, stdin; multi-document YAML, JSON, `kind: List`,
//! and `helm template` output (whose `# Source:` comments are kept for the report).
//!
//! Every problem becomes an [`InputError`] naming the file, document and line where
//! possible; loading never stops at the first bad document, so everything that can be
//! audited is audited.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize as _, Serialize};
use serde_json::Value;

use super::render::{self, RenderOptions, Renderer};
use crate::api::ProductionPolicy;
use crate::engine::object::{
    DecodeError, Manifest, Object, decode, decode_locating, list_items, read_at,
};
use crate::engine::{Context, Workload};

/// Files larger than this are refused rather than read into memory.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Where an object came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The file (`-` for stdin).
    pub file: String,
    /// The 0-based index of the YAML document in the file.
    pub document: usize,
    /// The 1-based line where the document starts.
    pub line: usize,
    /// The index within a `kind: List` document, if the object is a list item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// The chart template path from a `# Source:` comment (`helm template` output).
    #[serde(rename = "helmSource", skip_serializing_if = "Option::is_none")]
    pub helm_source: Option<String>,
    /// What rendered `file` (a chart or kustomization directory), when it was rendered.
    #[serde(rename = "renderedBy", skip_serializing_if = "Option::is_none")]
    pub rendered_by: Option<Renderer>,
}

impl Source {
    /// The file a person edits for this object: the chart template a `# Source:` comment
    /// names inside a rendered chart directory, else the file itself (`-` for stdin).
    pub fn origin(&self) -> String {
        match (&self.helm_source, self.rendered_by, self.file.as_str()) {
            // `# Source: chart/templates/x.yaml` is relative to the chart's parent: the first
            // component is the chart's name.
            (Some(h), Some(Renderer::Helm), dir) => match h.split_once('/') {
                Some((_, rest)) => format!("{}/{rest}", dir.trim_end_matches('/')),
                None => dir.to_owned(),
            },
            (Some(h), _, "-") => h.clone(),
            (_, _, file) => file.to_owned(),
        }
    }
}

/// A document that is not a Kubernetes object, or a path not read: counted and named in
/// every report, never an error and never silent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The file or directory.
    pub file: String,
    /// The 0-based document index, for a document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// The 1-based line, for a document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Why it was not audited.
    pub reason: String,
}

/// What the inputs held besides workloads: for the report's account of what was read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inputs {
    /// Files read (rendered directories count once).
    pub files: usize,
    /// Chart and kustomization directories rendered, with their renderer.
    pub rendered: Vec<Rendered>,
    /// Documents that are not Kubernetes objects (Helm values, CI configs…), and kustomize
    /// components.
    pub skipped: Vec<Skipped>,
    /// Paths left out by an exclude pattern.
    pub excluded: Vec<String>,
    /// Objects of kinds prodready does not judge (ConfigMaps, Ingresses…), by
    /// `apiVersion/kind`, with their number.
    pub not_judged: std::collections::BTreeMap<String, usize>,
}

/// A rendered directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// The directory.
    pub dir: String,
    /// What rendered it.
    pub by: Renderer,
}

/// An input that could not be read or understood.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputError {
    /// The file (`-` for stdin), or the path given on the command line.
    pub file: String,
    /// The 0-based document index, when the error is in one document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// The 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Everything read from the inputs.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Workloads to audit, with where they came from.
    pub workloads: Vec<(Workload, Source)>,
    /// ProductionPolicy documents found (applied only when read through `--policy`).
    pub policies: Vec<(ProductionPolicy, Source)>,
    /// The cross-object context built from the other objects.
    pub context: Context,
    /// Problems, in input order.
    pub errors: Vec<InputError>,
    /// What was read besides workloads, skipped, excluded or rendered.
    pub inputs: Inputs,
}

/// How inputs are found and rendered.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Paths left out.
    pub excludes: Excludes,
    /// How charts and kustomizations are rendered.
    pub render: RenderOptions,
}

/// Exclude patterns (globs), each set relative to its own base directory: the config file's
/// patterns to the file's directory, `--exclude`'s to the working directory.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    /// Patterns with a `/`, anchored at their base directory.
    anchored: Vec<(PathBuf, globset::GlobSet)>,
    /// Patterns without a `/`: a file or directory name, at any depth, wherever it is.
    names: Vec<globset::GlobSet>,
}

impl Excludes {
    /// Adds patterns relative to `base`. A pattern without `/` matches at any depth (as in
    /// `.gitignore`); a pattern matching a directory excludes everything below it.
    pub fn add(&mut self, base: &Path, patterns: &[String]) -> Result<(), String> {
        let mut anchored = globset::GlobSetBuilder::new();
        let mut names = globset::GlobSetBuilder::new();
        let (mut any_anchored, mut any_name) = (false, false);
        for p in patterns {
            let trimmed = p.trim_start_matches("./").trim_end_matches('/');
            let glob = globset::GlobBuilder::new(trimmed.trim_start_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|e| format!("exclude pattern `{p}` is not a valid glob: {e}"))?;
            if trimmed.contains('/') {
                anchored.add(glob);
                any_anchored = true;
            } else {
                names.add(glob);
                any_name = true;
            }
        }
        let build = |set: globset::GlobSetBuilder| {
            set.build()
                .map_err(|e| format!("exclude patterns cannot be compiled: {e}"))
        };
        if any_anchored {
            self.anchored.push((absolute(base), build(anchored)?));
        }
        if any_name {
            self.names.push(build(names)?);
        }
        Ok(())
    }

    /// Whether `path` (or a directory above it) is excluded.
    pub fn matches(&self, path: &Path) -> bool {
        if self.anchored.is_empty() && self.names.is_empty() {
            return false;
        }
        // Names are matched on the path as given and walked (not on the directories above
        // it), as `.gitignore` matches names below its own directory.
        let by_name = || {
            path.components().any(|c| {
                matches!(c, std::path::Component::Normal(_))
                    && self
                        .names
                        .iter()
                        .any(|set| set.is_match(Path::new(c.as_os_str())))
            })
        };
        let anchored = || {
            let abs = absolute(path);
            self.anchored.iter().any(|(base, set)| {
                abs.strip_prefix(base).is_ok_and(|rel| {
                    rel.ancestors()
                        .filter(|a| !a.as_os_str().is_empty())
                        .any(|a| set.is_match(a))
                })
            })
        };
        by_name() || anchored()
    }
}

impl Loaded {
    /// Reads every path (`-` = stdin) in order, on this thread.
    pub fn from_paths(paths: &[PathBuf]) -> Self {
        Self::from_paths_jobs(paths, 1)
    }

    /// Reads every path (`-` = stdin), reading and parsing up to `jobs` files at once. The
    /// result is the same, in the same order, for every `jobs`: files are parsed apart and
    /// merged in input order, and the cross-object context is built from the merged objects.
    pub fn from_paths_jobs(paths: &[PathBuf], jobs: usize) -> Self {
        Self::from_paths_with(paths, jobs, &LoadOptions::default())
    }

    /// [`Loaded::from_paths_jobs`] with excludes and render settings: a directory holding
    /// `Chart.yaml` or `kustomization.yaml` is rendered rather than walked.
    pub fn from_paths_with(paths: &[PathBuf], jobs: usize, options: &LoadOptions) -> Self {
        let mut inputs = Vec::new();
        let mut excluded = Vec::new();
        for path in paths {
            expand(path, options, &mut inputs, &mut excluded);
        }
        let parts = super::map_in_order(inputs, jobs, |input| input.read(&options.render));
        // One allocation for every workload: growing the vector part by part moved each
        // (large) workload several times, on the one thread that merges.
        let mut loaded = Loaded {
            workloads: Vec::with_capacity(parts.iter().map(|p| p.workloads.len()).sum()),
            ..Loaded::default()
        };
        loaded.inputs.excluded = excluded;
        for part in parts {
            loaded.merge(part);
        }
        loaded
    }

    /// Reads the text of one file (`json` = parse as JSON rather than YAML).
    pub fn add_text(&mut self, file: &str, text: &str, json: bool) {
        let mut part = Part::default();
        part.add_text(file, text, json);
        self.merge(part);
    }

    fn merge(&mut self, part: Part) {
        self.inputs.files += part.files;
        self.inputs.rendered.extend(part.rendered);
        self.inputs.skipped.extend(part.skipped);
        for (kind, n) in part.not_judged {
            *self.inputs.not_judged.entry(kind).or_default() += n;
        }
        self.workloads.extend(part.workloads);
        self.policies.extend(part.policies);
        for obj in part.others {
            self.context.add_object(obj);
        }
        self.errors.extend(part.errors);
    }
}

/// `path` made absolute against the working directory, with `.` and `..` resolved by their
/// names (as the paths a person writes mean them; symbolic links are not followed).
fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// One input, in report order: a file to read, text already read (stdin), or a problem
/// found while listing the inputs.
enum Input {
    File(PathBuf),
    Text { file: String, text: String },
    Render(PathBuf, Renderer),
    Skip(Skipped),
    Error(InputError),
}

impl Input {
    fn read(self, options: &RenderOptions) -> Part {
        let mut part = Part::default();
        match self {
            Input::File(path) => part.add_file(&path),
            Input::Text { file, text } => part.add_text(&file, &text, false),
            Input::Render(dir, how) => {
                let display = dir.display().to_string();
                match render::render(&dir, how, options) {
                    Ok(text) => {
                        part.rendered_by = Some(how);
                        part.add_text(&display, &text, false);
                        part.rendered.push(Rendered {
                            dir: display,
                            by: how,
                        });
                    }
                    Err(message) => part.error(&display, None, None, message),
                }
            }
            Input::Skip(s) => part.skipped.push(s),
            Input::Error(e) => part.errors.push(e),
        }
        part
    }
}

fn input_error(file: &str, message: String) -> Input {
    Input::Error(InputError {
        file: file.to_owned(),
        document: None,
        line: None,
        message,
    })
}

/// Lists what one path stands for: stdin is read here (once, in order); a chart or
/// kustomization directory is rendered; another directory is walked recursively (sorted,
/// honouring `.gitignore`, hidden entries left out), its charts and kustomizations rendered
/// rather than walked; anything else is a file. Excluded paths are listed in `excluded`.
fn expand(path: &Path, options: &LoadOptions, inputs: &mut Vec<Input>, excluded: &mut Vec<String>) {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        inputs.push(match std::io::stdin().read_to_string(&mut text) {
            Ok(_) => Input::Text {
                file: "-".to_owned(),
                text,
            },
            Err(e) => input_error("-", format!("cannot read stdin: {e}")),
        });
        return;
    }
    let display = path.display().to_string();
    if options.excludes.matches(path) {
        excluded.push(display);
        return;
    }
    match fs::metadata(path) {
        Err(e) => inputs.push(input_error(&display, format!("cannot read: {e}"))),
        Ok(meta) if meta.is_dir() => {
            if let Some(input) = directory_input(path) {
                inputs.push(input);
                return;
            }
            let before = inputs.len();
            if let Err(e) = walk(path, &options.excludes, inputs, excluded) {
                inputs.push(input_error(&display, format!("cannot read directory: {e}")));
            }
            if inputs.len() == before {
                inputs.push(input_error(
                    &display,
                    "directory holds no manifests (*.yaml, *.yml, *.json), Helm chart or \
                     kustomization"
                        .into(),
                ));
            }
        }
        Ok(_) => inputs.push(Input::File(path.to_path_buf())),
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The input a chart or kustomization directory stands for (`None` for another directory).
fn directory_input(dir: &Path) -> Option<Input> {
    let how = render::renderer_of(dir)?;
    Some(if how == Renderer::Kustomize && render::is_component(dir) {
        Input::Skip(Skipped {
            file: dir.display().to_string(),
            document: None,
            line: None,
            reason: "a kustomize Component: audited inside the kustomizations that use it".into(),
        })
    } else {
        Input::Render(dir.to_path_buf(), how)
    })
}

/// Walks a directory: manifest files, and chart and kustomization directories (not walked
/// into), sorted by path.
fn walk(
    dir: &Path,
    excludes: &Excludes,
    inputs: &mut Vec<Input>,
    excluded: &mut Vec<String>,
) -> Result<(), ignore::Error> {
    // Excluded paths and the directories rendered instead of walked are pruned by the
    // walker's filter, which records them.
    type Shared<T> = std::sync::Arc<std::sync::Mutex<Vec<T>>>;
    let pruned: Shared<(PathBuf, Input)> = Shared::default();
    let left_out: Shared<String> = Shared::default();
    let mut walker = ignore::WalkBuilder::new(dir);
    // Hidden entries (.git, .terraform…) never hold manifests to audit; `.gitignore`d paths
    // (build output, vendored trees) are not the repository's manifests either.
    walker
        .hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .ignore(false)
        .parents(true)
        .follow_links(false);
    {
        let excludes = excludes.clone();
        let pruned = pruned.clone();
        let left_out = left_out.clone();
        walker.filter_entry(move |entry| {
            if entry.depth() == 0 {
                return true;
            }
            let path = entry.path();
            if excludes.matches(path) {
                lock(&left_out).push(path.display().to_string());
                return false;
            }
            if entry.file_type().is_some_and(|t| t.is_dir())
                && let Some(input) = directory_input(path)
            {
                lock(&pruned).push((path.to_path_buf(), input));
                return false;
            }
            true
        });
    }
    let mut found: Vec<(PathBuf, Option<Input>)> = Vec::new();
    for entry in walker.build() {
        let entry = entry?;
        let path = entry.path();
        if entry.depth() > 0
            && entry.file_type().is_some_and(|t| t.is_file())
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"))
        {
            found.push((entry.into_path(), None));
        }
    }
    found.extend(
        std::mem::take(&mut *lock(&pruned))
            .into_iter()
            .map(|(p, i)| (p, Some(i))),
    );
    let mut left_out = std::mem::take(&mut *lock(&left_out));
    left_out.sort();
    excluded.extend(left_out);
    found.sort_by(|a, b| a.0.cmp(&b.0));
    inputs.extend(
        found
            .into_iter()
            .map(|(path, input)| input.unwrap_or(Input::File(path))),
    );
    Ok(())
}

/// The text of one document, kept to explain an object that cannot be decoded.
#[derive(Clone, Copy)]
struct Text<'a> {
    body: &'a str,
    json: bool,
}

impl Text<'_> {
    /// The error of decoding the document (or its `item`) again, naming the field's path;
    /// `None` when it cannot be read again.
    fn locate(self, item: Option<usize>) -> Option<String> {
        let mut value: Value = if self.json {
            serde_json::from_str(self.body).ok()?
        } else {
            serde_norway::from_str(self.body).ok()?
        };
        if let Some(i) = item {
            value = list_items(&mut value)?.into_iter().nth(i)?;
        }
        decode_locating(value).err().map(|e| e.to_string())
    }
}

/// What one input holds, before the objects that form the context are merged into it.
#[derive(Default)]
struct Part {
    files: usize,
    workloads: Vec<(Workload, Source)>,
    policies: Vec<(ProductionPolicy, Source)>,
    /// Services, PDBs, Leases…: the context, in input order.
    others: Vec<Object>,
    errors: Vec<InputError>,
    skipped: Vec<Skipped>,
    rendered: Vec<Rendered>,
    /// What rendered the text being read, if anything.
    rendered_by: Option<Renderer>,
    not_judged: std::collections::BTreeMap<String, usize>,
}

impl Part {
    fn add_file(&mut self, path: &Path) {
        let display = path.display().to_string();
        match fs::metadata(path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                return self.error(
                    &display,
                    None,
                    None,
                    format!(
                        "file is {} MiB, over the {} MiB limit; split it",
                        m.len() / (1024 * 1024),
                        MAX_FILE_BYTES / (1024 * 1024)
                    ),
                );
            }
            _ => {}
        }
        match fs::read(path) {
            Err(e) => self.error(&display, None, None, format!("cannot read: {e}")),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(e) => self.error(
                    &display,
                    None,
                    None,
                    format!(
                        "not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                ),
                Ok(text) => {
                    let json = path
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
                    self.add_text(&display, &text, json);
                }
            },
        }
    }

    /// Reads the text of one file (`json` = parse as JSON rather than YAML).
    fn add_text(&mut self, file: &str, text: &str, json: bool) {
        self.files += 1;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if json {
            match serde_json::from_str::<Value>(text) {
                Ok(v) => self.add_value(file, 0, 1, None, Text { body: text, json }, v),
                // An empty JSON file holds no document, as an empty YAML file holds none.
                Err(_) if text.trim().is_empty() => {}
                Err(e) => self.error(file, Some(0), Some(e.line()), format!("invalid JSON: {e}")),
            }
            return;
        }
        for doc in split_documents(text) {
            if doc.is_blank {
                continue;
            }
            // The fast reader takes the usual manifest subset; everything else (and every
            // error message) comes from the full YAML parser.
            let text = Text {
                body: doc.body,
                json: false,
            };
            if let Some(v) = super::yaml::parse(doc.body) {
                self.add_value(file, doc.index, doc.first_line, doc.helm_source, text, v);
                continue;
            }
            match serde_norway::from_str::<Value>(doc.body) {
                Ok(Value::Null) => {}
                Ok(v) => self.add_value(file, doc.index, doc.first_line, doc.helm_source, text, v),
                Err(e) => {
                    let line = e.location().map(|l| doc.start_line + l.line() - 1);
                    let message = first_line(&e.to_string());
                    self.error(
                        file,
                        Some(doc.index),
                        line,
                        format!("invalid YAML: {message}"),
                    );
                }
            }
        }
    }

    fn add_value<'de, M: Manifest<'de>>(
        &mut self,
        file: &str,
        document: usize,
        line: usize,
        helm_source: Option<&str>,
        text: Text<'_>,
        mut value: M,
    ) {
        let rendered_by = self.rendered_by;
        let source = |item| Source {
            file: file.to_owned(),
            document,
            line,
            item,
            helm_source: helm_source.map(str::to_owned),
            rendered_by,
        };
        if let Some(items) = list_items(&mut value) {
            for (i, item) in items.into_iter().enumerate() {
                self.add_object(source(Some(i)), item, text);
            }
        } else {
            self.add_object(source(None), value, text);
        }
    }

    fn add_object<'de, M: Manifest<'de>>(&mut self, source: Source, value: M, text: Text<'_>) {
        if value.top_str("kind") == Some("ProductionPolicy")
            && value.top_str("apiVersion") == read_at("ProductionPolicy")
        {
            // Checked field by field against the CRD's schema, as the API server checks it.
            return self.add_policy(source, value);
        }
        match decode(value) {
            Ok(Object::Workload(w)) => self.workloads.push((*w, source)),
            Ok(Object::Policy(p)) => self.policies.push((*p, source)),
            // Judged at their owner, as the controller and the webhook do.
            Ok(Object::Controlled { .. }) => {}
            Ok(Object::Other { api_version, kind }) => {
                *self
                    .not_judged
                    .entry(format!("{api_version}/{kind}"))
                    .or_default() += 1;
            }
            Ok(obj) => self.others.push(obj),
            // YAML that is no Kubernetes object at all (Helm values, CI and compose files,
            // application config): counted and named, not an error.
            Err(DecodeError::NotAnObject | DecodeError::MissingKind) => {
                self.skip(source, "not a Kubernetes object (no apiVersion and kind)");
            }
            Err(DecodeError::MissingApiVersion { kind }) if read_at(&kind).is_none() => {
                self.skip(
                    source,
                    &format!("not a Kubernetes object (kind {kind} without apiVersion)"),
                );
            }
            Err(e @ DecodeError::Invalid { .. }) => {
                let message = text.locate(source.item).unwrap_or_else(|| e.to_string());
                self.object_error(source, message);
            }
            Err(e) => self.object_error(source, e.to_string()),
        }
    }

    /// A ProductionPolicy document: unknown fields are errors (naming the closest declared
    /// field), as `kubectl apply` reports them; a valid one is decoded as any object.
    fn add_policy<'de, M: Manifest<'de>>(&mut self, source: Source, value: M) {
        let value = match Value::deserialize(value) {
            Ok(v) => v,
            Err(e) => return self.object_error(source, format!("invalid ProductionPolicy: {e}")),
        };
        let unknown = super::strict::unknown_fields(&value, crate::crd::policy_schema());
        if !unknown.is_empty() {
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("(unnamed)");
            let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
            return self.object_error(
                source,
                format!(
                    "ProductionPolicy {name}: {} (the API server refuses unknown fields; fix or \
                     remove {})",
                    list.join("; "),
                    if list.len() == 1 { "it" } else { "them" }
                ),
            );
        }
        match decode_locating(value) {
            Ok(Object::Policy(p)) => {
                // Applied only when read through --policy or the config file: among the
                // audited manifests it is checked and counted, not applied.
                *self
                    .not_judged
                    .entry("prodready.dev/v1alpha1/ProductionPolicy".to_owned())
                    .or_default() += 1;
                self.policies.push((*p, source));
            }
            Ok(_) => {}
            Err(e) => self.object_error(source, e.to_string()),
        }
    }

    fn object_error(&mut self, source: Source, message: String) {
        let at = source
            .item
            .map(|i| format!("items[{i}]: "))
            .unwrap_or_default();
        self.errors.push(InputError {
            file: source.file,
            document: Some(source.document),
            line: Some(source.line),
            message: format!("{at}{message}"),
        });
    }

    fn skip(&mut self, source: Source, reason: &str) {
        self.skipped.push(Skipped {
            file: source.file,
            document: Some(source.document),
            line: Some(source.line),
            reason: reason.to_owned(),
        });
    }

    fn error(&mut self, file: &str, document: Option<usize>, line: Option<usize>, message: String) {
        self.errors.push(InputError {
            file: file.to_owned(),
            document,
            line,
            message,
        });
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_owned()
}

/// One YAML document of a stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Document<'a> {
    /// 0-based index in the stream.
    pub index: usize,
    /// 1-based line of the document's first line (after the `---` marker).
    pub start_line: usize,
    /// 1-based line of the first line with content (not a comment or blank).
    pub first_line: usize,
    /// The document text.
    pub body: &'a str,
    /// `# Source: path` from helm template output, if present.
    pub helm_source: Option<&'a str>,
    /// Whether the document holds nothing but comments and blank lines.
    pub is_blank: bool,
}

/// Splits a YAML stream at `---` document markers, keeping line numbers. Splitting before
/// parsing lets one broken document be reported while the others are still audited.
pub(crate) fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0usize; // byte offset of the current document body
    let mut start_line = 1usize;
    let mut offset = 0usize;
    let mut index = 0usize;
    let mut bodies: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, start_line)
    for (line_no, line) in (1usize..).zip(text.split_inclusive('\n')) {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_marker = trimmed == "---"
            || trimmed.starts_with("--- ")
            || trimmed.starts_with("---\t")
            || trimmed == "..."
            || trimmed.starts_with("... ");
        if is_marker {
            bodies.push((start, offset, start_line));
            // A marker may carry content (`--- {a: 1}`); keep it as the document's first line.
            let rest = trimmed
                .strip_prefix("---")
                .or_else(|| trimmed.strip_prefix("..."))
                .unwrap_or("");
            if trimmed.starts_with("---")
                && !rest.trim().is_empty()
                && !rest.trim_start().starts_with('#')
            {
                start = offset + 3;
                start_line = line_no;
            } else {
                start = offset + line.len();
                start_line = line_no + 1;
            }
        }
        offset += line.len();
    }
    bodies.push((start, text.len(), start_line));
    for (s, e, sl) in bodies {
        let body = &text[s..e.max(s)];
        let mut helm_source = None;
        let mut first_line = sl;
        let mut is_blank = true;
        for (i, l) in body.lines().enumerate() {
            let t = l.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(c) = t.strip_prefix('#') {
                if let Some(src) = c.trim().strip_prefix("Source:") {
                    helm_source = Some(src.trim());
                }
                continue;
            }
            if t.starts_with('%') {
                continue; // %YAML / %TAG directives
            }
            is_blank = false;
            first_line = sl + i;
            break;
        }
        // An empty first "document" before a leading `---` is not counted.
        if s == 0 && docs.is_empty() && body.trim().is_empty() {
            continue;
        }
        docs.push(Document {
            index,
            start_line: sl,
            first_line,
            body,
            helm_source,
            is_blank,
        });
        index += 1;
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_corpus_loads_without_errors() {
        let text = crate::corpus::to_yaml(crate::corpus::Spec {
            workloads: 50,
            namespaces: 5,
            seed: 7,
        });
        let mut loaded = crate::audit::Loaded::default();
        loaded.add_text("corpus.yaml", &text, false);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.workloads.len(), 50);
    }

    #[test]
    fn splits_and_numbers_documents() {
        let text = "a: 1\n---\n# Source: chart/templates/d.yaml\nkind: X\n---\n\n---\nb: 2\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[0].first_line, 1);
        assert_eq!(docs[1].helm_source, Some("chart/templates/d.yaml"));
        assert_eq!(docs[1].first_line, 4);
        assert!(docs[2].is_blank);
        assert_eq!(docs[3].index, 3);
        assert_eq!(docs[3].first_line, 8);
    }

    #[test]
    fn leading_marker_is_not_a_document() {
        let docs = split_documents("---\nkind: A\n---\nkind: B\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, 0);
        assert_eq!(docs[0].first_line, 2);
        assert_eq!(docs[1].first_line, 4);
    }

    #[test]
    fn marker_with_inline_content() {
        let docs = split_documents("--- {kind: A}\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].body.trim(), "{kind: A}");
    }

    #[test]
    fn yaml_errors_carry_absolute_lines() {
        let mut l = Loaded::default();
        l.add_text(
            "f.yaml",
            "kind: A\napiVersion: v1\n---\nkind: B\n  bad: [\n",
            false,
        );
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert_eq!(l.errors[0].document, Some(1));
        assert!(
            l.errors[0].line.is_some_and(|n| n >= 4),
            "{:?}",
            l.errors[0]
        );
    }
}
