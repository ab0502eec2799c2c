//! A fast reader for the YAML that Kubernetes manifests are actually written in.
//!
//! Manifests — hand-written, `helm template`, `kubectl get -o yaml`, kustomize — are block
//! mappings and sequences of plain or quoted one-line scalars, with short flow collections
//! (`{cpu: 100m, memory: 128Mi}`, `["--port", "8080"]`) here and there. This reader handles
//! exactly that subset, line by line, into a [`Node`] tree that borrows its strings from the
//! input and deserializes straight into typed objects — several times faster than a general
//! YAML parser building a `serde_json::Value`.
//!
//! It is only a fast path: [`parse`] returns `None` the moment it meets anything outside the
//! subset — block scalars (`|`, `>`), anchors, aliases, tags, multi-line flow collections or
//! quoted strings, continuation lines, tabs, complex or non-string keys, duplicate keys, a
//! malformed line — and the caller then parses the document with the full YAML parser, which
//! also produces the error message when the document is wrong. Where it returns `Some`, the
//! value is the one the full parser produces (a differential test and a property test check
//! this against `serde_norway`, including its YAML 1.2 scalar resolution: `true`/`false`,
//! `null`/`~`, integers, leading-zero strings, floats).

use std::borrow::Cow;

use serde_json::Value;

use super::node::Node;

/// Reads one YAML document (no `---` markers), or `None` when it needs the full parser.
pub(crate) fn parse(body: &str) -> Option<Node<'_>> {
    let mut lines = Vec::with_capacity(body.len() / 24 + 1);
    for raw in body.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        // Tabs, stray carriage returns and other control characters: full parser.
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return None;
        }
        let text = raw.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let text = text.trim_end_matches(' ');
        lines.push(Line {
            indent: raw.len() - raw.trim_start_matches(' ').len(),
            text,
        });
    }
    let first = lines.first()?.indent;
    let mut parser = Parser { lines, pos: 0 };
    let value = parser.block(first)?;
    (parser.pos == parser.lines.len()).then_some(value)
}

/// One line with content: its indentation and its text (without indentation or trailing
/// spaces).
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// A block mapping or sequence whose lines start at column `indent`.
    fn block(&mut self, indent: usize) -> Option<Node<'a>> {
        let line = self.lines.get(self.pos)?;
        if line.indent != indent {
            return None;
        }
        if is_entry(line.text) {
            self.sequence(indent)
        } else {
            self.mapping(indent)
        }
    }

    fn mapping(&mut self, indent: usize) -> Option<Node<'a>> {
        let mut map = Vec::new();
        while let Some(&line) = self.lines.get(self.pos) {
            if line.indent < indent || (line.indent == indent && is_entry(line.text)) {
                break; // the owner decides whether this is valid
            }
            if line.indent > indent {
                return None;
            }
            let (key, rest) = split_key(line.text)?;
            self.pos += 1;
            let value = self.value(rest, indent)?;
            insert(&mut map, key, value)?;
        }
        Some(Node::Map(map))
    }

    fn sequence(&mut self, indent: usize) -> Option<Node<'a>> {
        let mut items = Vec::new();
        while let Some(&line) = self.lines.get(self.pos) {
            if line.indent < indent || (line.indent == indent && !is_entry(line.text)) {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let item = line.text[1..].trim_start_matches(' ');
            if item.is_empty() || item.starts_with('#') || is_entry(item) {
                return None; // item on the next lines, or a nested compact sequence
            }
            if split_key(item).is_some() {
                // A compact mapping (`- name: app`): its keys line up with this first one.
                let column = indent + (line.text.len() - item.len());
                self.lines[self.pos] = Line {
                    indent: column,
                    text: item,
                };
                items.push(self.mapping(column)?);
            } else {
                self.pos += 1;
                items.push(self.scalar_line(item, indent)?);
            }
        }
        Some(Node::Seq(items))
    }

    /// The value after `key:` at column `owner`: inline, or the block on the next lines.
    fn value(&mut self, rest: &'a str, owner: usize) -> Option<Node<'a>> {
        let rest = rest.trim_start_matches(' ');
        if rest.is_empty() || rest.starts_with('#') {
            return match self.lines.get(self.pos) {
                Some(next) if next.indent > owner => self.block(next.indent),
                // `key:` followed by `- item` at the same column (the usual Kubernetes style).
                Some(next) if next.indent == owner && is_entry(next.text) => self.sequence(owner),
                _ => Some(Node::Null),
            };
        }
        self.scalar_line(rest, owner)
    }

    /// An inline value that must end its line (no continuation lines).
    fn scalar_line(&mut self, text: &'a str, owner: usize) -> Option<Node<'a>> {
        let value = inline(text)?;
        match self.lines.get(self.pos) {
            Some(next) if next.indent > owner => None,
            _ => Some(value),
        }
    }
}

/// Whether a line is a block sequence entry (`- x` or a lone `-`).
fn is_entry(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Splits `key: rest`; `None` when the line is not a simple `key:` line.
fn split_key(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let first = *text.as_bytes().first()?;
    if first == b'"' || first == b'\'' {
        let (key, after) = quoted(text)?;
        let rest = after.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        return Some((key, rest));
    }
    if b"?:,[]{}#&*!|>%@`-".contains(&first) {
        return None;
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|&b| b == b':' || b == b'#') {
        let at = i + off;
        if bytes[at] == b'#' {
            if bytes[at - 1] == b' ' {
                return None; // a comment before any `: `: not a key line
            }
        } else if at + 1 == bytes.len() || bytes[at + 1] == b' ' {
            let key = text[..at].trim_end_matches(' ');
            // Only keys that are plainly strings; `true:`, `80:`, `<<:` go to the full parser.
            if key == "<<" || !matches!(resolve_plain(key)?, Node::Str(_)) {
                return None;
            }
            return Some((Cow::Borrowed(key), &text[at + 1..]));
        }
        i = at + 1;
    }
    None
}

/// A scalar or one-line flow collection, with an optional trailing comment.
fn inline(text: &str) -> Option<Node<'_>> {
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    match first {
        b'"' | b'\'' => {
            let (s, after) = quoted(text)?;
            blank_or_comment(after).then_some(Node::Str(s))
        }
        b'[' | b'{' => {
            let mut flow = Flow { text, at: 0 };
            let value = flow.value()?;
            blank_or_comment(&text[flow.at..]).then_some(value)
        }
        b'-' | b'?' | b':' if bytes.len() == 1 || bytes[1] == b' ' => None,
        b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' | b',' | b']' | b'}' | b'#' => None,
        _ => {
            let plain = match text.find(" #") {
                Some(at) => text[..at].trim_end_matches(' '),
                None => text,
            };
            if plain.ends_with(':') || plain.contains(": ") {
                return None;
            }
            resolve_plain(plain)
        }
    }
}

fn blank_or_comment(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

/// A one-line flow collection: `{a: b, c: [1, 2]}`.
struct Flow<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Flow<'a> {
    fn skip_spaces(&mut self) {
        while self.text.as_bytes().get(self.at) == Some(&b' ') {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn value(&mut self) -> Option<Node<'a>> {
        self.skip_spaces();
        match self.peek()? {
            b'{' => self.mapping(),
            b'[' => self.sequence(),
            b'"' | b'\'' => {
                let (s, after) = quoted(&self.text[self.at..])?;
                self.at = self.text.len() - after.len();
                Some(Node::Str(s))
            }
            _ => {
                let plain = self.plain()?;
                resolve_plain(plain)
            }
        }
    }

    /// A plain scalar in flow context: ends at `,`, a bracket, `: ` or ` #`.
    fn plain(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let first = *bytes.get(start)?;
        if b"?:,[]{}#&*!|>%@`\"'".contains(&first)
            || (first == b'-' && matches!(bytes.get(start + 1), None | Some(b' ' | b',')))
        {
            return None;
        }
        let mut end = start;
        while let Some(&b) = bytes.get(end) {
            match b {
                b',' | b'[' | b']' | b'{' | b'}' => break,
                b':' if matches!(bytes.get(end + 1), None | Some(b' ')) => break,
                // `{a:}`, `[a:,b]`: the full parser refuses a `:` glued to a flow indicator.
                b':' if matches!(bytes.get(end + 1), Some(b',' | b']' | b'}')) => return None,
                b'#' if bytes[end - 1] == b' ' => return None,
                _ => end += 1,
            }
        }
        self.at = end;
        let plain = self.text[start..end].trim_end_matches(' ');
        (!plain.is_empty()).then_some(plain)
    }

    fn mapping(&mut self) -> Option<Node<'a>> {
        self.at += 1; // `{`
        let mut map = Vec::new();
        self.skip_spaces();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(Node::Map(map));
        }
        loop {
            self.skip_spaces();
            let key = match self.peek()? {
                b'"' | b'\'' => {
                    let (s, after) = quoted(&self.text[self.at..])?;
                    self.at = self.text.len() - after.len();
                    s
                }
                _ => {
                    let plain = self.plain()?;
                    if plain == "<<" || !matches!(resolve_plain(plain)?, Node::Str(_)) {
                        return None;
                    }
                    Cow::Borrowed(plain)
                }
            };
            self.skip_spaces();
            if self.peek()? != b':' {
                return None; // a key with no value (`{a, b}`)
            }
            self.at += 1;
            self.skip_spaces();
            let value = match self.peek()? {
                b',' | b'}' => Node::Null,
                _ => self.value()?,
            };
            insert(&mut map, key, value)?;
            self.skip_spaces();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(Node::Map(map));
                }
                _ => return None,
            }
            self.skip_spaces();
            if self.peek()? == b'}' {
                return None; // trailing comma: full parser
            }
        }
    }

    fn sequence(&mut self) -> Option<Node<'a>> {
        self.at += 1; // `[`
        let mut items = Vec::new();
        self.skip_spaces();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Node::Seq(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_spaces();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(Node::Seq(items));
                }
                _ => return None, // `[a: b]` pairs and anything else
            }
            self.skip_spaces();
            if self.peek()? == b']' {
                return None;
            }
        }
    }
}

/// A single- or double-quoted scalar at the start of `text`, and what follows it. `None`
/// when it does not close on this line or uses an escape this reader does not handle.
fn quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let quote = *text.as_bytes().first()?;
    let body = &text[1..];
    // Most quoted strings have no escapes: borrow them.
    let stop = if quote == b'\'' {
        body.find('\'')
    } else {
        body.find(['"', '\\'])
    }?;
    if body.as_bytes()[stop] == quote && !(quote == b'\'' && body[stop + 1..].starts_with('\'')) {
        return Some((Cow::Borrowed(&body[..stop]), &body[stop + 1..]));
    }
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if quote == b'\'' {
            if c == '\'' {
                if body[i + 1..].starts_with('\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                return Some((Cow::Owned(out), &body[i + 1..]));
            }
            out.push(c);
            continue;
        }
        match c {
            '"' => return Some((Cow::Owned(out), &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    ' ' => ' ',
                    'u' => {
                        let start = i + 2;
                        let hex = body.get(start..start + 4)?;
                        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return None;
                        }
                        let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                        for _ in 0..4 {
                            chars.next();
                        }
                        c
                    }
                    _ => return None,
                });
            }
            _ => out.push(c),
        }
    }
    None
}

/// YAML 1.2 core-schema resolution of a plain scalar, as `serde_norway` does it.
fn resolve_plain(s: &str) -> Option<Node<'_>> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Node::Null),
        "true" | "True" | "TRUE" => return Some(Node::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Node::Bool(false)),
        _ => {}
    }
    let bytes = s.as_bytes();
    let first = bytes[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Some(Node::Str(Cow::Borrowed(s)));
    }
    // Canonical decimal integers (no sign but `-`, no leading zero, fits in 18 digits).
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
    {
        let n: u64 = digits.parse().ok()?;
        return Some(if digits.len() == s.len() {
            Node::U64(n)
        } else {
            Node::I64(-i64::try_from(n).ok()?)
        });
    }
    // A digit followed by anything but a radix prefix, with a letter that no number has
    // (`100m`, `128Mi`, `3d`): a string.
    if first.is_ascii_digit()
        && !matches!(bytes.get(1), Some(b'x' | b'o' | b'b'))
        && bytes
            .iter()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        return Some(Node::Str(Cow::Borrowed(s)));
    }
    // Anything else that may be a number (`1.5`, `1e3`, `0x1f`, `+1`, `.inf`, `0777`) is
    // resolved by the full parser, so the result is its result.
    if s.starts_with("---") || s.starts_with("...") {
        return None;
    }
    Node::from_scalar(serde_norway::from_str::<Value>(s).ok()?)
}

/// Adds a key to a mapping; `None` (full parser) on a duplicate key or a huge mapping.
fn insert<'a>(
    map: &mut Vec<(Cow<'a, str>, Node<'a>)>,
    key: Cow<'a, str>,
    value: Node<'a>,
) -> Option<()> {
    if map.len() >= 512 || map.iter().any(|(k, _)| *k == key) {
        return None;
    }
    map.push((key, value));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::audit::load::split_documents;

    /// The full parser's reading of a document.
    fn full(doc: &str) -> Option<Value> {
        serde_norway::from_str::<Value>(doc).ok()
    }

    /// Where the fast path answers, it must answer exactly what the full parser does.
    fn assert_agrees(doc: &str) -> bool {
        match parse(doc).map(|n| n.to_value()) {
            Some(fast) => {
                assert_eq!(
                    Some(&fast),
                    full(doc).as_ref(),
                    "fast path differs on:\n{doc}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn reads_the_usual_manifest_shapes() {
        let doc = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # trailing comment
  labels: {app: web, "quoted key": 'it''s'}
  annotations:
    prodready.dev/exempt: "readiness-probe"
    empty:
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: app
        image: "registry/app@sha256:abc"
        args: ["--port", "8080", --verbose, 7]
        ports:
          - {name: http, containerPort: 8080}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {}
        env:
        - name: A
          value: "x: y # not a comment"
        - name: B
          value: http://x#frag
      - name: sidecar
        securityContext:
          runAsNonRoot: true
          runAsUser: 0
          readOnlyRootFilesystem: false
      volumes: []
"#;
        assert!(
            assert_agrees(doc),
            "the fast path must handle this document"
        );
        let v = parse(doc).map(|n| n.to_value()).unwrap_or_default();
        assert_eq!(v["spec"]["replicas"], 3);
        assert_eq!(v["metadata"]["labels"]["quoted key"], "it's");
        assert_eq!(v["spec"]["template"]["spec"]["containers"][0]["args"][3], 7);
    }

    #[test]
    fn agrees_or_defers_on_tricky_documents() {
        let cases = [
            "a: 1\nb: -1\nc: 0\nd: 007\ne: 1.5\nf: 1e3\ng: 0x1f\nh: +3\ni: .inf\nj: -.5\n",
            "a: yes\nb: no\nc: on\nd: off\ne: y\nf: ~\ng: Null\nh: TRUE\ni: False\n",
            "a: 12345678901234567890123\nb: -9223372036854775809\nc: 18446744073709551615\n",
            "a: 10m\nb: 3d\nc: 1.2.3\nd: 12:30\ne: 1_000\nf: 0b101\ng: 0o17\nh: 1E5\n",
            "a: |\n  text\n",
            "- b}&a]: {~é:}\n",
            "a: {b:, c: 1}\n",
            "a: [b:]\n",
            "a: >-\n  folded\n  text\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: b\na: c\n",
            "a:\n  b\n",
            "a: b\n  c\n",
            "a: [1,\n  2]\n",
            "a: {b: 1,}\n",
            "a: [1, 2,]\n",
            "a: {b}\n",
            "a: [b: 1]\n",
            "a: \"multi\n  line\"\n",
            "a: 'it''s'\nb: \"\\u00e9\\t\\\"q\\\"\\\\\"\nc: \"\\x41\"\nd: \"\\e\"\n",
            "a:\tb\n",
            "- a\n- b\n",
            "- - a\n",
            "-\n  a: 1\n",
            "a:\n- 1\n-\n",
            "a:\n  - x\n  b: 1\n",
            "a:\n- x\nb: 1\n",
            "- a: 1\n  - b\n",
            "a: b: c\n",
            "a: b:\n",
            "? a\n: b\n",
            "1: a\n",
            "true: a\n",
            "null: a\n",
            "<<: {a: 1}\n",
            "a: -\n",
            "a: - b\n",
            "a: \"x\"y\n",
            "a: \"x\"#y\n",
            "a: \"x\" #y\n",
            "a: 'x' # c\n",
            "a: #c\n  b: 1\n",
            "a: b #c\nd: e#f\n",
            "  a: 1\n  b: 2\n",
            "  a: 1\nb: 2\n",
            "a: 1\r\nb: 2\r\n",
            "a: {\"b\":1, 'c': [x, {d: e}]}\n",
            "a: {b: , c: }\n",
            "a: [-1, -x, - y]\n",
            "a: ---x\n",
            "a: ...x\n",
            "a: %x\n",
            "a: @x\n",
            "a: `x\n",
            "a: [a#b, c #d]\n",
            "a: {b: c: d}\n",
            "a: {b:c}\n",
            "a: [b:c, d]\n",
            "a: é\nü: ß\n",
            "a: \"\\ud800\"\n",
            "\"a\": 1\n'b': 2\n\"c\":3\n",
            "a: b\n---\nc: d\n",
            "key with spaces : value\n",
            "a: 1 # one\n# comment\n   # indented comment\nb: 2\n",
            "a:\n\n  b: 1\n\n  c: 2\n",
            "a: [[1, 2], [3, [4]]]\nb: {c: {d: {e: f}}}\n",
            "a: [\"x, y\", 'z]']\n",
            "a: {b: [1, 2], c: {}}\n",
            "a: -.inf\nb: .NaN\nc: +.inf\n",
            "a: 0\nb: -0\nc: 00\nd: +0\ne: 0.0\n",
        ];
        for doc in cases {
            assert_agrees(doc);
        }
    }

    #[test]
    fn agrees_on_the_bundled_manifests_and_the_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        for dir in ["examples", "config/samples", "config/webhook", "crds"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    texts.push(text);
                }
            }
        }
        texts.push(crate::corpus::to_yaml(crate::corpus::Spec {
            workloads: 300,
            namespaces: 20,
            seed: 7,
        }));
        let (mut fast, mut all) = (0, 0);
        for text in &texts {
            for doc in split_documents(text) {
                if doc.is_blank {
                    continue;
                }
                all += 1;
                if assert_agrees(doc.body) {
                    fast += 1;
                }
            }
        }
        assert!(all > 600, "{all} documents");
        // Every generated and bundled document is in the subset, except block scalars
        // (the CRD's descriptions are written with `|`).
        assert!(
            fast * 100 >= all * 95,
            "fast path took {fast} of {all} documents"
        );
    }

    /// Scalars that stress resolution and quoting.
    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<u64>().prop_map(|n| Value::Number(n.into())),
            (-1e9f64..1e9)
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-zA-Z0-9 :#'\"{}\\[\\],.&*!|>%@`~+-]{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "true", "False", "null", "~", "yes", "0777", "1e3", "0x1F", ".inf", "100m",
                "128Mi", "- x", "a: b", "#", "x #y", "'", "\"", "", " ", "é", "12:30", "+1",
            ])
            .prop_map(|s| Value::String(s.to_owned())),
        ]
    }

    fn tree() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z0-9./_ :-]{1,10}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Lines of YAML-ish tokens: the fast path must never accept what the full parser
    /// rejects or reads differently.
    fn yamlish() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "a", "b", "key", ":", ": ", "- ", "-", " ", "  ", "#", " #c", "{", "}", "[", "]", ", ",
            "'", "\"", "''", "\\", "1", "0", "07", "1.5", "true", "null", "~", "&a", "*a", "!t",
            "|", ">", "?", "100m", "é", "\n", "\n  ", "\n    ", "\n- ", "\n  - ",
        ]);
        prop::collection::vec(token, 1..40).prop_map(|t| t.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn agrees_with_the_full_parser_on_serialized_trees(value in tree()) {
            let map = match value {
                Value::Object(_) => value,
                other => serde_json::json!({ "root": other }),
            };
            if let Ok(text) = serde_norway::to_string(&map) {
                assert_agrees(&text);
            }
            if let Ok(text) = serde_saphyr::to_string(&map) {
                assert_agrees(&text);
            }
        }

        #[test]
        fn agrees_with_the_full_parser_on_yamlish_text(text in yamlish()) {
            assert_agrees(&text);
        }
    }
}
