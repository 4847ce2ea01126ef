//! `events:` of a function: HTTP routes, schedules, streams and queues.

use std::collections::BTreeSet;

use crate::api_policy::{self, ApiSettings};
use crate::ctx::{Ctx, Fields, Section};
use crate::error::ManifestError;
use crate::suggest;
use crate::yaml::{Loc, Node, Value};
use crate::{Event, Flavor, HttpEvent, RoutePolicy};

const EVENT_TYPES: &[&str] = &["http", "httpApi", "schedule", "stream", "sqs"];
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

/// Reads a function's `events:`; each event comes with the position of its
/// definition so that conflicting routes can be reported where they are.
pub(crate) fn read(
    ctx: &Ctx<'_>,
    node: &Node,
    fn_path: &str,
    api: &ApiSettings,
) -> Result<Vec<(Event, Loc)>, ManifestError> {
    let node = ctx.val(node)?;
    let mut events = Vec::new();
    for (index, item) in ctx.list(&node, "events")?.iter().enumerate() {
        let item = ctx.val(item)?;
        let path = format!("{fn_path}.events[{index}]");
        let (key, value) = match &item.value {
            Value::Map(entries) if entries.len() == 1 => (&entries[0].0, &entries[0].1),
            Value::Map(entries) if entries.len() > 1 => {
                let keys: Vec<String> = entries.iter().map(|(k, _)| k.key_text()).collect();
                return Err(ctx.error(
                    entries[1].0.loc,
                    format!(
                        "an event has exactly one type, found `{}`; is `{}` meant to be indented under `{}`?",
                        keys.join("`, `"),
                        keys[1],
                        keys[0]
                    ),
                ));
            }
            _ => {
                return Err(ctx.expected(
                    &item,
                    "events",
                    "a list of events like `- http: GET /path` or `- schedule: rate(5 minutes)`",
                ))
            }
        };
        let kind = key.key_text();
        match kind.as_str() {
            "http" | "httpApi" => {
                let http = http(ctx, value, &kind, &format!("{path}.{kind}"), api)?;
                let event = if kind == "http" {
                    Event::Http(http)
                } else {
                    Event::HttpApi(http)
                };
                events.push((event, item.loc));
            }
            "schedule" => {
                for expression in schedule(ctx, value, &format!("{path}.schedule"))? {
                    events.push((Event::Schedule { expression }, item.loc));
                }
            }
            "stream" => {
                if let Some(stream) =
                    crate::stream_event::read(ctx, value, &format!("{path}.stream"))?
                {
                    events.push((Event::Stream(stream), item.loc));
                }
            }
            "sqs" => {
                if let Some(sqs) = crate::sqs_event::read(ctx, value, &format!("{path}.sqs"))? {
                    // Read and checked now, so the manifest stays valid
                    // once queues feed functions; until then say so.
                    ctx.warn(
                        item.loc,
                        format!("`{path}.sqs` is not delivered by rouse yet (queues are not polled); the event is ignored"),
                    );
                    events.push((Event::Sqs(sqs), item.loc));
                }
            }
            _ => {
                let hint = suggest::closest(&kind, EVENT_TYPES)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                match ctx.flavor {
                    Flavor::Rouse => {
                        return Err(ctx.error(
                            key.loc,
                            format!(
                                "unknown event type `{kind}`, expected one of: {}{hint}",
                                EVENT_TYPES.join(", ")
                            ),
                        ))
                    }
                    Flavor::Serverless => ctx.warn(
                        key.loc,
                        format!("`{path}.{kind}` is not supported by rouse and is ignored{hint}"),
                    ),
                }
            }
        }
    }
    Ok(events)
}

/// `http:`/`httpApi:` as `{ path, method }`, as `"METHOD /path"`, or, for
/// HTTP APIs, `"*"` (every method and path).
fn http(
    ctx: &Ctx<'_>,
    node: &Node,
    kind: &str,
    path: &str,
    api: &ApiSettings,
) -> Result<HttpEvent, ManifestError> {
    let node = ctx.val(node)?;
    let mut policy = match kind {
        "httpApi" => api_policy::http_api_event(ctx, &Fields::empty(), path, api)?,
        _ => RoutePolicy::default(),
    };
    let (method_text, method_loc, path_text, path_loc) = match &node.value {
        Value::Str(s) if kind == "httpApi" && s.trim() == "*" => {
            ("*".to_owned(), node.loc, "*".to_owned(), node.loc)
        }
        Value::Str(s) => {
            let words: Vec<&str> = s.split_whitespace().collect();
            let [method, route] = words.as_slice() else {
                return Err(ctx.error(
                    node.loc,
                    format!(
                        "`{kind}` as a string must be \"METHOD /path\", like \"GET /users/{{id}}\"{}, found {:?}",
                        if kind == "httpApi" { " or \"*\"" } else { "" },
                        s
                    ),
                ));
            };
            (
                (*method).to_owned(),
                node.loc,
                (*route).to_owned(),
                node.loc,
            )
        }
        Value::Map(_) | Value::Null => {
            let name = format!("{kind} event");
            let section = Section { name: &name, path };
            let known: &[&str] = match kind {
                "http" => &["path", "method", "cors", "authorizer"],
                _ => &["path", "method", "authorizer"],
            };
            let fields = ctx.fields(&node, kind, section, known)?;
            policy = match kind {
                "http" => api_policy::rest_event(ctx, &fields, path, api)?,
                _ => api_policy::http_api_event(ctx, &fields, path, api)?,
            };
            let missing = |what: &str| {
                ctx.error(
                    node.loc,
                    format!("{kind} event needs `{what}`, like `{kind}: {{ path: /users/{{id}}, method: get }}`"),
                )
            };
            let method = fields.get("method").ok_or_else(|| missing("method"))?;
            let route = fields.get("path").ok_or_else(|| missing("path"))?;
            (
                ctx.string(method, "method")?,
                method.loc,
                ctx.string(route, "path")?,
                route.loc,
            )
        }
        _ => {
            return Err(ctx.expected(
                &node,
                kind,
                "a mapping `{ path, method }` or a string \"METHOD /path\"",
            ))
        }
    };
    let method = method_name(ctx, &method_text, method_loc)?;
    let path = if kind == "httpApi" && path_text.trim() == "*" {
        "/{proxy+}".to_owned()
    } else {
        route_path(ctx, &path_text, path_loc)?
    };
    Ok(HttpEvent {
        path,
        method,
        policy,
    })
}

fn method_name(ctx: &Ctx<'_>, text: &str, loc: Loc) -> Result<String, ManifestError> {
    let upper = text.trim().to_ascii_uppercase();
    let upper = if upper == "*" {
        "ANY".to_owned()
    } else {
        upper
    };
    if METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(ctx.error(
            loc,
            format!(
                "unknown HTTP method `{text}`, expected one of: {} (or `*` for any)",
                METHODS.join(", ")
            ),
        ))
    }
}

/// Validates a path template: `/users/{id}`, `/{proxy+}`. The Serverless
/// Framework writes REST paths without the leading `/` (`users/{id}`), so
/// serverless.yml paths get one; in rouse.yaml it is required.
pub(crate) fn route_path(ctx: &Ctx<'_>, text: &str, loc: Loc) -> Result<String, ManifestError> {
    let text = text.trim();
    let path = match ctx.flavor {
        Flavor::Serverless if !text.starts_with('/') => format!("/{text}"),
        _ => text.to_owned(),
    };
    let fail = |why: &str| Err(ctx.error(loc, format!("invalid path `{text}`: {why}")));
    if !path.starts_with('/') {
        return fail("a path must start with `/`");
    }
    if path == "/" {
        return Ok(path);
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let mut names = BTreeSet::new();
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            return fail("empty segment (`//` or a trailing `/`)");
        }
        if segment
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
        {
            return fail("a path may not contain spaces, `?` or `#`");
        }
        if !segment.contains(['{', '}']) {
            continue;
        }
        let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            return fail("a parameter must be a whole segment, like `/files/{name}`");
        };
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return fail(&format!(
                "parameter name `{name}` must start with a letter and contain only letters, digits, `_` and `-`"
            ));
        }
        if greedy && i + 1 != segments.len() {
            return fail(&format!(
                "`{{{name}+}}` takes the rest of the path, so it must be the last segment"
            ));
        }
        if !names.insert(name) {
            return fail(&format!("parameter `{name}` appears twice"));
        }
    }
    Ok(path)
}

/// `schedule: rate(5 minutes)`, or the Serverless mapping form with `rate:`
/// holding one expression or a list; each expression is one event.
fn schedule(ctx: &Ctx<'_>, node: &Node, path: &str) -> Result<Vec<String>, ManifestError> {
    let node = ctx.val(node)?;
    let rate = match &node.value {
        Value::Map(_) => {
            let section = Section {
                name: "schedule event",
                path,
            };
            let fields = ctx.fields(&node, "schedule", section, &["rate", "enabled"])?;
            if let Some(enabled) = fields.get("enabled") {
                let enabled = ctx.val(enabled)?;
                match enabled.value {
                    Value::Bool(false) => return Ok(Vec::new()),
                    Value::Bool(true) => {}
                    _ => return Err(ctx.expected(&enabled, "enabled", "`true` or `false`")),
                }
            }
            fields.get("rate").ok_or_else(|| {
                ctx.error(
                    node.loc,
                    "schedule event needs `rate`, like `rate: rate(5 minutes)`",
                )
            })?
        }
        _ => &*node,
    };
    let rate = ctx.val(rate)?;
    let items: Vec<&Node> = match &rate.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![&*rate],
    };
    let mut expressions = Vec::new();
    for item in items {
        let item = ctx.val(item)?;
        let Value::Str(text) = &item.value else {
            return Err(ctx.expected(
                &item,
                "schedule",
                "a string like \"rate(5 minutes)\" or \"cron(0 12 * * ? *)\"",
            ));
        };
        let text = text.trim();
        if !valid_schedule(text) {
            return Err(ctx.error(
                item.loc,
                format!(
                    "invalid schedule `{text}`: expected `rate(<number> minute|minutes|hour|hours|day|days)` \
                     or `cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`"
                ),
            ));
        }
        expressions.push(text.to_owned());
    }
    Ok(expressions)
}

/// The shapes EventBridge accepts; the scheduler parses the details.
fn valid_schedule(text: &str) -> bool {
    if let Some(body) = text.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        let words: Vec<&str> = body.split_whitespace().collect();
        return match words.as_slice() {
            [n, unit] => {
                n.parse::<u32>().is_ok_and(|n| n > 0)
                    && matches!(
                        *unit,
                        "minute" | "minutes" | "hour" | "hours" | "day" | "days"
                    )
            }
            _ => false,
        };
    }
    if let Some(body) = text.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        return body.split_whitespace().count() == 6;
    }
    false
}
