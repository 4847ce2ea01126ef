//! Reading values out of the node tree with errors that say where and what.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::RangeInclusive;

use crate::error::ManifestError;
use crate::suggest;
use crate::vars::Vars;
use crate::yaml::{Loc, Node, Value};
use crate::Flavor;

/// Upper bound for every duration: far beyond any sensible setting, and
/// small enough that turning it into a `Duration` can never overflow.
pub(crate) const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// Where a mapping sits, for messages: `name` reads well in a sentence
/// ("in web", "in function `site`"; empty for the top level), `path` is the
/// dotted path used in Serverless warnings ("functions.site.layers").
#[derive(Clone, Copy)]
pub(crate) struct Section<'s> {
    pub name: &'s str,
    pub path: &'s str,
}

impl Section<'_> {
    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

/// Everything the readers share for one file.
pub(crate) struct Ctx<'a> {
    pub file: &'a str,
    pub flavor: Flavor,
    /// Present for `serverless.yml` only: rouse.yaml has no variables, and
    /// `${PORT}` in its commands and rewrites must stay as written.
    pub vars: Option<Vars<'a>>,
    pub warnings: &'a RefCell<Vec<(Loc, String)>>,
    /// serverless.yml's `AWS::SQS::Queue` resources, which `sqs:` events
    /// may name with `Fn::GetAtt`.
    pub queue_resources: crate::sqs_event::QueueResources,
}

/// The entries of a mapping whose keys were checked.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'n> {
    entries: &'n [(Node, Node)],
}

impl<'n> Fields<'n> {
    /// No entries: what a mapping-less form (`http: GET /x`) has.
    pub(crate) fn empty() -> Fields<'n> {
        Fields { entries: &[] }
    }

    /// The key node and the value node of `key`.
    pub(crate) fn entry(&self, key: &str) -> Option<(&'n Node, &'n Node)> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
            .map(|(k, v)| (k, v))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entry(key).map(|(_, v)| v)
    }
}

impl Ctx<'_> {
    pub(crate) fn error(&self, loc: Loc, message: impl Into<String>) -> ManifestError {
        ManifestError::at(self.file, loc, message)
    }

    pub(crate) fn warn(&self, loc: Loc, message: impl Into<String>) {
        let warning = self.error(loc, message).to_string();
        self.warnings.borrow_mut().push((loc, warning));
    }

    /// The node with Serverless variables resolved (a no-op for rouse.yaml).
    pub(crate) fn val<'n>(&self, node: &'n Node) -> Result<Cow<'n, Node>, ManifestError> {
        match &self.vars {
            Some(vars) => vars.resolve(node),
            None => Ok(Cow::Borrowed(node)),
        }
    }

    fn type_error(&self, node: &Node, field: &str, expected: &str) -> ManifestError {
        self.error(
            node.loc,
            format!("`{field}` must be {expected}, found {}", node.describe()),
        )
    }

    /// Checks the keys of a mapping against those rouse understands. Unknown
    /// keys are errors in rouse.yaml and warnings in serverless.yml, where
    /// they are usually AWS-specific settings that rouse simply does not need.
    /// A null value (`readiness:` with nothing after it) reads as empty.
    /// `node` must already have gone through [`Ctx::val`].
    pub(crate) fn fields<'n>(
        &self,
        node: &'n Node,
        field: &str,
        section: Section<'_>,
        known: &[&str],
    ) -> Result<Fields<'n>, ManifestError> {
        let entries: &[(Node, Node)] = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => return Err(self.type_error(node, field, "a mapping")),
        };
        for (key, value) in entries {
            let name = match &key.value {
                Value::Str(s) if known.contains(&s.as_str()) => continue,
                // `x-` keys at the top level hold anchors to reuse, as in
                // Compose files and OpenAPI; they are not settings.
                Value::Str(s) if section.path.is_empty() && s.starts_with("x-") => continue,
                // `custom.rouse` holds rouse's own settings in serverless.yml.
                Value::Str(s)
                    if section.path.is_empty() && s == "custom" && has_rouse_entry(value) =>
                {
                    continue
                }
                _ => key.key_text(),
            };
            let hint = suggest::closest(&name, known)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            match self.flavor {
                Flavor::Rouse => {
                    let place = if section.name.is_empty() {
                        "at the top level".to_owned()
                    } else {
                        format!("in {}", section.name)
                    };
                    return Err(self.error(
                        key.loc,
                        format!(
                            "unknown field `{name}` {place}, expected one of: {}{hint}",
                            known.join(", ")
                        ),
                    ));
                }
                Flavor::Serverless => {
                    // `custom` holds values for `${self:custom...}`; say so,
                    // or "ignored" would read as if those stopped working.
                    let note = if section.path.is_empty() && name == "custom" {
                        " (its values are still available to `${self:custom...}` variables)"
                    } else {
                        ""
                    };
                    self.warn(
                        key.loc,
                        format!(
                            "`{}` is not supported by rouse and is ignored{hint}{note}",
                            section.key_path(&name)
                        ),
                    )
                }
            }
        }
        Ok(Fields { entries })
    }

    /// Any scalar as text: `handler: 1` is odd but unambiguous.
    pub(crate) fn string(&self, node: &Node, field: &str) -> Result<String, ManifestError> {
        let node = self.val(node)?;
        match node.scalar_text() {
            Some(text) => Ok(text.into_owned()),
            None => Err(self.type_error(&node, field, "a string")),
        }
    }

    /// A non-empty string.
    pub(crate) fn non_empty(&self, node: &Node, field: &str) -> Result<String, ManifestError> {
        let text = self.string(node, field)?;
        if text.trim().is_empty() {
            return Err(self.error(node.loc, format!("`{field}` must not be empty")));
        }
        Ok(text)
    }

    /// A duration in seconds, written as a number or a numeric string.
    pub(crate) fn seconds(&self, node: &Node, field: &str) -> Result<f64, ManifestError> {
        let node = self.val(node)?;
        let value = match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match value {
            Some(v) if v.is_finite() && v > 0.0 && v <= MAX_SECONDS => Ok(v),
            Some(v) if v.is_finite() => Err(self.error(
                node.loc,
                format!("`{field}` must be more than 0 and at most {MAX_SECONDS} seconds (365 days), found {v}"),
            )),
            _ => Err(self.type_error(&node, field, "a number of seconds")),
        }
    }

    /// A whole number within `range`, written as a number or a numeric string.
    pub(crate) fn whole(
        &self,
        node: &Node,
        field: &str,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ManifestError> {
        let node = self.val(node)?;
        let value: Option<i128> = match &node.value {
            Value::Int(i) => Some(*i),
            // `512.0` is a whole number too; the cast saturates, and the
            // range check below rejects what saturated.
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i128),
            Value::Str(s) => s.trim().parse::<i128>().ok(),
            _ => None,
        };
        let Some(value) = value else {
            return Err(self.type_error(&node, field, "a whole number"));
        };
        match u64::try_from(value) {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => {
                let (min, max) = (*range.start(), *range.end());
                let bounds = if max >= u64::from(u32::MAX) {
                    format!("at least {min}")
                } else {
                    format!("between {min} and {max}")
                };
                Err(self.error(
                    node.loc,
                    format!("`{field}` must be {bounds}, found {value}"),
                ))
            }
        }
    }

    /// `u32` fields: memory sizes, instance counts, concurrency.
    pub(crate) fn whole_u32(
        &self,
        node: &Node,
        field: &str,
        min: u32,
    ) -> Result<u32, ManifestError> {
        let v = self.whole(node, field, u64::from(min)..=u64::from(u32::MAX))?;
        // The range above guarantees the conversion.
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    }

    /// A list; a single value where a list is expected is a type error, not
    /// silently wrapped, so that `events: http` is caught. `node` must
    /// already have gone through [`Ctx::val`].
    pub(crate) fn list<'n>(
        &self,
        node: &'n Node,
        field: &str,
    ) -> Result<&'n [Node], ManifestError> {
        match &node.value {
            Value::Seq(items) => Ok(items),
            Value::Null => Ok(&[]),
            _ => Err(self.type_error(node, field, "a list")),
        }
    }

    /// Reports an unexpected node type with the usual wording.
    pub(crate) fn expected(&self, node: &Node, field: &str, expected: &str) -> ManifestError {
        self.type_error(node, field, expected)
    }
}

/// Whether a mapping has a `rouse` key (`custom.rouse` in serverless.yml).
fn has_rouse_entry(node: &Node) -> bool {
    matches!(&node.value, Value::Map(entries)
        if entries.iter().any(|(k, _)| matches!(&k.value, Value::Str(s) if s == "rouse")))
}
