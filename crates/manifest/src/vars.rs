//! Resolution of Serverless Framework variables in `serverless.yml`.
//!
//! Values are resolved when the loader reads them, not in a pass over the
//! whole document: sections rouse ignores (`resources`, `custom` entries
//! nobody refers to) often use sources rouse cannot resolve (`${ssm:...}`,
//! `${cf:...}`), and those must not fail the load.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use crate::error::ManifestError;
use crate::template::{self, Alt, Expr, Part};
use crate::yaml::{Loc, Node, Value};

/// A cycle (`a: ${self:a}`) shows up as unbounded nesting; real files nest a few levels.
const MAX_DEPTH: usize = 32;
/// Bounds the total work so that values doubling at every level of reference
/// cannot make loading take forever.
const MAX_EVALUATIONS: usize = 100_000;

/// Looks up a process environment variable; injectable for tests.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) struct Vars<'a> {
    root: &'a Node,
    file: &'a str,
    cli_stage: Option<String>,
    /// The resolved stage; `None` while `provider.stage` itself is resolved.
    stage: Option<String>,
    env: EnvLookup<'a>,
    evaluations: Cell<usize>,
    warnings: &'a RefCell<Vec<(Loc, String)>>,
}

/// The outcome of one alternative of a variable.
enum Lookup {
    Found(Node),
    /// Not available; the next alternative (the fallback) is tried.
    Missing {
        reason: String,
        unsupported: bool,
    },
}

impl<'a> Vars<'a> {
    pub(crate) fn new(
        root: &'a Node,
        file: &'a str,
        cli_stage: Option<String>,
        env: EnvLookup<'a>,
        warnings: &'a RefCell<Vec<(Loc, String)>>,
    ) -> Self {
        Vars {
            root,
            file,
            cli_stage,
            stage: None,
            env,
            evaluations: Cell::new(0),
            warnings,
        }
    }

    /// Called once the stage is known, so `${opt:stage}` and
    /// `${self:provider.stage}` resolve to it from then on.
    pub(crate) fn set_stage(&mut self, stage: String) {
        self.stage = Some(stage);
    }

    /// `node` with its variables resolved. A string that is exactly one
    /// variable becomes whatever the variable refers to (a number, a mapping,
    /// ...), at the position of the reference; other strings get the values
    /// spliced in. Nodes without variables are returned as they are.
    pub(crate) fn resolve<'n>(&self, node: &'n Node) -> Result<Cow<'n, Node>, ManifestError> {
        self.resolve_at(node, 0)
    }

    fn resolve_at<'n>(&self, node: &'n Node, depth: usize) -> Result<Cow<'n, Node>, ManifestError> {
        let Value::Str(s) = &node.value else {
            return Ok(Cow::Borrowed(node));
        };
        if !s.contains("${") {
            return Ok(Cow::Borrowed(node));
        }
        let parts = template::parse(s).map_err(|m| self.error(node.loc, m))?;
        if !template::has_variables(&parts) {
            return Ok(Cow::Borrowed(node));
        }
        if let [Part::Var(expr)] = parts.as_slice() {
            let mut value = self.eval(expr, node.loc, depth)?;
            value.loc = node.loc;
            return Ok(Cow::Owned(value));
        }
        let text = self.render(&parts, node.loc, depth)?;
        Ok(Cow::Owned(Node::new(Value::Str(text), node.loc)))
    }

    /// Splices variables into text; each must resolve to a scalar.
    fn render(&self, parts: &[Part], at: Loc, depth: usize) -> Result<String, ManifestError> {
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(expr) => {
                    let value = self.eval(expr, at, depth)?;
                    match value.scalar_text() {
                        Some(t) => out.push_str(&t),
                        None => {
                            return Err(self.error(
                                at,
                                format!(
                                    "`{}` is {}, which cannot be part of a string",
                                    expr.text,
                                    value.describe()
                                ),
                            ))
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn eval(&self, expr: &Expr, at: Loc, depth: usize) -> Result<Node, ManifestError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(
                at,
                format!(
                    "`{}`: variables refer to each other too deeply; is a value referring to itself?",
                    expr.text
                ),
            ));
        }
        let count = self.evaluations.get() + 1;
        self.evaluations.set(count);
        if count > MAX_EVALUATIONS {
            return Err(self.error(at, "too many variable references to resolve"));
        }
        let mut first_miss: Option<(String, bool)> = None;
        for alt in &expr.alts {
            match self.lookup(alt, at, depth + 1)? {
                Lookup::Found(node) => {
                    if let Some((reason, true)) = first_miss {
                        self.warn(
                            at,
                            format!("{reason}; using the fallback in `{}`", expr.text),
                        );
                    }
                    return Ok(node);
                }
                Lookup::Missing {
                    reason,
                    unsupported,
                } => {
                    first_miss.get_or_insert((reason, unsupported));
                }
            }
        }
        let reason = first_miss.map_or_else(String::new, |(r, _)| r);
        Err(self.error(at, format!("cannot resolve `{}`: {reason}", expr.text)))
    }

    fn lookup(&self, alt: &Alt, at: Loc, depth: usize) -> Result<Lookup, ManifestError> {
        let literal = |value| Ok(Lookup::Found(Node::new(value, at)));
        let (source, address) = match alt {
            Alt::Str(s) => return literal(Value::Str(s.clone())),
            Alt::Int(i) => return literal(Value::Int(*i)),
            Alt::Float(f) => return literal(Value::Float(*f)),
            Alt::Bool(b) => return literal(Value::Bool(*b)),
            Alt::Nested(expr) => return self.eval(expr, at, depth).map(Lookup::Found),
            Alt::Ref { source, address } => (source, address),
        };
        let address = self.render(address, at, depth)?;
        let address = address.trim();
        let found = |text: Option<String>, reason: String| {
            Ok(match text {
                Some(t) => Lookup::Found(Node::new(Value::Str(t), at)),
                None => Lookup::Missing {
                    reason,
                    unsupported: false,
                },
            })
        };
        match (source.as_str(), address) {
            ("opt" | "sls", "stage") => found(
                self.current_stage(),
                "no --stage was given; add a default like `${opt:stage, 'dev'}`".to_owned(),
            ),
            ("self", "provider.stage") => found(
                self.stage.clone(),
                "`provider.stage` refers to itself".to_owned(),
            ),
            ("self", "") => Err(self.error(at, "`self:` needs a path, like `self:custom.name`")),
            ("self", path) => self.lookup_path(path, depth),
            ("env", "") => Err(self.error(at, "`env:` needs a variable name, like `env:HOME`")),
            ("env", name) => found(
                (self.env)(name),
                format!("environment variable `{name}` is not set"),
            ),
            ("opt", name) => found(
                None,
                format!("option `--{name}` is not available (rouse passes only --stage)"),
            ),
            (source, address) if source.starts_with("file(") && source.ends_with(')') => {
                self.lookup_file(&source[5..source.len() - 1], address, depth)
            }
            (source, _) => Ok(Lookup::Missing {
                reason: format!(
                    "the `{source}` variable source is not supported by rouse \
                     (supported: self, env, file(…), opt:stage, sls:stage)"
                ),
                unsupported: true,
            }),
        }
    }

    /// `${file(path)}` and `${file(path):a.b}`: a YAML or JSON file next to
    /// the manifest (the path is relative to the manifest's directory), or
    /// one value in it; variables in that file resolve against the manifest.
    fn lookup_file(
        &self,
        path: &str,
        address: &str,
        depth: usize,
    ) -> Result<Lookup, ManifestError> {
        let path = path.trim().trim_matches(|c| c == '\'' || c == '"');
        let base = std::path::Path::new(self.file)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        let full = base.join(path);
        let text = match std::fs::read_to_string(&full) {
            Ok(text) => text,
            Err(err) => {
                return Ok(Lookup::Missing {
                    reason: format!("cannot read `{}`: {err}", full.display()),
                    unsupported: false,
                })
            }
        };
        let doc = crate::yaml::parse(&text, &full.display().to_string())?;
        let segments: Vec<&str> = if address.is_empty() {
            Vec::new()
        } else {
            address.split('.').collect()
        };
        match self.walk(&doc, &segments, depth)? {
            Some(node) if node.value != Value::Null => Ok(Lookup::Found(node)),
            _ => Ok(Lookup::Missing {
                reason: format!("`{address}` does not exist in `{path}`"),
                unsupported: false,
            }),
        }
    }

    fn current_stage(&self) -> Option<String> {
        self.cli_stage.clone().or_else(|| self.stage.clone())
    }

    /// `${self:a.b.0.c}`: keys of mappings and indexes of lists; every step may
    /// itself be a variable.
    fn lookup_path(&self, path: &str, depth: usize) -> Result<Lookup, ManifestError> {
        let segments: Vec<&str> = path.split('.').collect();
        // `service: { name: shop }` (the older form) still reads as `shop`.
        if path == "service" {
            if let Some(name) = self.root.get("service").and_then(|s| s.get("name")) {
                return Ok(match self.resolve_at(name, depth)?.into_owned() {
                    node if node.value != Value::Null => Lookup::Found(node),
                    _ => Lookup::Missing {
                        reason: "`service.name` is null".into(),
                        unsupported: false,
                    },
                });
            }
        }
        match self.walk(self.root, &segments, depth)? {
            Some(node) if node.value != Value::Null => Ok(Lookup::Found(node)),
            Some(_) => Ok(Lookup::Missing {
                reason: format!("`self:{path}` is null"),
                unsupported: false,
            }),
            None => Ok(Lookup::Missing {
                reason: format!("`self:{path}` does not exist in the manifest"),
                unsupported: false,
            }),
        }
    }

    fn walk(
        &self,
        node: &Node,
        segments: &[&str],
        depth: usize,
    ) -> Result<Option<Node>, ManifestError> {
        let node = self.resolve_at(node, depth)?;
        let Some((first, rest)) = segments.split_first() else {
            return Ok(Some(node.into_owned()));
        };
        let child = match &node.value {
            Value::Map(_) => node.get(first),
            Value::Seq(items) => first.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match child {
            Some(child) => self.walk(child, rest, depth),
            None => Ok(None),
        }
    }

    fn error(&self, at: Loc, message: impl Into<String>) -> ManifestError {
        ManifestError::at(self.file, at, message)
    }

    fn warn(&self, at: Loc, message: String) {
        let warning = ManifestError::at(self.file, at, message).to_string();
        self.warnings.borrow_mut().push((at, warning));
    }
}
