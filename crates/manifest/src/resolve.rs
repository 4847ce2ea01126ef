//! The whole manifest: top level, `provider:`, stage, functions, and the
//! checks that span functions.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::api_policy::{self, ApiSettings};
use crate::ctx::{Ctx, Section};
use crate::error::ManifestError;
use crate::function::{self, Defaults};
use crate::names::{self, NameKind};
use crate::scaling::{self, ScalingLayer};
use crate::vars::{EnvLookup, Vars};
use crate::yaml::{Loc, Node, Value};
use crate::{DeploySpec, Event, Flavor, LoadOptions, StageRouting};

const TOP_KEYS: &[&str] = &[
    "service",
    "provider",
    "scaling",
    "functions",
    "stageRouting",
];
/// Keys of `custom.rouse` in serverless.yml: where a Serverless user keeps
/// settings for a tool other than the framework.
const CUSTOM_ROUSE_KEYS: &[&str] = &["stageRouting"];
const PROVIDER_KEYS: &[&str] = &[
    "name",
    "runtime",
    "stage",
    "region",
    "environment",
    "memorySize",
    "timeout",
    "httpApi",
];
const DEFAULT_STAGE: &str = "dev";

/// Turns a parsed document into a [`DeploySpec`] and the warnings met on the way.
pub(crate) fn resolve(
    root: &Node,
    file: &str,
    flavor: Flavor,
    opts: &LoadOptions,
    env: EnvLookup<'_>,
) -> Result<(DeploySpec, Vec<String>), ManifestError> {
    let warnings = RefCell::new(Vec::new());
    let vars = match flavor {
        Flavor::Serverless => Some(Vars::new(root, file, opts.stage.clone(), env, &warnings)),
        Flavor::Rouse => None,
    };
    let mut ctx = Ctx {
        file,
        flavor,
        vars,
        warnings: &warnings,
        queue_resources: Default::default(),
    };
    if !matches!(root.value, Value::Map(_)) {
        return Err(ctx.error(
            root.loc,
            format!(
                "the manifest must be a mapping with `service`, `provider` and `functions`, found {}",
                root.describe()
            ),
        ));
    }
    // serverless.yml's `resources` are read for their queues only.
    let top_keys: Vec<&str> = match flavor {
        Flavor::Serverless => TOP_KEYS.iter().copied().chain(["resources"]).collect(),
        Flavor::Rouse => TOP_KEYS.to_vec(),
    };
    let top = ctx.fields(root, "manifest", Section { name: "", path: "" }, &top_keys)?;
    if let Some(resources) = top.get("resources") {
        ctx.queue_resources = crate::sqs_event::queue_resources(&ctx, resources)?;
    }

    let service = match top.get("service") {
        Some(n) => service_name(&ctx, n)?,
        None => {
            return Err(ctx.error(
                root.loc,
                "missing `service`: the name of this service, like `service: shop`",
            ))
        }
    };

    let provider_node = match top.get("provider") {
        Some(n) => ctx.val(n)?.into_owned(),
        None => Node::new(Value::Null, root.loc),
    };
    let provider = ctx.fields(
        &provider_node,
        "provider",
        Section {
            name: "provider",
            path: "provider",
        },
        PROVIDER_KEYS,
    )?;

    // The stage comes first: in serverless.yml other values refer to it.
    let stage = match (&opts.stage, provider.get("stage")) {
        (Some(s), _) => {
            check_stage(s).map_err(|m| ManifestError::whole_file(file, format!("--stage: {m}")))?;
            s.clone()
        }
        (None, Some(n)) => {
            let s = ctx.string(n, "stage")?;
            check_stage(&s).map_err(|m| ctx.error(n.loc, m))?;
            s
        }
        (None, None) => DEFAULT_STAGE.to_owned(),
    };
    if let Some(vars) = ctx.vars.as_mut() {
        vars.set_stage(stage.clone());
    }

    for key in ["name", "region"] {
        if let Some(n) = provider.get(key) {
            // Only checked for type: rouse runs the same everywhere.
            ctx.string(n, key)?;
        }
    }
    let mut api = ApiSettings {
        name_prefix: format!("{service}-{stage}-"),
        ..ApiSettings::default()
    };
    if let Some(n) = provider.get("httpApi") {
        api_policy::read_http_api(&ctx, n, &mut api)?;
    }
    if let Some(Value::Map(entries)) = top.get("functions").map(|n| &n.value) {
        api.function_keys = entries.iter().map(|(k, _)| k.key_text()).collect();
    }
    let defaults = Defaults {
        api,
        service: service.clone(),
        stage: stage.clone(),
        runtime: provider
            .get("runtime")
            .map(|n| ctx.non_empty(n, "runtime"))
            .transpose()?,
        environment: match provider.get("environment") {
            Some(n) => function::read_environment(&ctx, n)?,
            None => BTreeMap::new(),
        },
        memory_size: provider
            .get("memorySize")
            .map(|n| ctx.whole_u32(n, "memorySize", 1))
            .transpose()?,
        timeout: provider
            .get("timeout")
            .map(|n| ctx.seconds(n, "timeout"))
            .transpose()?,
        stage_routing: stage_routing(&ctx, root, &top)?,
        scaling: match top.get("scaling") {
            Some(n) => scaling::read(
                &ctx,
                n,
                Section {
                    name: "scaling",
                    path: "scaling",
                },
            )?,
            None => ScalingLayer::default(),
        },
    };

    let functions_node = match top.entry("functions") {
        Some((_, n)) => ctx.val(n)?,
        None => {
            return Err(ctx.error(
                root.loc,
                "missing `functions`: define at least one web or lambda function",
            ))
        }
    };
    let entries: &[(Node, Node)] = match &functions_node.value {
        Value::Map(entries) if !entries.is_empty() => entries,
        Value::Map(_) | Value::Null => {
            return Err(ctx.error(
                functions_node.loc,
                "`functions` is empty: define at least one function",
            ))
        }
        _ => {
            return Err(ctx.expected(
                &functions_node,
                "functions",
                "a mapping of function names to functions",
            ))
        }
    };
    let mut functions = Vec::with_capacity(entries.len());
    let mut routes = Routes::default();
    for (key, value) in entries {
        let (spec, events) = function::read(&ctx, key, value, &defaults)?;
        for (event, loc) in &events {
            routes.add(&ctx, &spec.short_name, event, *loc)?;
        }
        functions.push(spec);
    }
    crate::async_invoke::qualify(&mut functions);
    api_policy::finish(&mut functions, &defaults.api);

    let spec = DeploySpec {
        service,
        stage,
        functions,
    };
    drop(ctx);
    // Reported in file order, as a reader goes through the file.
    let mut warnings = warnings.into_inner();
    warnings.sort_by_key(|(loc, _)| (loc.line, loc.col));
    Ok((spec, warnings.into_iter().map(|(_, w)| w).collect()))
}

/// `stageRouting` (rouse.yaml, top level) or `custom.rouse.stageRouting`
/// (serverless.yml). Defaults: `none` for rouse.yaml, so `/` stays `/` for a
/// single-stage project; `prefix` for serverless.yml, which is what API
/// Gateway REST stages and serverless-offline do.
fn stage_routing(
    ctx: &Ctx<'_>,
    root: &Node,
    top: &crate::ctx::Fields<'_>,
) -> Result<StageRouting, ManifestError> {
    let top_level = top.get("stageRouting").map(Cow::Borrowed);
    let node = match ctx.flavor {
        Flavor::Rouse => top_level,
        Flavor::Serverless => match custom_rouse(ctx, root)? {
            Some(custom) => {
                let fields = ctx.fields(
                    &custom,
                    "custom.rouse",
                    Section {
                        name: "custom.rouse",
                        path: "custom.rouse",
                    },
                    CUSTOM_ROUSE_KEYS,
                )?;
                fields
                    .get("stageRouting")
                    .map(|n| Cow::Owned(n.clone()))
                    .or(top_level)
            }
            None => top_level,
        },
    };
    let Some(node) = node else {
        return Ok(match ctx.flavor {
            Flavor::Rouse => StageRouting::None,
            Flavor::Serverless => StageRouting::Prefix,
        });
    };
    let text = ctx.string(&node, "stageRouting")?;
    StageRouting::parse(&text).ok_or_else(|| {
        ctx.error(
            node.loc,
            format!(
                "`stageRouting` must be one of {}, found {text:?}",
                StageRouting::NAMES.join(", ")
            ),
        )
    })
}

/// The `custom.rouse` mapping of a serverless.yml, if there is one. Only
/// this entry of `custom` is resolved: the rest may hold variables of
/// sources rouse does not know, which are fine as long as nothing uses them.
fn custom_rouse<'n>(ctx: &Ctx<'_>, root: &'n Node) -> Result<Option<Node>, ManifestError> {
    let Value::Map(entries) = &root.value else {
        return Ok(None);
    };
    let find = |entries: &'n [(Node, Node)], key: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
            .map(|(_, v)| v)
    };
    let Some(custom) = find(entries, "custom") else {
        return Ok(None);
    };
    let Value::Map(custom_entries) = &custom.value else {
        return Ok(None);
    };
    match find(custom_entries, "rouse") {
        Some(rouse) => Ok(Some(ctx.val(rouse)?.into_owned())),
        None => Ok(None),
    }
}

fn service_name(ctx: &Ctx<'_>, node: &Node) -> Result<String, ManifestError> {
    // The older Serverless form `service: { name: shop, … }`.
    let resolved = ctx.val(node)?;
    let node = match &resolved.value {
        Value::Map(_) => resolved.get("name").ok_or_else(|| {
            ctx.error(
                node.loc,
                "`service` as a mapping needs a `name`, like `service: { name: shop }`",
            )
        })?,
        _ => node,
    };
    let name = ctx.string(node, "service")?;
    names::check(NameKind::Service, &name).map_err(|m| ctx.error(node.loc, m))?;
    Ok(name)
}

/// Stages end up in function names (`shop-prod-site`), so they follow the
/// same rules as function keys.
fn check_stage(stage: &str) -> Result<(), String> {
    names::check(NameKind::Stage, stage)
}

/// Routes seen so far, to reject two events claiming the same method and
/// path: the gateway could only pick one of them. `http` and `httpApi` are
/// kept apart, as on AWS, where they are two different APIs.
#[derive(Default)]
struct Routes {
    seen: BTreeMap<(&'static str, String, String), (String, Loc)>,
}

impl Routes {
    fn add(
        &mut self,
        ctx: &Ctx<'_>,
        function: &str,
        event: &Event,
        loc: Loc,
    ) -> Result<(), ManifestError> {
        let (kind, http) = match event {
            Event::Http(http) => ("http", http),
            Event::HttpApi(http) => ("httpApi", http),
            Event::Schedule { .. } | Event::Stream(_) | Event::Sqs(_) => return Ok(()),
        };
        let key = (kind, http.method.clone(), route_shape(&http.path));
        if let Some((other, other_loc)) = self.seen.get(&key) {
            return Err(ctx.error(
                loc,
                format!(
                    "{kind} route `{} {}` is already used by function `{other}` (line {})",
                    http.method, http.path, other_loc.line
                ),
            ));
        }
        self.seen.insert(key, (function.to_owned(), loc));
        Ok(())
    }
}

/// `/users/{id}` and `/users/{userId}` match the same requests.
fn route_shape(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.strip_prefix('{') {
            Some(rest) if rest.ends_with("+}") => "{+}",
            Some(_) => "{}",
            None => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}
