//! The one place a control-plane change the store has made is put in
//! service, always in the same order: functions that are gone stop
//! (schedules, then instances), the route table reloads, then each new
//! version gets its schedules, a platform log line, and its instances,
//! and the call returns once the new version is live (or known broken),
//! so the next request after the change sees it.

use rouse_store::FunctionRecord;

use crate::error::ApiError;
use crate::AdminState;

/// What made a new current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    Deployed,
    RolledBack,
    EnvironmentChanged,
}

/// Why functions went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// `DELETE /v1/functions/{name}`.
    Removed,
    /// A deploy of the service and stage no longer has them.
    ByDeploy,
}

/// A change already in the store.
pub(crate) struct Change<'a> {
    pub removed: &'a [String],
    pub removal: Removal,
    pub activated: &'a [FunctionRecord],
    pub why: Why,
}

impl<'a> Change<'a> {
    /// Functions the store no longer has, nothing new.
    pub(crate) fn removal(removed: &'a [String], removal: Removal) -> Change<'a> {
        Change {
            removed,
            removal,
            activated: &[],
            why: Why::Deployed,
        }
    }

    /// New current versions, nothing removed.
    pub(crate) fn activation(activated: &'a [FunctionRecord], why: Why) -> Change<'a> {
        Change {
            removed: &[],
            removal: Removal::ByDeploy,
            activated,
            why,
        }
    }
}

/// Puts `change` in service; returns a warning for each new version that
/// did not start (its platform log says so too; warm instances of the
/// previous version keep serving).
pub(crate) async fn apply(state: &AdminState, change: Change<'_>) -> Result<Vec<String>, ApiError> {
    for name in change.removed {
        state.scheduler.remove_function(name);
        state.pool.remove(name);
        state.logs.platform(name, removal_line(change.removal));
    }
    state.gateway.reload_routes().await?;
    if !change.removed.is_empty() {
        collect_garbage(state).await;
    }
    let mut warnings = Vec::new();
    for record in change.activated {
        crate::schedules::sync(&state.scheduler, record);
        state.logs.platform(
            &record.name,
            &activation_line(change.why, record.version, &record.artifact),
        );
        if let Err(err) = state.pool.reload_and_wait(&record.name).await {
            let failed = not_started_line(record.version, &err.to_string());
            state.logs.platform(&record.name, &failed);
            warnings.push(format!("{}: {failed}", record.name));
        }
    }
    Ok(warnings)
}

/// Frees the artifacts and code of removed functions (off the async
/// workers: deleting a large tree is many syscalls). A failure only costs
/// disk space until the next collection, so it is logged, not returned.
async fn collect_garbage(state: &AdminState) {
    match state
        .store
        .collect_garbage(std::time::SystemTime::now())
        .await
    {
        Ok(freed) => tracing::info!(
            artifacts = freed.artifacts,
            code_dirs = freed.code_dirs,
            "removed unused artifacts"
        ),
        Err(err) => tracing::warn!(%err, "cannot collect unused artifacts"),
    }
}

/// Puts a change to a function's aliases in service: routes follow the
/// aliases, and instances of versions no alias serves any more drain.
pub(crate) async fn apply_aliases(
    state: &AdminState,
    name: &str,
    line: &str,
) -> Result<(), ApiError> {
    state.gateway.reload_routes().await?;
    let keep: Vec<u32> = state
        .store
        .aliases(name)
        .await?
        .iter()
        .flat_map(|a| std::iter::once(a.version).chain(a.canary.map(|c| c.version)))
        .collect();
    state.pool.drain_versions_except(name, &keep);
    state.logs.platform(name, line);
    Ok(())
}

fn removal_line(removal: Removal) -> &'static str {
    match removal {
        Removal::Removed => "function removed",
        Removal::ByDeploy => "function removed by deploy",
    }
}

fn activation_line(why: Why, version: u32, artifact: &str) -> String {
    match why {
        Why::Deployed => format!(
            "deployed version {version} (artifact {})",
            artifact.get(..12).unwrap_or(artifact)
        ),
        Why::RolledBack => format!("rolled back: now version {version}"),
        Why::EnvironmentChanged => format!("environment changed: now version {version}"),
    }
}

fn not_started_line(version: u32, err: &str) -> String {
    format!(
        "version {version} did not start; warm instances of the previous version keep serving: {err}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_log_lines() {
        let sha = "0123456789abcdef0123";
        let table = [
            (
                activation_line(Why::Deployed, 3, sha),
                "deployed version 3 (artifact 0123456789ab)",
            ),
            (
                activation_line(Why::Deployed, 1, "short"),
                "deployed version 1 (artifact short)",
            ),
            (
                activation_line(Why::RolledBack, 2, sha),
                "rolled back: now version 2",
            ),
            (
                activation_line(Why::EnvironmentChanged, 4, sha),
                "environment changed: now version 4",
            ),
            (removal_line(Removal::Removed).to_string(), "function removed"),
            (
                removal_line(Removal::ByDeploy).to_string(),
                "function removed by deploy",
            ),
            (
                not_started_line(5, "exited"),
                "version 5 did not start; warm instances of the previous version keep serving: exited",
            ),
        ];
        for (line, expected) in table {
            assert_eq!(line, expected);
        }
    }
}
