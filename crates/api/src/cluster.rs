//! This node's part in a cluster (a PostgreSQL store): its row, refreshed
//! every [`HEARTBEAT`], and the watcher that puts changes made on other
//! nodes in service here. On SQLite neither runs: the one node applies its
//! own changes as it makes them.
//!
//! The watcher wakes on a `NOTIFY` (the hint) or every [`POLL`] (the
//! truth, should a notification be lost) and compares the store's
//! generation with the last one it applied. Changes this node made itself
//! are already in service; applying them again finds nothing to do, as the
//! pool already runs those versions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rouse_store::{AliasRecord, FunctionRecord, NodeInfo, StoreError, HEARTBEAT};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};

use crate::AdminState;

/// How often the watcher reads the generation when no notification came.
pub const POLL: Duration = Duration::from_millis(500);
/// The setting that holds the sha256 of the cluster's admin token.
const TOKEN_HASH: &str = "admin_token.sha256";
/// The setting that holds the secret forwarded requests are signed with.
const FORWARD_SECRET: &str = "cluster.forward_secret";

/// The cluster's signing secret: made by the first node (32 random bytes,
/// hex), read by every other one.
pub async fn forward_secret(store: &rouse_store::Store) -> Result<Vec<u8>, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Config(format!("no randomness for the cluster secret: {e}")))?;
    let stored = store
        .setting_or_insert(FORWARD_SECRET, &hex::encode(bytes))
        .await?;
    Ok(stored.into_bytes())
}

/// This node as it registers: `name` from `--node-name`, else the host
/// name and the gateway's port (stable across restarts, distinct for
/// nodes sharing a machine).
pub fn node_info(
    name: Option<&str>,
    gateway: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    internal: Option<std::net::SocketAddr>,
) -> NodeInfo {
    let name = match name.map(str::trim) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => format!("{}:{}", host_name(), gateway.port()),
    };
    NodeInfo {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        gateway: gateway.to_string(),
        admin: admin.to_string(),
        internal: internal.map(|a| a.to_string()).unwrap_or_default(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: unix_now(),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What a node's admin token means for joining: the first node of a
/// cluster stores the hash of its token; every other node must come with
/// the same token (the CLI on any machine reads it as before: the data
/// dir's token file or `ROUSE_ADMIN_TOKEN`), or it refuses to start.
pub fn token_check(stored_hash: &str, token: &str) -> Result<(), String> {
    if stored_hash == token_hash(token) {
        Ok(())
    } else {
        Err(
            "this node's admin token is not the cluster's: start it with the same \
             ROUSE_ADMIN_TOKEN as the other nodes, or copy DATA/admin-token from a node \
             of the cluster into this node's data directory"
                .into(),
        )
    }
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Stores this node's token hash if the cluster has none yet, then checks
/// the token against the cluster's.
pub async fn adopt_token(
    state_store: &rouse_store::Store,
    token: &str,
) -> Result<Result<(), String>, StoreError> {
    let stored = state_store
        .setting_or_insert(TOKEN_HASH, &token_hash(token))
        .await?;
    Ok(token_check(&stored, token))
}

/// Registers this node and keeps its row and its view of the store fresh
/// until `shutdown` flips. The handle is the heartbeat task, which ends by
/// marking the row gone.
pub async fn join(
    state: Arc<AdminState>,
    shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    state.store.register_node(&state.node).await?;
    state.gateway.join_cluster(rouse_gateway::ClusterIdentity {
        name: state.node.name.clone(),
        id: state.node.id.clone(),
        secret: forward_secret(&state.store).await?,
    });
    state.pool.keep_min_only_where_told();
    refresh_placement(&state).await?;
    let seen = Seen::load(&state).await?;
    tokio::spawn(watch_changes(state.clone(), seen, shutdown.clone()));
    Ok(tokio::spawn(heartbeat(state, shutdown)))
}

async fn heartbeat(state: Arc<AdminState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|down| *down) => break,
        }
        match state.store.heartbeat(&state.node).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(node = %state.node.name, "another node took this node's name: registering again");
                if let Err(err) = state.store.register_node(&state.node).await {
                    tracing::warn!(%err, "could not register this node");
                }
            }
            Err(err) => tracing::warn!(%err, "heartbeat failed"),
        }
    }
    if let Err(err) = state.store.deregister_node(&state.node).await {
        tracing::debug!(%err, "could not mark this node gone");
    }
}

/// What this node last put in service.
struct Seen {
    generation: i64,
    versions: HashMap<String, u32>,
    aliases: Vec<AliasRecord>,
}

impl Seen {
    /// Read before the functions, so a change landing in between is seen
    /// (again) at the next look rather than missed.
    async fn load(state: &AdminState) -> Result<Seen, StoreError> {
        let generation = state.store.generation().await?;
        let versions = state
            .store
            .list_functions()
            .await?
            .into_iter()
            .map(|f| (f.name, f.version))
            .collect();
        let aliases = state.store.all_aliases().await?;
        Ok(Seen {
            generation,
            versions,
            aliases,
        })
    }
}

async fn watch_changes(
    state: Arc<AdminState>,
    mut seen: Seen,
    mut shutdown: watch::Receiver<bool>,
) {
    let hint = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(state.clone(), hint.clone()));
    loop {
        tokio::select! {
            _ = hint.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait_for(|down| *down) => break,
        }
        match state.store.generation().await {
            Ok(generation) if generation == seen.generation => {}
            Ok(_) => match catch_up(&state, &seen).await {
                Ok(next) => seen = next,
                Err(err) => tracing::warn!(%err, "could not apply a change from the store"),
            },
            Err(err) => tracing::warn!(%err, "could not read the store's generation"),
        }
        // Nodes come and go without a change to the generation (a
        // heartbeat stops): the placement is read on every look.
        if let Err(err) = refresh_placement(&state).await {
            tracing::warn!(%err, "could not read the placement");
        }
    }
    listener.abort();
}

/// Keeps a LISTEN connection open, reconnecting after a pause.
async fn listen(state: Arc<AdminState>, hint: Arc<Notify>) {
    loop {
        if let Err(err) = state.store.listen(hint.clone()).await {
            tracing::debug!(%err, "change notifications stopped; polling until they resume");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn catch_up(state: &AdminState, seen: &Seen) -> Result<Seen, StoreError> {
    let next = Seen::load(state).await?;
    let records: Vec<FunctionRecord> = state.store.list_functions().await?;
    let delta = diff(&seen.versions, &next.versions);
    for name in &delta.removed {
        state.scheduler.remove_function(name);
        state.pool.remove(name);
    }
    state.gateway.reload_routes().await?;
    // Before new versions start: which of them this node keeps warm.
    refresh_placement(state).await?;
    for record in records.iter().filter(|r| delta.changed.contains(&r.name)) {
        crate::schedules::sync(&state.scheduler, record);
        if state.pool.current_version(&record.name) == Some(record.version) {
            continue; // this node made the change and runs it already
        }
        state.logs.platform(
            &record.name,
            &format!("version {} deployed on another node", record.version),
        );
        let (pool, name) = (state.pool.clone(), record.name.clone());
        // A new version rolls over in the background: one slow start must
        // not hold back the next change.
        tokio::spawn(async move {
            if let Err(err) = pool.reload_and_wait(&name).await {
                tracing::warn!(function = %name, %err, "new version did not start");
            }
        });
    }
    for (name, keep) in alias_changes(&seen.aliases, &next.aliases) {
        state.pool.drain_versions_except(&name, &keep);
    }
    Ok(next)
}

/// Reads nodes and placements, hands them to the gateway (which decides per
/// request where it is served), and brings this node's pool in line: the
/// first home of a function keeps its `minInstances`, and a function with
/// ready instances here that is no longer homed here drains them (they
/// finish their requests and stop; new requests go to its homes).
pub async fn refresh_placement(state: &AdminState) -> Result<(), StoreError> {
    let nodes = state.store.nodes().await?;
    let pins = state.store.placements().await?;
    state.gateway.set_placement(placement_of(&nodes, pins));
    let this = state.node.name.as_str();
    for name in state.gateway.function_names() {
        let homes = state.gateway.homes(&name);
        let first = homes.first().is_none_or(|home| home == this);
        if state.pool.set_keeps_min(&name, first) {
            let (pool, name) = (state.pool.clone(), name.clone());
            tokio::spawn(async move {
                if let Err(err) = pool.warm(&name).await {
                    tracing::warn!(function = %name, %err, "minInstances did not start");
                }
            });
        }
    }
    for name in state.pool.running_functions() {
        let homes = state.gateway.homes(&name);
        if homes.is_empty() || homes.iter().any(|home| home == this) {
            continue;
        }
        if state.pool.has_ready(&name) {
            let drained = state.pool.drain_function(&name);
            state.logs.platform(
                &name,
                &format!(
                    "served by {} now: {drained} instance(s) here finish their requests and stop",
                    homes.join(", ")
                ),
            );
        }
    }
    Ok(())
}

/// The nodes that may serve (alive, not draining, with an internal
/// address) and the pins.
pub(crate) fn placement_of(
    nodes: &[rouse_store::NodeRecord],
    pins: HashMap<String, Vec<String>>,
) -> rouse_gateway::Placement {
    let peers = nodes
        .iter()
        .filter(|n| {
            !n.draining
                && rouse_store::node_state(n.heartbeat_age, rouse_store::NODE_TTL)
                    == rouse_store::NodeState::Alive
        })
        .filter_map(|n| {
            Some(rouse_gateway::Peer {
                name: n.info.name.clone(),
                internal: n.info.internal.parse().ok()?,
            })
        })
        .collect();
    rouse_gateway::Placement { peers, pins }
}

/// Functions gone and functions with a new current version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Delta {
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

pub(crate) fn diff(before: &HashMap<String, u32>, after: &HashMap<String, u32>) -> Delta {
    let mut removed: Vec<String> = before
        .keys()
        .filter(|name| !after.contains_key(*name))
        .cloned()
        .collect();
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(name, version)| before.get(*name) != Some(version))
        .map(|(name, _)| name.clone())
        .collect();
    removed.sort();
    changed.sort();
    Delta { removed, changed }
}

/// An alias as far as serving goes: name, version, canary (version, weight bits).
type AliasKey = (String, u32, Option<(u32, u64)>);

/// For each function whose aliases changed, the versions they now serve.
pub(crate) fn alias_changes(
    before: &[AliasRecord],
    after: &[AliasRecord],
) -> BTreeMap<String, Vec<u32>> {
    let group = |aliases: &[AliasRecord]| {
        let mut by_function: BTreeMap<String, Vec<AliasKey>> = BTreeMap::new();
        for a in aliases {
            by_function.entry(a.function.clone()).or_default().push((
                a.name.clone(),
                a.version,
                a.canary.map(|c| (c.version, c.weight.to_bits())),
            ));
        }
        by_function
    };
    let (old, new) = (group(before), group(after));
    let mut out = BTreeMap::new();
    for function in old.keys().chain(new.keys()) {
        if old.get(function) != new.get(function) {
            let keep = new
                .get(function)
                .map(|list| {
                    list.iter()
                        .flat_map(|(_, v, canary)| std::iter::once(*v).chain(canary.map(|c| c.0)))
                        .collect()
                })
                .unwrap_or_default();
            out.insert(function.clone(), keep);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rouse_store::Canary;

    fn versions(list: &[(&str, u32)]) -> HashMap<String, u32> {
        list.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn diff_names_removed_and_newly_versioned_functions() {
        let cases = [
            (vec![], vec![], vec![], vec![]),
            (vec![("a", 1)], vec![("a", 1)], vec![], vec![]),
            (vec![("a", 1)], vec![("a", 2)], vec![], vec!["a"]),
            (
                vec![("a", 1), ("b", 1)],
                vec![("b", 1), ("c", 1)],
                vec!["a"],
                vec!["c"],
            ),
            // A rollback is a new, higher version too, but any difference counts.
            (vec![("a", 3)], vec![("a", 2)], vec![], vec!["a"]),
        ];
        for (before, after, removed, changed) in cases {
            let delta = diff(&versions(&before), &versions(&after));
            assert_eq!(delta.removed, removed, "{before:?} -> {after:?}");
            assert_eq!(delta.changed, changed, "{before:?} -> {after:?}");
        }
    }

    fn alias(function: &str, version: u32, canary: Option<(u32, f64)>) -> AliasRecord {
        AliasRecord {
            function: function.into(),
            name: "live".into(),
            version,
            canary: canary.map(|(version, weight)| Canary { version, weight }),
            updated_at: 0,
        }
    }

    #[test]
    fn alias_changes_list_the_versions_still_served() {
        let before = [alias("a", 1, None), alias("b", 2, None)];
        let after = [alias("a", 1, Some((3, 0.1))), alias("b", 2, None)];
        let changes = alias_changes(&before, &after);
        assert_eq!(
            changes.into_iter().collect::<Vec<_>>(),
            [("a".to_string(), vec![1, 3])]
        );
        let gone = alias_changes(&before, &[]);
        assert_eq!(gone.get("b"), Some(&vec![]));
        assert!(alias_changes(&before, &before).is_empty());
    }

    #[test]
    fn only_the_clusters_token_is_accepted() {
        let stored = token_hash("s3cret");
        assert!(token_check(&stored, "s3cret").is_ok());
        let refused = token_check(&stored, "other").unwrap_err();
        assert!(refused.contains("ROUSE_ADMIN_TOKEN"), "{refused}");
    }
}
