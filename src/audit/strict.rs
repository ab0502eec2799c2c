//! Strict field validation, as the API server does it: every key of a document must be a
//! field its schema declares. `kubectl apply` of a ProductionPolicy with `excludeNamespace`
//! (for `excludeNamespaces`) is refused by the API server; `audit` must refuse it too, or CI
//! and the cluster would disagree without a word. The same check reads the config file.
//!
//! The schema is a JSON Schema / OpenAPI v3 value: `properties`, `additionalProperties`,
//! `items`, `allOf`/`anyOf`/`oneOf`, `$ref` into `$defs`/`definitions`, and
//! `x-kubernetes-preserve-unknown-fields`. An object schema that declares no properties
//! accepts any key (as the API server does for such schemas).

use std::fmt;

use serde_json::{Map, Value};

/// A key the schema does not declare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownField {
    /// Where the key is, as a dotted path (`spec.match.excludeNamespace`, `exemptions[0].rule`).
    pub path: String,
    /// The key as written.
    pub field: String,
    /// The declared field closest to it, when one is close enough to be a likely typo.
    pub closest: Option<String>,
}

impl fmt::Display for UnknownField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown field `{}`", self.path)?;
        match &self.closest {
            Some(c) => write!(f, "; did you mean `{c}`?"),
            None => Ok(()),
        }
    }
}

/// Every key of `value` that `schema` does not declare (keys of one object in sorted order).
pub fn unknown_fields(value: &Value, schema: &Value) -> Vec<UnknownField> {
    let mut out = Vec::new();
    let walker = Walker { root: schema };
    walker.walk(value, schema, "", &mut out);
    out
}

struct Walker<'s> {
    root: &'s Value,
}

/// The parts of a schema that say which keys an object may hold.
#[derive(Default)]
struct Shape<'s> {
    properties: Vec<(&'s str, &'s Value)>,
    additional: Option<&'s Value>,
    /// Any key is accepted (no properties declared, `additionalProperties: true`, or
    /// `x-kubernetes-preserve-unknown-fields`).
    open: bool,
    items: Vec<&'s Value>,
}

impl<'s> Walker<'s> {
    /// Follows `$ref` (local references only).
    fn resolve(&self, schema: &'s Value) -> &'s Value {
        let mut schema = schema;
        for _ in 0..32 {
            let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(pointer) = r.strip_prefix('#') else {
                break;
            };
            match self.root.pointer(pointer) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// The keys a schema (and every schema it combines) declares.
    fn shape(&self, schema: &'s Value, shape: &mut Shape<'s>, depth: usize) {
        let schema = self.resolve(schema);
        if depth > 16 {
            shape.open = true;
            return;
        }
        let Some(obj) = schema.as_object() else {
            // `true` accepts anything.
            shape.open |= schema.as_bool() == Some(true);
            return;
        };
        if obj
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true)
        {
            shape.open = true;
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            shape
                .properties
                .extend(props.iter().map(|(k, v)| (k.as_str(), v)));
        }
        match obj.get("additionalProperties") {
            Some(Value::Bool(true)) => shape.open = true,
            Some(s @ Value::Object(_)) => shape.additional = Some(s),
            _ => {}
        }
        if let Some(items) = obj.get("items") {
            shape.items.push(items);
        }
        for combinator in ["allOf", "anyOf", "oneOf"] {
            for sub in obj
                .get(combinator)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.shape(sub, shape, depth + 1);
            }
        }
    }

    fn walk(&self, value: &Value, schema: &'s Value, path: &str, out: &mut Vec<UnknownField>) {
        let mut shape = Shape::default();
        self.shape(schema, &mut shape, 0);
        match value {
            Value::Object(map) => self.walk_object(map, &shape, path, out),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    for s in &shape.items {
                        self.walk(item, s, &format!("{path}[{i}]"), out);
                    }
                }
            }
            _ => {}
        }
    }

    fn walk_object(
        &self,
        map: &Map<String, Value>,
        shape: &Shape<'s>,
        path: &str,
        out: &mut Vec<UnknownField>,
    ) {
        let declares_keys = !shape.properties.is_empty() || shape.additional.is_some();
        for (key, v) in map {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let declared: Vec<&Value> = shape
                .properties
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, s)| *s)
                .collect();
            if !declared.is_empty() {
                for s in declared {
                    self.walk(v, s, &here, out);
                }
            } else if let Some(additional) = shape.additional {
                self.walk(v, additional, &here, out);
            } else if declares_keys && !shape.open {
                out.push(UnknownField {
                    path: here,
                    field: key.clone(),
                    closest: crate::text::closest(key, shape.properties.iter().map(|(k, _)| *k)),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {"$ref": "#/$defs/Spec"},
                "metadata": {"type": "object"},
            },
            "$defs": {
                "Spec": {
                    "type": "object",
                    "properties": {
                        "excludeNamespaces": {"type": "array", "items": {"type": "string"}},
                        "rules": {
                            "type": "object",
                            "properties": {
                                "replicasHa": {"anyOf": [{"$ref": "#/$defs/Replicas"}, {"type": "null"}]},
                            }
                        },
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "exemptions": {"type": "array", "items": {"type": "object", "properties": {"reason": {}, "expires": {}}}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {}}},
                    }
                },
                "Replicas": {"type": "object", "properties": {"minReplicas": {}, "enabled": {}}},
            }
        })
    }

    #[test]
    fn names_unknown_keys_with_their_path_and_the_closest_declared_one() {
        let doc = json!({
            "metadata": {"name": "x", "anything": 1},
            "spec": {
                "excludeNamespace": ["shop"],
                "rules": {"replicasHA": {"minReplicas": 5}, "replicasHa": {"minReplica": 2}},
                "labels": {"any": "thing"},
                "exemptions": [{"reason": "r", "expire": "soon"}],
                "free": {"b": 1},
            }
        });
        let found = unknown_fields(&doc, &schema());
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "unknown field `spec.excludeNamespace`; did you mean `excludeNamespaces`?",
                "unknown field `spec.exemptions[0].expire`; did you mean `expires`?",
                "unknown field `spec.rules.replicasHA`; did you mean `replicasHa`?",
                "unknown field `spec.rules.replicasHa.minReplica`; did you mean `minReplicas`?",
            ]
        );
    }

    #[test]
    fn a_far_key_has_no_suggestion() {
        let found = unknown_fields(&json!({"spec": {"zzzzzzzzzz": 1}}), &schema());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].closest, None);
    }
}
