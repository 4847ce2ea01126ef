//! One deploy: checks that nothing clashes, then replaces a service+stage's
//! functions, versions and routes in a single transaction.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use rouse_manifest::{DeploySpec, Event, FunctionSpec, StageRouting};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{delete_function, get_function, shape_name};
use crate::{FunctionRecord, RouteRecord, RouteShape, StoreError};

pub(crate) fn deploy(
    conn: &mut Connection,
    spec: &DeploySpec,
    artifact: &str,
) -> Result<Vec<FunctionRecord>, StoreError> {
    validate_names(spec)?;
    let routes = spec_routes(spec)?;

    // Immediate: take the write lock up front, so the checks and the writes
    // see the same state even with another process on the same database.
    // Any early return drops `tx`, which rolls everything back.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    check_foreign_routes(&tx, spec, &routes)?;
    check_function_owners(&tx, spec)?;

    let (service, stage) = (spec.service.as_str(), spec.stage.as_str());
    let existing: Vec<String> = tx
        .prepare("SELECT name FROM functions WHERE service = ?1 AND stage = ?2")?
        .query_map(params![service, stage], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let wanted: HashSet<&str> = spec.functions.iter().map(|f| f.name.as_str()).collect();
    for name in existing.iter().filter(|n| !wanted.contains(n.as_str())) {
        delete_function(&tx, name)?;
    }
    tx.execute(
        "DELETE FROM routes WHERE function IN
           (SELECT name FROM functions WHERE service = ?1 AND stage = ?2)",
        params![service, stage],
    )?;

    let now = now();
    for function in &spec.functions {
        write_version(&tx, service, stage, function, artifact, now)?;
    }
    insert_routes(&tx, &routes)?;

    let mut records = Vec::with_capacity(spec.functions.len());
    for function in &spec.functions {
        let record = get_function(&tx, &function.name)?.ok_or_else(|| {
            StoreError::Corrupt(format!("function {} vanished during deploy", function.name))
        })?;
        records.push(record);
    }
    tx.commit()?;
    Ok(records)
}

/// A new version of one existing function from `artifact` and `function`
/// (an environment change or a rollback): its routes follow the new spec,
/// with the same conflict checks as a deploy.
pub(crate) fn replace_version(
    conn: &mut Connection,
    function: &FunctionSpec,
    artifact: &str,
) -> Result<FunctionRecord, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = get_function(&tx, &function.name)?
        .ok_or_else(|| StoreError::UnknownFunction(function.name.clone()))?;
    let spec = DeploySpec {
        service: current.service.clone(),
        stage: current.stage.clone(),
        functions: vec![function.clone()],
    };
    let routes = spec_routes(&spec)?;
    check_foreign_routes(&tx, &spec, &routes)?;
    tx.execute("DELETE FROM routes WHERE function = ?1", [&function.name])?;
    write_version(&tx, &spec.service, &spec.stage, function, artifact, now())?;
    insert_routes(&tx, &routes)?;
    let record = get_function(&tx, &function.name)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "function {} vanished during an update",
            function.name
        ))
    })?;
    tx.commit()?;
    Ok(record)
}

fn insert_routes(tx: &Transaction<'_>, routes: &[RouteRecord]) -> Result<(), StoreError> {
    for route in routes {
        tx.execute(
            "INSERT INTO routes (function, method, path, shape, stage_routing)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                route.function,
                route.method,
                route.path,
                shape_name(route.shape),
                route.stage_routing.as_str()
            ],
        )?;
    }
    Ok(())
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The path template as far as matching goes: `/users/{id}` and
/// `/users/{userId}` match the same requests, so they are the same route
/// (and so are `/a/` and `/a`: the router ignores empty segments).
fn template_key(path: &str) -> String {
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

fn methods_overlap(a: &str, b: &str) -> bool {
    a == b || a == "ANY" || b == "ANY"
}

fn validate_names(spec: &DeploySpec) -> Result<(), StoreError> {
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
fn spec_routes(spec: &DeploySpec) -> Result<Vec<RouteRecord>, StoreError> {
    let mut routes: Vec<RouteRecord> = Vec::new();
    for function in &spec.functions {
        for event in &function.events {
            let (http, shape) = match event {
                Event::Http(http) => (http, RouteShape::Http),
                Event::HttpApi(http) => (http, RouteShape::HttpApi),
                Event::Schedule { .. } | Event::Stream(_) => continue,
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

/// Refuses routes already owned by another service+stage.
fn check_foreign_routes(
    tx: &Transaction<'_>,
    spec: &DeploySpec,
    routes: &[RouteRecord],
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare(
        "SELECT r.function, r.method, r.path, r.stage_routing, f.service, f.stage FROM routes r
         JOIN functions f ON f.name = r.function
         WHERE f.service <> ?1 OR f.stage <> ?2",
    )?;
    let rows = stmt.query_map(params![spec.service, spec.stage], |row| {
        Ok(Taken {
            function: row.get(0)?,
            method: row.get(1)?,
            path: row.get(2)?,
            stage_routing: row.get(3)?,
            service: row.get(4)?,
            stage: row.get(5)?,
        })
    })?;
    // Keyed by scope: a server may hold many thousands of routes.
    let mut taken: HashMap<(String, String), Vec<Taken>> = HashMap::new();
    for row in rows {
        let row = row?;
        let routing = StageRouting::parse(&row.stage_routing).unwrap_or_default();
        taken
            .entry(route_scope(&row.stage, routing, &row.path))
            .or_default()
            .push(row);
    }

    for route in routes {
        let scope = route_scope(&spec.stage, route.stage_routing, &route.path);
        let clash = taken.get(&scope).and_then(|owners| {
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

/// A route another service or stage owns.
struct Taken {
    function: String,
    method: String,
    path: String,
    stage_routing: String,
    service: String,
    stage: String,
}

/// Refuses to take over a function name that another service+stage owns.
fn check_function_owners(tx: &Transaction<'_>, spec: &DeploySpec) -> Result<(), StoreError> {
    for function in &spec.functions {
        let owner: Option<(String, String)> = tx
            .query_row(
                "SELECT service, stage FROM functions WHERE name = ?1",
                [&function.name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        match owner {
            Some((service, stage)) if service != spec.service || stage != spec.stage => {
                return Err(StoreError::FunctionConflict {
                    name: function.name.clone(),
                    service,
                    stage,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

fn write_version(
    tx: &Transaction<'_>,
    service: &str,
    stage: &str,
    function: &FunctionSpec,
    artifact: &str,
    now: i64,
) -> Result<(), StoreError> {
    // MAX rather than current + 1: should current ever point back (a
    // rollback), a new deploy must still get a number never used before.
    let version: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE function = ?1",
        [&function.name],
        |row| row.get(0),
    )?;
    let spec_json = serde_json::to_string(function)
        .map_err(|e| StoreError::Corrupt(format!("function {}: {e}", function.name)))?;
    tx.execute(
        "INSERT INTO functions (name, service, stage, current_version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (name) DO UPDATE
         SET current_version = excluded.current_version, updated_at = excluded.updated_at",
        params![function.name, service, stage, version, now],
    )?;
    tx.execute(
        "INSERT INTO versions (function, version, artifact, spec_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![function.name, version, artifact, spec_json, now],
    )?;
    Ok(())
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
}
