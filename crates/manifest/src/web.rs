//! `web:` of a web function: how to start the server and get it ready.

use std::path::{Component, Path};

use crate::ctx::{Ctx, Section};
use crate::error::ManifestError;
use crate::yaml::{Node, Value};
use crate::{Readiness, Rewrite, WebSpec};

const WEB_KEYS: &[&str] = &[
    "command",
    "port",
    "readiness",
    "rewrite",
    "socketActivation",
    "network",
];

/// Reads `web:`; `key` is the `web` key, where a missing `command` is reported.
pub(crate) fn read(
    ctx: &Ctx<'_>,
    key: &Node,
    node: &Node,
    path: &str,
) -> Result<WebSpec, ManifestError> {
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
            let section = Section {
                name: "readiness",
                path: &readiness_path,
            };
            let fields = ctx.fields(&n, "readiness", section, &["path"])?;
            let path = match fields.get("path") {
                Some(p) => {
                    let text = ctx.non_empty(p, "path")?;
                    if !text.starts_with('/') {
                        return Err(ctx.error(
                            p.loc,
                            format!("readiness `path` must start with `/`, found {text:?}"),
                        ));
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
    let socket_activation = match fields.get("socketActivation") {
        Some(n) => match ctx.val(n)?.value {
            Value::Bool(b) => b,
            _ => return Err(ctx.expected(n, "socketActivation", "true or false")),
        },
        None => false,
    };
    let no_network =
        match fields.get("network") {
            Some(n) => {
                let value = ctx.string(n, "network")?;
                match value.as_str() {
                    "none" if socket_activation => true,
                    "none" => return Err(ctx.error(
                        n.loc,
                        "`network: none` needs `socketActivation: true`: with no network the app \
                         can only serve on the socket rouse hands it",
                    )),
                    "host" => false,
                    _ => return Err(ctx.expected(n, "network", "none or host")),
                }
            }
            None => false,
        };
    Ok(WebSpec {
        command,
        port,
        readiness,
        rewrite,
        socket_activation,
        no_network,
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
    let section = Section {
        name: "rewrite",
        path,
    };
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
            format!(
                "`match` is not a valid regular expression: {}",
                regex_reason(&e)
            ),
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
        .map_or_else(
            || text.split_whitespace().collect::<Vec<_>>().join(" "),
            str::to_owned,
        )
}
