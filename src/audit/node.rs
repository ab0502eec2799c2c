//! The document tree the fast YAML reader builds: strings borrow from the input where they
//! can, mappings are key/value vectors, and the tree deserializes straight into the typed
//! Kubernetes objects — no `serde_json::Value` in between, so a manifest costs one
//! allocation per string it keeps instead of one per node.
//!
//! It deserializes exactly as a `serde_json::Value` with the same content does (`null` →
//! `None`/unit, integers as `u64`/`i64`, floats as `f64`, strings, sequences, maps), so a
//! typed decode gives the same object — or the same error message — either way.

use std::borrow::Cow;

use serde::de::value::{Error, MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
#[cfg(test)]
use serde_json::Number;
use serde_json::Value;

use crate::engine::object::Manifest;

/// One YAML node.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Seq(Vec<Node<'a>>),
    /// Keys are unique (the reader defers documents with duplicate keys to the full parser).
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// A scalar of the full parser's result.
    pub(crate) fn from_scalar(value: Value) -> Option<Node<'a>> {
        Some(match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Node::U64(u)
                } else if let Some(i) = n.as_i64() {
                    Node::I64(i)
                } else {
                    Node::F64(n.as_f64()?)
                }
            }
            Value::String(s) => Node::Str(Cow::Owned(s)),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    /// The same content as a `serde_json::Value` (tests compare it with the full parser).
    #[cfg(test)]
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::U64(u) => Value::Number(Number::from(*u)),
            Node::I64(i) => Value::Number(Number::from(*i)),
            Node::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Str(s) => Value::String(s.to_string()),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl<'de> Manifest<'de> for Node<'de> {
    fn is_mapping(&self) -> bool {
        matches!(self, Node::Map(_))
    }

    fn top_str(&self, key: &str) -> Option<&str> {
        match self {
            Node::Map(pairs) => match pairs.iter().find(|(k, _)| k == key)? {
                (_, Node::Str(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    fn has(&self, key: &str) -> bool {
        matches!(self, Node::Map(pairs) if pairs.iter().any(|(k, _)| k == key))
    }

    fn take_items(&mut self) -> Vec<Self> {
        let Node::Map(pairs) = self else {
            return Vec::new();
        };
        match pairs.iter().position(|(k, _)| k == "items") {
            Some(at) => match pairs.remove(at).1 {
                Node::Seq(items) => items,
                _ => Vec::new(),
            },
            None => Vec::new(),
        }
    }
}

impl<'de> IntoDeserializer<'de, Error> for Node<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::U64(u) => visitor.visit_u64(u),
            Node::I64(i) => visitor.visit_i64(i),
            Node::F64(f) => visitor.visit_f64(f),
            Node::Str(Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            Node::Str(Cow::Owned(s)) => visitor.visit_string(s),
            Node::Seq(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Node::Map(pairs) => {
                let mut map = MapDeserializer::new(pairs.into_iter());
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Node::Str(s) => visitor.visit_enum(s.into_deserializer()),
            Node::Map(mut pairs) if pairs.len() == 1 => match pairs.pop() {
                Some((variant, value)) => visitor.visit_enum(EnumAccess { variant, value }),
                None => Err(de::Error::invalid_type(Unexpected::Map, &"an enum")),
            },
            _ => Err(de::Error::invalid_type(
                Unexpected::Other("non-enum"),
                &"an enum",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        drop(self);
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// `{variant: value}` as an externally tagged enum, as `serde_json::Value` reads it.
struct EnumAccess<'de> {
    variant: Cow<'de, str>,
    value: Node<'de>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = Error;
    type Variant = Node<'de>;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Node<'de>), Error> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for Node<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self {
            Node::Null => Ok(()),
            _ => Err(de::Error::invalid_type(
                Unexpected::Other("value"),
                &"unit variant",
            )),
        }
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Container, Service};
    use serde::de::DeserializeOwned;

    use crate::audit::yaml;

    /// Decoding through the tree and through `serde_json::Value` gives the same object, or
    /// the same error message.
    fn same_decode<T: DeserializeOwned + PartialEq + std::fmt::Debug>(doc: &str) {
        let Some(node) = yaml::parse(doc) else {
            panic!("not in the fast subset:\n{doc}");
        };
        let via_value = serde_json::from_value::<T>(node.to_value()).map_err(|e| e.to_string());
        let via_node = T::deserialize(node).map_err(|e| e.to_string());
        assert_eq!(via_node, via_value, "{doc}");
    }

    #[test]
    fn decodes_like_serde_json_value() {
        same_decode::<Deployment>(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {a: b}}\nspec:\n  replicas: 3\n  selector: {matchLabels: {a: b}}\n  template:\n    spec:\n      containers:\n      - name: app\n        image: 'x:1'\n        ports: [{containerPort: 8080, name: http}]\n        resources: {requests: {cpu: 100m, memory: 1}}\n        livenessProbe: {httpGet: {port: http, path: /}}\n        readinessProbe: {tcpSocket: {port: 8080}}\n        env: [{name: A, value: \"x\\ty\"}]\n",
        );
        same_decode::<Service>(
            "metadata: {name: s}\nspec: {ports: [{port: 80, targetPort: 8080}, {port: 81, targetPort: web}], type: ClusterIP}\n",
        );
        // Wrong types: the same messages.
        same_decode::<Deployment>("spec: {replicas: x}\n");
        same_decode::<Deployment>("spec: {replicas: 1.5}\n");
        same_decode::<Deployment>("spec: {replicas: -1}\n");
        same_decode::<Deployment>("spec: {replicas: 99999999999}\n");
        same_decode::<Deployment>("metadata: {name: 1}\n");
        same_decode::<Deployment>("metadata: {labels: [a]}\n");
        same_decode::<Deployment>("spec: {template: {spec: {containers: {}}}}\n");
        same_decode::<Deployment>("spec: {paused: yes}\n");
        same_decode::<Deployment>("spec: ~\nstatus: {replicas: 1}\nunknown: {a: [1, 2]}\n");
        same_decode::<Container>("name: a\nenv: [{name: A, value: 123}]\n");
        same_decode::<Container>("image: a\n");
        same_decode::<Container>("name: a\nresources: {limits: {cpu: 0.5}}\n");
        same_decode::<Container>("name: a\nports: [{containerPort: '80'}]\n");
    }
}
