//! One entry under `functions:`: a web function or a lambda function.

use std::collections::BTreeMap;

use crate::ctx::{Ctx, Section};
use crate::error::ManifestError;
use crate::events;
use crate::names::{self, NameKind};
use crate::rules;
use crate::scaling::{self, ScalingLayer};
use crate::web;
use crate::yaml::{Loc, Node, Value};
use crate::{Event, FunctionKind, FunctionSpec, LambdaSpec};

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
    "maximumRetryAttempts",
    "maximumEventAge",
    "destinations",
    "name",
];

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
    pub stage_routing: crate::StageRouting,
    /// `provider.httpApi` and what authorizers may name.
    pub api: crate::api_policy::ApiSettings,
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
    names::check(NameKind::FunctionKey, &short_name).map_err(|m| ctx.error(key.loc, m))?;
    let path = format!("functions.{short_name}");
    let name = format!("function `{short_name}`");
    let node = ctx.val(node)?;
    let fields = ctx.fields(
        &node,
        &short_name,
        Section {
            name: &name,
            path: &path,
        },
        FUNCTION_KEYS,
    )?;

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
            FunctionKind::Web(web::read(ctx, web_key, web, &format!("{path}.web"))?)
        }
        (None, Some((_, handler))) => {
            let handler = ctx.non_empty(handler, "handler")?;
            let (runtime, runtime_loc) = match fields.get("runtime") {
                Some(n) => (ctx.non_empty(n, "runtime")?, n.loc),
                None => (defaults.runtime.clone().ok_or_else(|| {
                    ctx.error(
                        key.loc,
                        format!(
                            "lambda {name} needs a `runtime` (like python3.12, nodejs20.x or provided.al2023), \
                             on the function or under `provider`"
                        ),
                    )
                })?, key.loc),
            };
            if let Some(message) = rules::unsupported_runtime(&runtime) {
                return Err(ctx.error(runtime_loc, format!("lambda {name}: {message}")));
            }
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
            let section = Section {
                name: "scaling",
                path: &scaling_path,
            };
            scaling::read(ctx, n, section)?
        }
        None => ScalingLayer::default(),
    };
    let scaling = scaling::resolve(ctx, &defaults.scaling, &own_scaling)?;
    let async_invoke = crate::async_invoke::read(ctx, &fields, &path)?;
    let events = match fields.get("events") {
        Some(n) => events::read(ctx, n, &path, &defaults.api)?,
        None => Vec::new(),
    };
    if is_web {
        if let Some((_, loc)) = events
            .iter()
            .find(|(e, _)| matches!(e, Event::Schedule { .. }))
        {
            return Err(ctx.error(
                *loc,
                format!(
                    "web {name} has a schedule, but {}",
                    rules::SCHEDULE_NEEDS_LAMBDA
                ),
            ));
        }
        let batch_source = events.iter().find_map(|(e, loc)| match e {
            Event::Stream(_) => Some(("stream", loc)),
            Event::Sqs(_) => Some(("sqs", loc)),
            _ => None,
        });
        if let Some((kind, loc)) = batch_source {
            return Err(ctx.error(
                *loc,
                format!(
                    "web {name} has a {kind} event, but {kind} events need a lambda function (a handler receives the batch)"
                ),
            ));
        }
    }

    // The full name is what paths and cgroups are made of.
    let full_name = match fields.get("name") {
        Some(node) => explicit_name(ctx, node)?,
        None => {
            let name = format!("{}-{}-{short_name}", defaults.service, defaults.stage);
            names::check(NameKind::Function, &name).map_err(|m| ctx.error(key.loc, m))?;
            name
        }
    };
    let spec = FunctionSpec {
        name: full_name,
        short_name,
        kind,
        environment,
        memory_size,
        timeout_secs,
        concurrency,
        scaling,
        events: events.iter().map(|(e, _)| e.clone()).collect(),
        stage_routing: defaults.stage_routing,
        async_invoke,
    };
    Ok((spec, events))
}

/// `functions.<key>.name`: the function's name on the server instead of
/// `{service}-{stage}-{key}`, as `FunctionName` on AWS (the rule of
/// [`NameKind::Function`]: Lambda's, starting with a letter or digit).
fn explicit_name(ctx: &Ctx<'_>, node: &Node) -> Result<String, ManifestError> {
    let name = ctx.non_empty(node, "name")?;
    names::check(NameKind::Function, &name).map_err(|m| ctx.error(node.loc, m))?;
    Ok(name)
}

/// A CloudFormation intrinsic function (`{Ref: X}`, `{"Fn::GetAtt": [..]}`,
/// `Fn::Join`, `Fn::Sub`, …) written as a value: a mapping with one key that
/// names it. Returns that name.
fn cloudformation_intrinsic(node: &Node) -> Option<String> {
    let Value::Map(entries) = &node.value else {
        return None;
    };
    let [(key, _)] = entries.as_slice() else {
        return None;
    };
    let key = key.key_text();
    (key == "Ref" || key == "Condition" || key.starts_with("Fn::")).then_some(key)
}

/// `environment:` values may be strings, numbers or booleans (`DEBUG: true`);
/// they are passed on as text.
pub(crate) fn read_environment(
    ctx: &Ctx<'_>,
    node: &Node,
) -> Result<BTreeMap<String, String>, ManifestError> {
    let node = ctx.val(node)?;
    let entries: &[(Node, Node)] = match &node.value {
        Value::Map(entries) => entries,
        Value::Null => &[],
        _ => {
            return Err(ctx.expected(
                &node,
                "environment",
                "a mapping of variable names to values",
            ))
        }
    };
    let mut env = BTreeMap::new();
    for (key, value) in entries {
        let name = key.key_text();
        // Names with `=` or NUL cannot be passed to a process at all.
        if name.is_empty() || name.contains(['=', '\0']) || !matches!(key.value, Value::Str(_)) {
            return Err(ctx.error(
                key.loc,
                format!("invalid environment variable name `{name}`"),
            ));
        }
        let value = ctx.val(value)?;
        if let Some(function) = cloudformation_intrinsic(&value) {
            // Resources live in AWS's CloudFormation, which rouse does not
            // run: the deploy goes on, and says what the value would have been.
            ctx.warn(
                value.loc,
                format!("environment variable `{name}` is a CloudFormation `{function}`, which rouse cannot resolve; it is set to an empty value"),
            );
            env.insert(name, String::new());
            continue;
        }
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
            return Err(ctx.error(
                value.loc,
                format!("environment variable `{name}` contains a NUL character"),
            ));
        }
        env.insert(name, text);
    }
    Ok(env)
}
