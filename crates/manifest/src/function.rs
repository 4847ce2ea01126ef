//! One entry under `functions:`: a web function or a lambda function.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use crate::ctx::{Ctx, Section};
use crate::error::ManifestError;
use crate::events;
use crate::scaling::{self, ScalingLayer};
use crate::yaml::{Loc, Node, Value};
use crate::{Event, FunctionKind, FunctionSpec, LambdaSpec, Readiness, Rewrite, WebSpec};

const FUNCTION_KEYS: &[&str] = &[
    "web",
    "handler",
    "runtime",
    "environment",
    "memorySize",
    "timeout",
    "concurrency",
    "scaling",
    "events",
];
const WEB_KEYS: &[&str] = &["command", "port", "readiness", "rewrite"];

/// Serverless's default memory size; rouse uses it for both kinds.
const DEFAULT_MEMORY_MB: u32 = 1024;
const DEFAULT_WEB_TIMEOUT: f64 = 30.0;
/// Serverless's default for lambda functions.
const DEFAULT_LAMBDA_TIMEOUT: f64 = 6.0;
const DEFAULT_WEB_CONCURRENCY: u32 = 64;

/// What `provider:` and the top-level `scaling:` give every function.
pub(crate) struct Defaults {
    pub service: String,
    pub stage: String,
    pub runtime: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub memory_size: Option<u32>,
    pub timeout: Option<f64>,
    pub scaling: ScalingLayer,
}

/// Reads `functions.<key>`; events come back with their positions for the
/// route conflict check done across all functions.
pub(crate) fn read(
    ctx: &Ctx<'_>,
    key: &Node,
    node: &Node,
    defaults: &Defaults,
) -> Result<(FunctionSpec, Vec<(Event, Loc)>), ManifestError> {
    let short_name = key.key_text();
    let valid_key = short_name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && short_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_key {
        return Err(ctx.error(
            key.loc,
            format!(
                "invalid function name `{short_name}`: use letters, digits, `-` and `_`, starting with a letter or digit"
            ),
        ));
    }
    let path = format!("functions.{short_name}");
    let name = format!("function `{short_name}`");
    let node = ctx.val(node)?;
    let fields = ctx.fields(&node, &short_name, Section { name: &name, path: &path }, FUNCTION_KEYS)?;

    let kind = match (fields.entry("web"), fields.entry("handler")) {
        (Some(_), Some((handler_key, _))) => {
            return Err(ctx.error(
                handler_key.loc,
                format!(
                    "{name} has both `web` and `handler`; a function is either a web server (`web:`) \
                     or a lambda handler (`handler:`), not both"
                ),
            ))
        }
        (None, None) => {
            return Err(ctx.error(
                key.loc,
                format!(
                    "{name} needs either `web:` (a web server to start) or `handler:` (a lambda handler like `app.handler`)"
                ),
            ))
        }
        (Some((web_key, web)), None) => {
            if let Some((runtime_key, _)) = fields.entry("runtime") {
                ctx.warn(
                    runtime_key.loc,
                    format!("`runtime` is ignored for web {name}: it runs its own `command`"),
                );
            }
            FunctionKind::Web(web_spec(ctx, web_key, web, &format!("{path}.web"))?)
        }
        (None, Some((_, handler))) => {
            let handler = ctx.non_empty(handler, "handler")?;
            let runtime = match fields.get("runtime") {
                Some(n) => ctx.non_empty(n, "runtime")?,
                None => defaults.runtime.clone().ok_or_else(|| {
                    ctx.error(
                        key.loc,
                        format!(
                            "lambda {name} needs a `runtime` (like python3.12, nodejs20.x or provided.al2023), \
                             on the function or under `provider`"
                        ),
                    )
                })?,
            };
            FunctionKind::Lambda(LambdaSpec { runtime, handler })
        }
    };
    let is_web = matches!(kind, FunctionKind::Web(_));

    let mut environment = defaults.environment.clone();
    if let Some(env) = fields.get("environment") {
        environment.extend(read_environment(ctx, env)?);
    }
    let memory_size = match fields.get("memorySize") {
        Some(n) => ctx.whole_u32(n, "memorySize", 1)?,
        None => defaults.memory_size.unwrap_or(DEFAULT_MEMORY_MB),
    };
    let timeout_secs = match fields.get("timeout") {
        Some(n) => ctx.seconds(n, "timeout")?,
        None => defaults.timeout.unwrap_or(if is_web {
            DEFAULT_WEB_TIMEOUT
        } else {
            DEFAULT_LAMBDA_TIMEOUT
        }),
    };
    let concurrency = match (fields.get("concurrency"), is_web) {
        (Some(n), true) => ctx.whole_u32(n, "concurrency", 1)?,
        (None, true) => DEFAULT_WEB_CONCURRENCY,
        (Some(n), false) => {
            if ctx.whole_u32(n, "concurrency", 0)? != 1 {
                return Err(ctx.error(
                    n.loc,
                    "`concurrency` must be 1 for lambda functions: a lambda instance takes one \
                     request at a time (use `scaling.maxInstances` to run more at once)",
                ));
            }
            1
        }
        (None, false) => 1,
    };
    let own_scaling = match fields.get("scaling") {
        Some(n) => {
            let scaling_path = format!("{path}.scaling");
            let section = Section { name: "scaling", path: &scaling_path };
            scaling::read(ctx, n, section)?
        }
        None => ScalingLayer::default(),
    };
    let scaling = scaling::resolve(ctx, &defaults.scaling, &own_scaling)?;
    let events = match fields.get("events") {
        Some(n) => events::read(ctx, n, &path)?,
        None => Vec::new(),
    };
    if is_web && !events.iter().any(|(e, _)| matches!(e, Event::Http(_) | Event::HttpApi(_))) {
        ctx.warn(
            key.loc,
            format!("web {name} has no `http` or `httpApi` event, so no request can reach it"),
        );
    }

    let spec = FunctionSpec {
        name: format!("{}-{}-{short_name}", defaults.service, defaults.stage),
        short_name,
        kind,
        environment,
        memory_size,
        timeout_secs,
        concurrency,
        scaling,
        events: events.iter().map(|(e, _)| e.clone()).collect(),
    };
    Ok((spec, events))
}

fn web_spec(ctx: &Ctx<'_>, key: &Node, node: &Node, path: &str) -> Result<WebSpec, ManifestError> {
    let node = ctx.val(node)?;
    let fields = ctx.fields(&node, "web", Section { name: "web", path }, WEB_KEYS)?;
    let command_node = fields.get("command").ok_or_else(|| {
        ctx.error(
            key.loc,
            "`web` needs a `command`: the server to start, as a list like [\"./server\", \"--port\", \"${PORT}\"] \
             or a string run with `sh -c`",
        )
    })?;
    let command = command(ctx, command_node)?;
    let port = match fields.get("port") {
        Some(n) => {
            let port = ctx.whole(n, "port", 1..=u64::from(u16::MAX))?;
            Some(u16::try_from(port).unwrap_or(u16::MAX))
        }
        None => None,
    };
    let readiness = match fields.get("readiness") {
        Some(n) => {
            let n = ctx.val(n)?;
            let readiness_path = format!("{path}.readiness");
            let section = Section { name: "readiness", path: &readiness_path };
            let fields = ctx.fields(&n, "readiness", section, &["path"])?;
            let path = match fields.get("path") {
                Some(p) => {
                    let text = ctx.non_empty(p, "path")?;
                    if !text.starts_with('/') {
                        return Err(ctx.error(p.loc, format!("readiness `path` must start with `/`, found {text:?}")));
                    }
                    Some(text)
                }
                None => None,
            };
            Readiness { path }
        }
        None => Readiness::default(),
    };
    let rewrite = match fields.get("rewrite") {
        Some(n) => {
            let n = ctx.val(n)?;
            let mut rules = Vec::new();
            for (i, item) in ctx.list(&n, "rewrite")?.iter().enumerate() {
                rules.push(rewrite_rule(ctx, item, &format!("{path}.rewrite[{i}]"))?);
            }
            rules
        }
        None => Vec::new(),
    };
    Ok(WebSpec {
        command,
        port,
        readiness,
        rewrite,
    })
}

/// A list is the argv as is; a string is a shell command line.
fn command(ctx: &Ctx<'_>, node: &Node) -> Result<Vec<String>, ManifestError> {
    let node = ctx.val(node)?;
    match &node.value {
        Value::Seq(items) => {
            let argv = items
                .iter()
                .map(|item| ctx.string(item, "command"))
                .collect::<Result<Vec<_>, _>>()?;
            match argv.first() {
                Some(program) if !program.trim().is_empty() => Ok(argv),
                _ => Err(ctx.error(node.loc, "`command` must start with the program to run")),
            }
        }
        Value::Str(line) if !line.trim().is_empty() => {
            Ok(vec!["sh".to_owned(), "-c".to_owned(), line.clone()])
        }
        Value::Str(_) => Err(ctx.error(node.loc, "`command` must not be empty")),
        _ => Err(ctx.expected(&node, "command", "a list of arguments or a string")),
    }
}

fn rewrite_rule(ctx: &Ctx<'_>, node: &Node, path: &str) -> Result<Rewrite, ManifestError> {
    let node = ctx.val(node)?;
    let section = Section { name: "rewrite", path };
    let fields = ctx.fields(&node, "rewrite", section, &["file", "match", "replace"])?;
    let required = |key: &str| {
        fields.get(key).ok_or_else(|| {
            ctx.error(
                node.loc,
                format!("a rewrite needs `{key}`; a rewrite is `{{ file, match, replace }}`"),
            )
        })
    };
    let file_node = required("file")?;
    let file = ctx.non_empty(file_node, "file")?;
    let relative = Path::new(&file)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !relative {
        return Err(ctx.error(
            file_node.loc,
            format!("rewrite `file` must be a path inside the project, relative and without `..`, found {file:?}"),
        ));
    }
    let match_node = required("match")?;
    let pattern = ctx.non_empty(match_node, "match")?;
    if let Err(e) = regex::Regex::new(&pattern) {
        return Err(ctx.error(
            match_node.loc,
            format!("`match` is not a valid regular expression: {}", regex_reason(&e)),
        ));
    }
    let replace = ctx.string(required("replace")?, "replace")?;
    Ok(Rewrite {
        file,
        pattern,
        replace,
    })
}

/// The regex crate explains syntax errors over several lines with a caret
/// diagram; a one-line manifest error wants just the explanation.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "), str::to_owned)
}

/// `environment:` values may be strings, numbers or booleans (`DEBUG: true`);
/// they are passed on as text.
pub(crate) fn read_environment(ctx: &Ctx<'_>, node: &Node) -> Result<BTreeMap<String, String>, ManifestError> {
    let node = ctx.val(node)?;
    let entries: &[(Node, Node)] = match &node.value {
        Value::Map(entries) => entries,
        Value::Null => &[],
        _ => return Err(ctx.expected(&node, "environment", "a mapping of variable names to values")),
    };
    let mut env = BTreeMap::new();
    for (key, value) in entries {
        let name = key.key_text();
        // Names with `=` or NUL cannot be passed to a process at all.
        if name.is_empty() || name.contains(['=', '\0']) || !matches!(key.value, Value::Str(_)) {
            return Err(ctx.error(key.loc, format!("invalid environment variable name `{name}`")));
        }
        let value = ctx.val(value)?;
        let text = match (&value.value, value.scalar_text()) {
            (_, Some(text)) => text.into_owned(),
            (Value::Null, _) => {
                return Err(ctx.error(
                    value.loc,
                    format!("environment variable `{name}` has no value; write `{name}: \"\"` for an empty one"),
                ))
            }
            _ => return Err(ctx.expected(&value, &name, "a string, number or boolean")),
        };
        if text.contains('\0') {
            return Err(ctx.error(value.loc, format!("environment variable `{name}` contains a NUL character")));
        }
        env.insert(name, text);
    }
    Ok(env)
}
