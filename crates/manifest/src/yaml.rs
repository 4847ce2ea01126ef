//! YAML parsed into a small tree where every node knows its line and column.
//!
//! Deserializing straight into typed structs would lose positions for the
//! checks that happen after parsing (unknown keys in Serverless files become
//! warnings, variables are resolved, paths and regexes are validated), so the
//! manifest is read into this tree first and interpreted by hand.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Localizer, Location, MessageFormatter, Spanned, Tagged, UserMessageFormatter};

use crate::error::ManifestError;

/// 1-based line and column of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Loc {
    pub line: u32,
    pub col: u32,
}

impl Loc {
    /// Used for errors about the document as a whole (e.g. it is empty).
    pub(crate) const START: Loc = Loc { line: 1, col: 1 };

    fn from_location(l: &Location) -> Loc {
        // Positions past u32 are not realistic for a manifest; saturate instead of failing.
        Loc {
            line: u32::try_from(l.line()).unwrap_or(u32::MAX).max(1),
            col: u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
        }
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub loc: Loc,
}

/// The value of a node. Scalars keep the type YAML gave them, so that
/// `"10"` and `10` can both be accepted where a number is expected while
/// error messages still say what was actually written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order (merge keys are already expanded).
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub(crate) fn new(value: Value, loc: Loc) -> Node {
        Node { value, loc }
    }

    /// The text of a scalar as it would appear in an environment variable;
    /// `None` for null and collections.
    pub(crate) fn scalar_text(&self) -> Option<Cow<'_, str>> {
        match &self.value {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Float(f) => Some(Cow::Owned(f.to_string())),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// How a key is shown in messages (keys are nearly always strings).
    pub(crate) fn key_text(&self) -> String {
        match self.scalar_text() {
            Some(t) => t.into_owned(),
            None => self.describe().to_string(),
        }
    }

    /// Looks up a key in a mapping node.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short description of what was written, for "expected X, found Y".
    pub(crate) fn describe(&self) -> Described<'_> {
        Described(self)
    }
}

/// See [`Node::describe`].
pub(crate) struct Described<'a>(&'a Node);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.value {
            Value::Null => f.write_str("nothing (null)"),
            Value::Bool(b) => write!(f, "the boolean `{b}`"),
            Value::Int(i) => write!(f, "the number {i}"),
            Value::Float(x) => write!(f, "the number {x}"),
            Value::Str(s) => {
                // Long values would drown the message; the location says where the rest is.
                const MAX: usize = 40;
                if s.chars().count() > MAX {
                    let head: String = s.chars().take(MAX).collect();
                    write!(f, "the string {:?}", format!("{head}..."))
                } else {
                    write!(f, "the string {s:?}")
                }
            }
            Value::Seq(_) => f.write_str("a list"),
            Value::Map(_) => f.write_str("a mapping"),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned: Spanned<Tagged<Value>> = Spanned::deserialize(d)?;
        // `referenced` is where the value is used, which is what an error should
        // point at when a value comes from an alias.
        let loc = Loc::from_location(&spanned.referenced);
        let Tagged(value, tag) = spanned.value;
        Ok(Node::new(with_tag(value, tag.as_deref(), loc), loc))
    }
}

/// A local tag (`!Ref Orders`, `!GetAtt Queue.Arn`: CloudFormation's
/// short forms) becomes the long form `{Ref: …}` / `{"Fn::GetAtt": …}`, so
/// that what reads the value sees an intrinsic it cannot resolve instead of
/// the bare argument; core tags (`!!str`) are YAML's own and already applied.
fn with_tag(value: Value, tag: Option<&str>, loc: Loc) -> Value {
    let Some(name) = tag.and_then(|t| t.strip_prefix('!')) else {
        return value;
    };
    if name.is_empty() || name.starts_with('!') {
        return value;
    }
    let key = match name {
        "Ref" | "Condition" => name.to_owned(),
        _ => format!("Fn::{name}"),
    };
    Value::Map(vec![(
        Node::new(Value::Str(key), loc),
        Node::new(value, loc),
    )])
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Stack for the parsing thread. Deserializing takes tens of KB of stack per
/// level of YAML nesting in debug builds; the parser's depth budget (64
/// levels) bounds the levels, and this gives them ample room whatever thread
/// the caller is on (tokio workers have 2 MB).
const PARSE_STACK: usize = 32 << 20;

/// Parses a whole document. An empty document is an error at 1:1: a manifest
/// with nothing in it is always a mistake.
pub(crate) fn parse(source: &str, file: &str) -> Result<Node, ManifestError> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("manifest-parse".to_owned())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, || parse_here(source, file));
        match spawned {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(ManifestError::at(
                    file,
                    Loc::START,
                    "the YAML parser failed on this file",
                ))
            }),
            // No thread to be had: parse here; the depth budget still applies.
            Err(_) => parse_here(source, file),
        }
    })
}

fn parse_here(source: &str, file: &str) -> Result<Node, ManifestError> {
    let options = serde_saphyr::options! {
        // YAML 1.2 booleans only, as in the JavaScript parser the Serverless
        // Framework uses: `on`, `yes`, `n` stay strings (keys like `y` too).
        strict_booleans: true,
        // Keep `0755` and `1_000` as written when they end up in environment values.
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Option<Node>>(source, options) {
        Ok(Some(node)) if node.value != Value::Null => Ok(node),
        Ok(_) => Err(ManifestError::at(
            file,
            Loc::START,
            "the manifest is empty; expected a mapping with `service`, `provider` and `functions`",
        )),
        Err(err) => Err(syntax_error(file, &err)),
    }
}

fn syntax_error(file: &str, err: &serde_saphyr::Error) -> ManifestError {
    let options = serde_saphyr::render_options! {
        formatter: &PlainFormatter,
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let message = err.render_with_options(options);
    match err.location() {
        Some(l) if l.line() > 0 => ManifestError::at(file, Loc::from_location(&l), message),
        _ => ManifestError::whole_file(file, message),
    }
}

/// The parser's user-facing wording, without its " at line X, column Y"
/// suffix: our `Display` puts the position in front, compiler style.
struct PlainFormatter;

struct PlainLocalizer;

impl Localizer for PlainLocalizer {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _loc: Location) -> Cow<'a, str> {
        base
    }
    fn alias_used_at(&self, _used: Location) -> String {
        String::new()
    }
}

impl MessageFormatter for PlainFormatter {
    fn localizer(&self) -> &dyn Localizer {
        &PlainLocalizer
    }
    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
        UserMessageFormatter.format_message(err)
    }
}
