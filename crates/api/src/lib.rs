//! The admin API used by the CLI: JSON over HTTP behind a bearer token.
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/health` | liveness and counts |
//! | `POST /v1/artifacts` | upload a tar.gz, returns its sha256 |
//! | `POST /v1/deployments` | deploy a service+stage from an uploaded artifact |
//! | `GET /v1/functions`, `GET/DELETE /v1/functions/{name}` | list, show, remove |
//! | `GET /v1/functions/{name}/logs?lines=N&follow=true` | logs, optionally live |
//! | `GET /v1/functions/{name}/versions`, `POST …/rollback` | versions; roll back (`{"to": N}`) |
//! | `GET /v1/functions/{name}/aliases`, `PUT`/`DELETE …/aliases/{alias}` | aliases (`{"version": N, "canary": {"version": M, "weight": 0.1}}`) |
//! | `GET`/`PATCH /v1/functions/{name}/env` | environment; change it (`{"set": {}, "unset": []}`) |
//! | `ANY /v1/functions/{name}/invoke/{*path}` | call a web function directly |
//! | `POST /v1/keys`, `GET /v1/keys`, `DELETE /v1/keys/{id}` | access keys for the AWS-compatible APIs (the secret only in the create answer) |
//! | `GET /v1/nodes` | the nodes sharing the store (a cluster), alive, draining or dead |
//! | `POST /v1/nodes/{name}/drain` | mark a node draining (`{"draining": false}` undoes it) |
//! | `GET`/`PUT /v1/functions/{name}/placement` | a function's pinned nodes and homes; pin (`{"nodes": ["a"]}`) or automatic (`{"nodes": null}`) |
//! | `GET /v1/functions/{name}/events`, `GET …/events/{id}`, `POST …/events/redrive` | async invocations: pending and dead letters; queue dead letters again (`{"id": …}` or all) |
//! | `POST /v1/streams` (`{"name", "shards"}`), `GET /v1/streams` | streams: create; list with shards, records and each mapping's checkpoint and iterator age per shard |
//! | `GET /metrics` | Prometheus text format: per-function counters, instances, rouse's memory and fds |
//! | `/`, `/ui/…`, `/v1/dashboard/…` | the web dashboard (see `dashboard`) |

#![forbid(unsafe_code)]

mod aliases;
mod apply;
mod auth;
pub mod cluster;
mod dashboard;
mod deploy;
mod error;
pub mod events;
mod functions;
mod invoke;
mod keys;
mod logs;
mod metrics;
mod nodes;
mod placement;
mod rate_limit;
pub mod schedules;
mod streams;
pub mod types;
mod upload;
mod versions;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;
use rouse_gateway::Gateway;
use rouse_logs::LogBook;
use rouse_pool::Pool;
use rouse_store::Store;
use tokio::sync::watch;

/// Largest artifact accepted by `POST /v1/artifacts`.
pub const DEFAULT_MAX_ARTIFACT: usize = 256 * 1024 * 1024;

pub struct AdminState {
    pub store: Arc<Store>,
    pub pool: Pool,
    pub gateway: Gateway,
    pub logs: Arc<LogBook>,
    pub token: String,
    /// Base URL of the gateway as clients reach it, e.g. `http://127.0.0.1:8080`.
    pub public_url: String,
    /// With `--domain`, functions are also reachable at `{name}.{domain}`.
    pub domain: Option<String>,
    pub max_artifact_bytes: usize,
    /// Flips to true on shutdown, so `logs --tail` streams end and the
    /// admin server can drain.
    pub shutdown: watch::Receiver<bool>,
    /// Timers for `schedule` events.
    pub scheduler: rouse_triggers::Scheduler,
    /// This node, as it registers in a cluster.
    pub node: rouse_store::NodeInfo,
}

pub fn router(state: Arc<AdminState>) -> Router {
    let v1 = Router::new()
        .route("/health", get(functions::health))
        .route(
            "/artifacts",
            post(deploy::upload_artifact).layer(DefaultBodyLimit::disable()),
        )
        .route("/deployments", post(deploy::deploy))
        .route("/functions", get(functions::list))
        .route(
            "/functions/{name}",
            get(functions::show).delete(functions::remove),
        )
        .route("/functions/{name}/logs", get(logs::logs))
        .route("/functions/{name}/versions", get(versions::list))
        .route("/functions/{name}/rollback", post(versions::rollback))
        .route("/functions/{name}/aliases", get(aliases::list))
        .route(
            "/functions/{name}/aliases/{alias}",
            axum::routing::put(aliases::set).delete(aliases::remove),
        )
        .route(
            "/functions/{name}/env",
            get(versions::env).patch(versions::change_env),
        )
        .route("/functions/{name}/events", get(events::list))
        .route("/functions/{name}/events/redrive", post(events::redrive))
        .route("/functions/{name}/events/{id}", get(events::show))
        .route(
            "/functions/{name}/invoke",
            any(invoke::invoke_root).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/functions/{name}/invoke/{*path}",
            any(invoke::invoke).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/functions/{name}/placement",
            get(placement::show).put(placement::set),
        )
        .route("/nodes", get(nodes::list))
        .route("/nodes/{name}/drain", post(nodes::drain))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/streams", get(streams::list).post(streams::create))
        .route("/keys/{id}", axum::routing::delete(keys::remove));
    let guard = Arc::new(auth::Guard::new(state.clone()));
    let require_token = || axum::middleware::from_fn_with_state(guard.clone(), auth::require_token);
    let admin = Router::new()
        .nest("/v1", v1)
        .route("/metrics", get(metrics::metrics))
        .merge(dashboard::protected())
        .fallback(|| async { error::ApiError::not_found("route") })
        .layer(require_token())
        .with_state(state);
    let sessions = dashboard::sessions()
        .route_layer(require_token())
        .with_state(guard.clone());
    admin
        .merge(sessions)
        .merge(dashboard::public().with_state(guard))
}
