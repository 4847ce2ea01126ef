//! The deploy and alias rules both engines apply: plain functions over the
//! spec and the rows an engine read, so the SQL of each engine only fetches
//! and writes.

use std::collections::{HashMap, HashSet};

use rouse_manifest::{DeploySpec, Event, FunctionSpec, StageRouting};

use crate::{Canary, FunctionRecord, RouteRecord, RouteShape, StoreError};

/// The path template as far as matching goes: `/users/{id}` and
/// `/users/{userId}` match the same requests, so they are the same route
/// (and so are `/a/` and `/a`: the router ignores empty segments).
pub(crate) fn template_key(path: &str) -> String {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.strip_prefix('{') {
            Some(rest) if rest.ends_with("+}") => "{+}",
            Some(rest) if rest.ends_with('}') => "{}",
            _ => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Where a route is served, as far as clashes go: the host it answers on
/// (empty: any host) and its template key with the stage prefix in front
/// when there is one. Two routes clash only with the same scope.
fn route_scope(stage: &str, routing: StageRouting, path: &str) -> (String, String) {
    match routing {
        StageRouting::None => (String::new(), template_key(path)),
        StageRouting::Prefix => (String::new(), template_key(&format!("/{stage}/{path}"))),
        StageRouting::Host => (stage.to_ascii_lowercase(), template_key(path)),
    }
}

pub(crate) fn methods_overlap(a: &str, b: &str) -> bool {
    a == b || a == "ANY" || b == "ANY"
}

pub(crate) fn validate_names(spec: &DeploySpec) -> Result<(), StoreError> {
    // Names become paths and cgroups: the store keeps none that the
    // manifest's rules refuse, whoever calls it.
    rouse_manifest::names::check_spec(spec).map_err(StoreError::InvalidSpec)?;
    let mut names = HashSet::new();
    for function in &spec.functions {
        if function.name.is_empty() {
            return Err(StoreError::InvalidSpec(
                "a function has an empty name".into(),
            ));
        }
        if !names.insert(function.name.as_str()) {
            return Err(StoreError::InvalidSpec(format!(
                "function {} appears more than once",
                function.name
            )));
        }
    }
    Ok(())
}

/// The routes a spec asks for, checked against each other.
pub(crate) fn spec_routes(spec: &DeploySpec) -> Result<Vec<RouteRecord>, StoreError> {
    let mut routes: Vec<RouteRecord> = Vec::new();
    for function in &spec.functions {
        for event in &function.events {
            let (http, shape) = match event {
                Event::Http(http) => (http, RouteShape::Http),
                Event::HttpApi(http) => (http, RouteShape::HttpApi),
                Event::Schedule { .. } | Event::Stream(_) | Event::Sqs(_) => continue,
            };
            let route = RouteRecord {
                function: function.name.clone(),
                method: http.method.to_ascii_uppercase(),
                path: http.path.clone(),
                shape,
                stage_routing: function.stage_routing,
            };
            if routes.contains(&route) {
                // The same event listed twice says nothing new.
                continue;
            }
            let key = route_scope(&spec.stage, route.stage_routing, &route.path);
            let clash = routes.iter().find(|r| {
                methods_overlap(&r.method, &route.method)
                    && route_scope(&spec.stage, r.stage_routing, &r.path) == key
            });
            if let Some(owner) = clash {
                return Err(StoreError::RouteConflict {
                    method: route.method,
                    path: route.path,
                    owner: owner.function.clone(),
                });
            }
            routes.push(route);
        }
    }
    Ok(routes)
}

/// A route another service or stage owns, as an engine read it.
pub(crate) struct Taken {
    pub function: String,
    pub method: String,
    pub path: String,
    pub stage_routing: String,
    pub service: String,
    pub stage: String,
}

/// Refuses routes already owned by another service+stage (`taken`).
pub(crate) fn check_foreign_routes(
    spec: &DeploySpec,
    routes: &[RouteRecord],
    taken: Vec<Taken>,
) -> Result<(), StoreError> {
    // Keyed by scope: a server may hold many thousands of routes.
    let mut by_scope: HashMap<(String, String), Vec<Taken>> = HashMap::new();
    for row in taken {
        let routing = StageRouting::parse(&row.stage_routing).unwrap_or_default();
        by_scope
            .entry(route_scope(&row.stage, routing, &row.path))
            .or_default()
            .push(row);
    }
    for route in routes {
        let scope = route_scope(&spec.stage, route.stage_routing, &route.path);
        let clash = by_scope.get(&scope).and_then(|owners| {
            owners
                .iter()
                .find(|t| methods_overlap(&t.method, &route.method))
        });
        if let Some(owner) = clash {
            if owner.service == spec.service && route.stage_routing == StageRouting::None {
                return Err(StoreError::StageRouteConflict {
                    method: route.method.clone(),
                    path: route.path.clone(),
                    owner: owner.function.clone(),
                    stage: owner.stage.clone(),
                });
            }
            return Err(StoreError::RouteConflict {
                method: route.method.clone(),
                path: route.path.clone(),
                owner: owner.function.clone(),
            });
        }
    }
    Ok(())
}

/// Refuses to take over a function name that another service+stage owns;
/// `owner` is the (service, stage) the name has now, if any.
pub(crate) fn check_function_owner(
    spec: &DeploySpec,
    name: &str,
    owner: Option<(String, String)>,
) -> Result<(), StoreError> {
    match owner {
        Some((service, stage)) if service != spec.service || stage != spec.stage => {
            Err(StoreError::FunctionConflict {
                name: name.to_string(),
                service,
                stage,
            })
        }
        _ => Ok(()),
    }
}

/// `$LATEST` is what an unqualified call runs; a number is a version.
/// Otherwise Lambda's rule: letters, digits, `-` and `_`, at most 128.
pub(crate) fn check_alias(alias: &str, canary: Option<Canary>) -> Result<(), StoreError> {
    rouse_manifest::names::check(rouse_manifest::names::NameKind::Alias, alias)
        .map_err(StoreError::InvalidAlias)?;
    if let Some(c) = canary {
        if !(c.weight.is_finite() && (0.0..=1.0).contains(&c.weight)) {
            return Err(StoreError::InvalidAlias(format!(
                "the canary weight must be between 0 and 1, found {}",
                c.weight
            )));
        }
    }
    Ok(())
}

/// Which spec a spec_json column holds, or `Corrupt` naming the function.
pub(crate) fn parse_spec(
    function: &str,
    version: i64,
    json: &str,
) -> Result<rouse_manifest::FunctionSpec, StoreError> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::Corrupt(format!(
            "function {function}: spec of version {version} does not parse: {e}"
        ))
    })
}

pub(crate) fn shape_name(shape: RouteShape) -> &'static str {
    match shape {
        RouteShape::Http => "http",
        RouteShape::HttpApi => "httpApi",
    }
}

/// A routes row as both engines store it: function, method, path, shape,
/// stage routing.
pub(crate) fn route_record(
    (function, method, path, shape, stage_routing): (String, String, String, String, String),
) -> Result<RouteRecord, StoreError> {
    let shape = match shape.as_str() {
        "http" => RouteShape::Http,
        "httpApi" => RouteShape::HttpApi,
        other => {
            return Err(StoreError::Corrupt(format!(
                "function {function}: unknown route shape {other:?}"
            )))
        }
    };
    let stage_routing = StageRouting::parse(&stage_routing).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "function {function}: unknown stage routing {stage_routing:?}"
        ))
    })?;
    Ok(RouteRecord {
        function,
        method,
        path,
        shape,
        stage_routing,
    })
}

pub(crate) fn version_number(what: &str, version: i64) -> Result<u32, StoreError> {
    u32::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("{what}: version {version} is out of range")))
}

/// A row as stored, before the parts that can be corrupt are parsed.
pub(crate) struct RawRecord {
    pub name: String,
    pub service: String,
    pub stage: String,
    pub version: i64,
    pub artifact: Option<String>,
    pub spec_json: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RawRecord {
    pub(crate) fn parse(self) -> Result<FunctionRecord, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("function {}: {what}", self.name));
        let (Some(artifact), Some(spec_json)) = (&self.artifact, &self.spec_json) else {
            return Err(corrupt(format!(
                "current version {} is missing",
                self.version
            )));
        };
        let version = u32::try_from(self.version)
            .map_err(|_| corrupt(format!("version {} is out of range", self.version)))?;
        let spec: FunctionSpec = serde_json::from_str(spec_json)
            .map_err(|e| corrupt(format!("spec of version {version} does not parse: {e}")))?;
        Ok(FunctionRecord {
            artifact: artifact.clone(),
            name: self.name,
            service: self.service,
            stage: self.stage,
            version,
            spec,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_ignore_parameter_names() {
        assert_eq!(template_key("/users/{id}"), template_key("/users/{userId}"));
        assert_eq!(template_key("/{proxy+}"), template_key("/{path+}"));
        assert_ne!(template_key("/users/{id}"), template_key("/users/{id+}"));
        assert_ne!(template_key("/users/{id}"), template_key("/users/me"));
    }

    #[test]
    fn any_overlaps_every_method() {
        assert!(methods_overlap("ANY", "GET"));
        assert!(methods_overlap("POST", "ANY"));
        assert!(!methods_overlap("GET", "POST"));
    }

    #[test]
    fn alias_names_follow_lambda_and_weights_stay_in_range() {
        assert!(check_alias("live", None).is_ok());
        assert!(check_alias("12", None).is_err());
        assert!(check_alias("a b", None).is_err());
        let canary = |weight| Some(Canary { version: 2, weight });
        assert!(check_alias("live", canary(0.5)).is_ok());
        assert!(check_alias("live", canary(1.5)).is_err());
        assert!(check_alias("live", canary(f64::NAN)).is_err());
    }
}
